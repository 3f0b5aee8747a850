"""The hub on an external PostgreSQL database (chart hub.db.type: postgres): the URL from a
Secret's file, users and servers kept there across a restart, the password never logged."""

from __future__ import annotations

import secrets

from devplane_dev.login import login
from devplane_dev.postgres import LocalPostgres
from hub_testdata import USERS, login_stack


def test_the_hub_keeps_its_users_in_postgresql_across_a_restart(tmp_path):
    with LocalPostgres() as db:
        url_file = tmp_path / "db-url"
        url_file.write_text(db.create_database("jupyterhub") + "\n")
        url_file.chmod(0o600)
        # The cookie secret from a Secret's file too (the chart's, with an external database):
        # the data directory need not last, and a restart must not log anybody out.
        cookie_file = tmp_path / "cookie-secret"
        cookie_file.write_text(secrets.token_hex(32) + "\n")
        cookie_file.chmod(0o600)
        env = {
            "DEVPLANE_HUB_DB_URL_FILE": str(url_file),
            "DEVPLANE_COOKIE_SECRET_FILE": str(cookie_file),
        }
        with login_stack(tmp_path / "hub", [USERS["alice"]], **env) as (hub, _):
            session, page = login(hub.url, "alice", USERS["alice"].password)
            assert page.status_code == 200, page.text[:2000]
            assert ("alice",) in db.query("jupyterhub", "SELECT name FROM users")
            hub.restart()
            model = hub.api("GET", "/users/alice")
            assert model.status_code == 200 and model.json()["name"] == "alice"
            # Still logged in after the restart, with the cookie secret from the file.
            home = session.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
            assert home.status_code == 200, (home.status_code, home.headers.get("Location"))
            assert not list((tmp_path / "hub").rglob("jupyterhub_cookie_secret"))
            log = hub.log()
        assert db.password not in log
        # Nothing went to a SQLite file beside the hub.
        assert not list((tmp_path / "hub").rglob("jupyterhub.sqlite"))
