#!/usr/bin/env python3
"""`python3 hack/devcluster.py up|down|status|kubeconfig|load-images`: the local cluster's CLI.

The code is the harness's devplane_dev/devcluster.py; this path is kept so it runs with the
system python before any virtualenv exists (this directory is on sys.path when run so).
"""

import sys
from pathlib import Path

# The checkout's root too, for devplane_api's one boolean parser (standard library only).
sys.path.append(str(Path(__file__).resolve().parents[1]))

from devplane_dev.devcluster import main

if __name__ == "__main__":
    sys.exit(main())
