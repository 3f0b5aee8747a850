"""JupyterHub spawner for tests: the user's "server" is the DevPlane auth proxy.

The hub runs it as a local process with the environment it gives any single-user server
(``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_CLIENT_ID``, ``JUPYTERHUB_SERVICE_PREFIX``, ...),
as the current unix user (stock LocalProcessSpawner would switch to a unix user per hub user).
The ttyd it fronts is started separately (``devplane_dev.local_workspace``) at a per-user
socket path.
"""

from __future__ import annotations

import sys

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Dict, Unicode, default

from devplane_api.v1alpha1 import AUTHPROXY_MODULE


class AuthProxySpawner(SimpleLocalProcessSpawner):
    upstream_template = Unicode(
        help="DEVPLANE_UPSTREAM for the proxy; {username} and {servername} are expanded."
    ).tag(config=True)
    activity_file_template = Unicode(
        "", help="DEVPLANE_ACTIVITY_FILE for the proxy; {username}, {servername} expanded."
    ).tag(config=True)
    env_by_user = Dict(
        help="Extra environment per user name: {'carol': {'DEVPLANE_ALLOW_ADMIN_ACCESS': '1'}}."
    ).tag(config=True)

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        return [sys.executable, "-m", AUTHPROXY_MODULE]

    def get_args(self) -> list[str]:
        # The auth proxy takes its settings from the environment only.
        return []

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        names = {"username": self.user.name, "servername": self.name or ""}
        env["DEVPLANE_PROXY_IP"] = "127.0.0.1"
        env["DEVPLANE_PROXY_PORT"] = str(self.port)
        env["DEVPLANE_UPSTREAM"] = self.upstream_template.format(**names)
        if self.activity_file_template:
            env["DEVPLANE_ACTIVITY_FILE"] = self.activity_file_template.format(**names)
        env.update(self.env_by_user.get(self.user.name, {}))
        return env
