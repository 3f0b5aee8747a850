"""The OIDC provider (hack/oidc/server.mjs, the npm ``oidc-provider``): users, one client.

The hub is its one client; ``hub_env()`` is what hub_config/jupyterhub_config.py needs to
use it. PKCE is required, so a login that succeeds proves the hub sends it.
"""

from __future__ import annotations

import json
import secrets
import signal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .paths import OIDC_SERVER
from .procs import ManagedProcess, base_env, free_port

USERS_GROUP = "devplane-users"
ADMINS_GROUP = "devplane-admins"


@dataclass(frozen=True)
class OidcUser:
    username: str
    password: str
    groups: tuple[str, ...] = (USERS_GROUP,)

    @property
    def display_name(self) -> str:
        """The provider's ``name`` claim: not the user name, so a test can tell them apart."""
        return f"{self.username.capitalize()} Example"

    @property
    def email(self) -> str:
        return f"{self.username}@example.org"


class OidcProvider:
    """Writes the provider's config to ``workdir/oidc.json`` (mode 0600) and starts it.

    ``log_dir`` (default ``workdir``) gets ``oidc.log``.
    """

    def __init__(
        self,
        workdir: Path,
        redirect_uri: str,
        users: Iterable[OidcUser],
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        issuer: str | None = None,
        client_id: str = "devplane-hub",
        client_secret: str | None = None,
        env: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
        timeout: float = 30,
    ) -> None:
        self.port = port or free_port()
        # The provider listens on host:port; its issuer (what browsers and the hub call it)
        # is that address unless a relay makes it answer elsewhere (the real node's IP).
        self.issuer = issuer or f"http://{host}:{self.port}"
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_hex(16)
        self.redirect_uri = redirect_uri
        config = {
            "host": host,
            "port": self.port,
            "issuer": self.issuer,
            "requirePkce": True,
            "clients": [
                {
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "redirect_uris": [redirect_uri],
                }
            ],
            "users": [
                {
                    "username": u.username,
                    "password": u.password,
                    "email": u.email,
                    "name": u.display_name,
                    "groups": list(u.groups),
                }
                for u in users
            ],
        }
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "oidc.json"
        self.config.touch(mode=0o600)  # it holds the client secret and the passwords
        self.config.write_text(json.dumps(config, indent=2))
        self._reloads = 0
        self.process = ManagedProcess(
            ["node", str(OIDC_SERVER), str(self.config)],
            (log_dir or workdir) / "oidc.log",
            env=dict(env or base_env()),
            name="oidc",
        )
        try:
            self.process.wait_for_log(f"ready {self.issuer}", timeout)
        except BaseException:  # Ctrl-C while waiting, too: the process has a session of its own
            self.process.stop()
            raise

    def set_groups(self, username: str, groups: Iterable[str]) -> None:
        """Change ``username``'s groups at the provider, as an admin would; return once the
        provider answers with them (its next userinfo)."""
        config = json.loads(self.config.read_text())
        (user,) = [u for u in config["users"] if u["username"] == username]
        user["groups"] = list(groups)
        self.config.write_text(json.dumps(config, indent=2))
        self.process.signal_group(signal.SIGHUP)
        self._reloads += 1
        self.process.wait_for_log(f"reloaded users ({self._reloads})")

    def hub_env(self) -> dict[str, str]:
        """The settings that make hub_config log in through this provider."""
        return {
            "DEVPLANE_OIDC_ISSUER": self.issuer,
            "DEVPLANE_OIDC_CLIENT_ID": self.client_id,
            "DEVPLANE_OIDC_CLIENT_SECRET": self.client_secret,
            "DEVPLANE_OIDC_CALLBACK_URL": self.redirect_uri,
            "DEVPLANE_OIDC_ALLOWED_GROUPS": USERS_GROUP,
            "DEVPLANE_OIDC_ADMIN_GROUPS": ADMINS_GROUP,
        }

    def stop(self) -> None:
        self.process.stop()
