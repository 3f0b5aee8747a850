"""``python -m devplane_operator`` / ``devplane-operator``: validate settings, then run.

Exit codes: 0 clean shutdown, 1 runtime failure (e.g. lost leadership), 2 bad settings.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from .settings import SettingsError, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load_settings(sys.argv[1:] if argv is None else argv)
    except SettingsError as err:
        print(f"devplane-operator: {err}", file=sys.stderr)
        return 2
    from .app import run  # imported late: kopf is heavy and not needed to report bad settings

    return asyncio.run(run(settings))


if __name__ == "__main__":
    sys.exit(main())
