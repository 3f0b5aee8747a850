"""The workspace container run as local processes, with the pod's environment and layout.

The pod mounts the home PVC at /home/dev, an emptyDir at /tmp, the shared emptyDir at
/run/devplane and the opencode ConfigMap at /etc/opencode (docs/contracts.md). Here each is a
directory under ``root``, and every path reaches the entrypoint through the same environment
variables the pod sets, so ``images/workspace/devplane-workspace`` runs unchanged.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from .paths import NODE_BIN, ROOT, TTYD_BINARY
from .procs import ManagedProcess

ENTRYPOINT = ROOT / "images" / "workspace" / "devplane-workspace"
OPENCODE_BINARY = NODE_BIN / "opencode"


class LocalWorkspace:
    def __init__(
        self,
        root: Path,
        opencode_config: dict[str, Any] | None = None,
        extra_env: dict[str, str] | None = None,
        activity_poll: float = 1.0,
    ) -> None:
        self.root = root
        self.home = root / "home"
        self.tmp = root / "tmp"
        self.run = root / "run"
        self.etc_opencode = root / "etc-opencode"
        self.bin = root / "bin"
        for directory in (self.home, self.tmp, self.run, self.etc_opencode, self.bin):
            directory.mkdir(parents=True, exist_ok=True)
        # What the image installs in /usr/local/bin.
        for name, target in {"ttyd": TTYD_BINARY, "opencode": OPENCODE_BINARY}.items():
            link = self.bin / name
            if not link.exists():
                link.symlink_to(target)
        if opencode_config is not None:
            (self.etc_opencode / "opencode.json").write_text(json.dumps(opencode_config, indent=2))
        self.socket = self.run / "ttyd.sock"
        self.activity_file = self.run / "activity"
        self.extra_env = extra_env or {}
        self.activity_poll = activity_poll
        self.process: ManagedProcess | None = None

    def env(self) -> dict[str, str]:
        """The workspace container's environment (contracts.md), paths mapped under root."""
        env = {
            "PATH": f"{self.bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "USER": "dev",
            "SHELL": "/bin/bash",
            "LANG": "C.UTF-8",
            "DEVPLANE_TTYD_SOCKET": str(self.socket),
            "DEVPLANE_ACTIVITY_FILE": str(self.activity_file),
            "DEVPLANE_ACTIVITY_POLL": str(self.activity_poll),
            "OPENCODE_CONFIG": str(self.etc_opencode / "opencode.json"),
            "OPENCODE_DISABLE_MODELS_FETCH": "true",
            "OPENCODE_DISABLE_AUTOUPDATE": "true",
            "OPENCODE_DISABLE_LSP_DOWNLOAD": "true",
            "npm_config_offline": "true",
            # The pod's /tmp is an emptyDir; tmux puts its socket under TMUX_TMPDIR (or /tmp).
            "TMPDIR": str(self.tmp),
            "TMUX_TMPDIR": str(self.tmp),
        }
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 20) -> None:
        self.process = ManagedProcess(
            [str(ENTRYPOINT)], self.root / "workspace.log", env=self.env(), cwd=self.home
        )
        self.process.wait_until(f"ttyd's socket {self.socket}", self.socket.is_socket, timeout)

    def tmux(self, *args: str) -> str:
        """Run a tmux command against this workspace's tmux server (as the user would)."""
        return subprocess.run(
            ["tmux", *args], env=self.env(), capture_output=True, text=True, check=True
        ).stdout

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
        # The tmux server daemonizes into its own session, out of the process group that
        # stop() signals; the entrypoint kills it on SIGTERM, this covers a SIGKILLed one.
        subprocess.run(["tmux", "kill-server"], env=self.env(), capture_output=True)

    def pane_activity(self) -> float:
        try:
            return float(self.activity_file.read_text().strip())
        except (OSError, ValueError):
            return 0.0
