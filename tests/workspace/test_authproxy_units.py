"""The auth proxy's pure decisions: settings from the environment, who passes, Origin."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
from tornado.web import HTTPError

from devplane_api.v1alpha1 import AUTHPROXY_MODULE
from devplane_authproxy.activity import read_activity_file
from devplane_authproxy.app import make_hub_auth
from devplane_authproxy.auth import MAX_PENDING_STATES, is_allowed
from devplane_authproxy.identity import IdentityWatch
from devplane_authproxy.logs import MAX_MESSAGE, LogFormatter, RepeatLimiter, scrub_query
from devplane_authproxy.origin import same_origin
from devplane_authproxy.settings import ProxySettings, Upstream

NOW = 1_800_000_000.0
SCOPES = {"access:servers!server=alice/", "access:servers!user=alice"}
BASE_ENV = {
    "JUPYTERHUB_USER": "alice",
    "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/",
    "JUPYTERHUB_API_TOKEN": "secret",
    "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-alice",
    "JUPYTERHUB_API_URL": "http://hub:8081/hub/api",
}


def user(name: str, scopes: set[str] | None = None, kind: str = "user") -> dict:
    return {"kind": kind, "name": name, "scopes": sorted(scopes if scopes is not None else SCOPES)}


@pytest.mark.parametrize(
    ("model", "allow_admin", "expected"),
    [
        (user("alice"), False, True),
        (user("alice", scopes=set()), False, False),  # the hub did not grant access
        (user("admin"), False, False),  # hub granted it, the workspace does not allow
        (user("admin"), True, True),
        (user("bob", scopes={"access:servers!server=bob/"}), True, False),
        (user("alice", kind="service"), True, False),
    ],
)
def test_who_passes(model, allow_admin, expected):
    assert is_allowed(model, "alice", SCOPES, allow_admin) is expected


HUB = ("https", "hub.example.com", 443)


@pytest.mark.parametrize(
    ("origin", "expected", "same"),
    [
        ("https://hub.example.com", HUB, True),
        ("https://hub.example.com:443", HUB, True),
        ("https://HUB.example.com", HUB, True),
        ("http://127.0.0.1:8000", ("http", "127.0.0.1", 8000), True),
        ("http://hub.example.com", HUB, False),  # the scheme counts (finding 13)
        ("https://hub.example.com:8443", HUB, False),
        ("https://evil.example", HUB, False),
        ("https://hub.example.com.evil.example", HUB, False),
        ("https://hub.example.com@evil.example", HUB, False),
        ("https://evil@hub.example.com", HUB, False),
        ("https://hub.example.com/", HUB, False),  # an Origin has no path
        ("https://hub.example.com:x", HUB, False),
        ("null", HUB, False),
        ("", HUB, False),
        (None, HUB, False),
        ("https://hub.example.com", None, False),  # no usable Host: nothing matches
    ],
)
def test_same_origin(origin, expected, same):
    assert same_origin(origin, expected) is same


def test_the_public_url_fixes_the_origin():
    env = {**BASE_ENV, "JUPYTERHUB_PUBLIC_URL": "https://alice.hub.example.com/user/alice/"}
    assert ProxySettings.from_env(env).public_origin == ("https", "alice.hub.example.com", 443)
    assert ProxySettings.from_env(BASE_ENV).public_origin is None
    with pytest.raises(ValueError, match="JUPYTERHUB_PUBLIC_URL='hub' is not an http"):
        ProxySettings.from_env({**BASE_ENV, "JUPYTERHUB_PUBLIC_URL": "hub"})


def test_upstream_forms():
    assert Upstream.parse("unix:/run/devplane/ttyd.sock").unix_path == "/run/devplane/ttyd.sock"
    tcp = Upstream.parse("http://127.0.0.1:7681/ttyd/")
    assert (tcp.host, tcp.port, tcp.base_path) == ("127.0.0.1", 7681, "/ttyd")
    # ttyd has no authentication: it must never be reached beyond loopback.
    with pytest.raises(ValueError, match="loopback"):
        Upstream.parse("10.0.0.8:7681")
    with pytest.raises(ValueError, match="absolute"):
        Upstream.parse("unix:ttyd.sock")


def test_settings_from_env_and_admin_switches():
    settings = ProxySettings.from_env(BASE_ENV)
    assert settings.owner == "alice"
    assert settings.upstream.unix_path == "/run/devplane/ttyd.sock"
    assert (settings.listen_ip, settings.listen_port) == ("0.0.0.0", 8888)
    assert settings.allow_admin_access is False
    hub_says_yes = {**BASE_ENV, "JUPYTERHUB_ADMIN_ACCESS": "1"}
    assert ProxySettings.from_env(hub_says_yes).allow_admin_access is True
    pod_says_no = {**hub_says_yes, "DEVPLANE_ALLOW_ADMIN_ACCESS": "false"}
    assert ProxySettings.from_env(pod_says_no).allow_admin_access is False
    with pytest.raises(ValueError, match="JUPYTERHUB_USER"):
        ProxySettings.from_env({})


def test_a_typo_in_a_boolean_stops_the_proxy_with_the_variable_named():
    env = {**BASE_ENV, "DEVPLANE_ALLOW_ADMIN_ACCESS": "ture"}
    with pytest.raises(ValueError, match="DEVPLANE_ALLOW_ADMIN_ACCESS='ture' is not a boolean"):
        ProxySettings.from_env(env)
    proc = subprocess.run(
        [sys.executable, "-m", AUTHPROXY_MODULE], env={**os.environ, **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0
    assert proc.stderr.startswith("devplane-authproxy: DEVPLANE_ALLOW_ADMIN_ACCESS='ture'")
    assert "use true or false" in proc.stderr and "Traceback" not in proc.stderr


def test_token_is_not_in_the_settings_repr():
    assert "secret" not in repr(ProxySettings.from_env(BASE_ENV))


@pytest.mark.parametrize(
    ("public_url", "secure"), [("https://hub.example.com/", True), ("http://127.0.0.1:8000", False)]
)
def test_cookies_get_the_hubs_options_and_are_secure_when_the_hub_is_on_tls(
    monkeypatch, public_url, secure
):
    env = {
        **BASE_ENV,
        "JUPYTERHUB_PUBLIC_URL": public_url,
        "JUPYTERHUB_COOKIE_OPTIONS": '{"samesite": "Lax"}',
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    options = make_hub_auth(ProxySettings.from_env(env)).cookie_options
    assert options.get("secure", False) is secure and options["samesite"] == "Lax"


@pytest.mark.parametrize("value", ["samesite=Lax", "[1]"])
def test_cookie_options_that_are_no_json_object_are_refused(value):
    with pytest.raises(ValueError, match="JUPYTERHUB_COOKIE_OPTIONS"):
        ProxySettings.from_env({**BASE_ENV, "JUPYTERHUB_COOKIE_OPTIONS": value})


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, (0.0, "")),  # not written yet: no activity, no complaint
        ("", (0.0, "")),
        ("1700000000\n", (1700000000.0, "")),
        ("1700000000.5", (1700000000.5, "")),
        (f"{NOW + 61:.0f}", (0.0, "holds a time out of range")),  # beyond the clock skew
        ("-1", (0.0, "holds a time out of range")),
        ("inf", (0.0, "holds a time out of range")),
    ],
)
def test_activity_file_values(tmp_path, content, expected):
    path = tmp_path / "activity"
    if content is not None:
        path.write_text(content)
    assert read_activity_file(path, NOW) == expected


@pytest.mark.parametrize(
    ("query", "logged"),
    [
        ("token=abc", "token=*"),
        ("code=c0de&state=s7a7e&flag", "code=*&state=*&flag"),
        ("arg=x&arg=", "arg=*&arg=*"),
    ],
)
def test_query_values_are_never_logged(query, logged):
    assert scrub_query(query) == logged


def test_credentials_in_any_log_line_are_scrubbed():
    formatter = LogFormatter("%(message)s")
    line = "x?token=abc&code=def cookie alice-oauth-state='ghi' returncode=0"
    record = logging.LogRecord("any", logging.INFO, __file__, 1, line, None, None)
    assert formatter.format(record) == "x?token=*&code=* cookie alice-oauth-state=* returncode=0"
    mismatch = "oauth state argument %r != cookie %s=%r"
    args = ("a", "alice-oauth-state", "b")
    record = logging.LogRecord("any", logging.WARNING, __file__, 1, mismatch, args, None)
    assert formatter.format(record) == "oauth state argument '*' != cookie alice-oauth-state=*"


def test_a_long_line_is_cut():
    record = logging.LogRecord("any", logging.INFO, __file__, 1, "x" * 50_000, None, None)
    line = LogFormatter("%(message)s").format(record)
    assert line.startswith("x" * MAX_MESSAGE) and line.endswith(f"[{50_000 - MAX_MESSAGE} more]")


def test_repeats_of_a_kind_are_counted_not_written(caplog):
    now = [0.0]
    limiter = RepeatLimiter(limit=3, window=60, clock=lambda: now[0])

    def passes(name: str, msg: str, level: int = logging.WARNING, **extra: str) -> bool:
        record = logging.LogRecord(name, level, __file__, 1, msg, None, None)
        record.__dict__.update(extra)
        return limiter.filter(record)

    caplog.set_level(logging.WARNING, "devplane.authproxy.logs")
    refusals = [passes("devplane.authproxy.access", "403", repeat_kind="refusal") for _ in range(5)]
    assert refusals == [True, True, True, False, False]
    assert "counting the rest" in caplog.text
    # Other kinds have their own count; our own lines without a kind, and a library's
    # INFO lines, are never held back.
    assert [passes("tornado.general", "Invalid cookie signature %r") for _ in range(4)] == [
        True, True, True, False,
    ]  # fmt: skip
    assert all(passes("devplane.authproxy", "terminal opened by alice") for _ in range(10))
    assert all(passes("tornado.access", "200 GET", level=logging.INFO) for _ in range(10))
    now[0] = 61.0  # the next window: the count is said, and lines pass again
    assert passes("devplane.authproxy.access", "403", repeat_kind="refusal")
    assert "2 more lines like 'refusal' in the last 60 s were not written" in caplog.text


def test_pending_logins_are_few_and_small(monkeypatch):
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    hub_auth = make_hub_auth(ProxySettings.from_env(BASE_ENV))
    long_url = "/user/alice/" + "x" * 15_000
    first = hub_auth.generate_state(long_url)
    assert hub_auth.get_next_url(first) == "/user/alice/"  # the prefix, not the stranger's URL
    short = hub_auth.generate_state("/user/alice/?arg=1")
    assert hub_auth.get_next_url(short) == "/user/alice/?arg=1"
    for _ in range(MAX_PENDING_STATES):
        hub_auth.generate_state(long_url)
    assert len(hub_auth._oauth_states) == MAX_PENDING_STATES
    assert hub_auth.get_next_url(first) == "/user/alice/"  # gone: the default again
    assert first not in hub_auth._oauth_states.values


def test_identity_max_age_is_a_positive_number_of_seconds():
    assert ProxySettings.from_env(BASE_ENV).identity_max_age == 30.0
    env = {**BASE_ENV, "DEVPLANE_IDENTITY_MAX_AGE": "5"}
    assert ProxySettings.from_env(env).identity_max_age == 5.0
    for bad in ("0", "-1", "soon", "inf", "nan"):
        env = {**BASE_ENV, "DEVPLANE_IDENTITY_MAX_AGE": bad}
        with pytest.raises(ValueError, match=f"DEVPLANE_IDENTITY_MAX_AGE='{bad}' is not a pos"):
            ProxySettings.from_env(env)


class _Hub:
    """What IdentityWatch asks of HubOAuth: the user a token belongs to, or an error."""

    def __init__(self, answer):
        self.answer = answer

    async def user_for_token(self, token, use_cache, session_id, sync):
        assert use_cache is False  # a re-check must reach the hub
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (user("alice"), ""),
        (None, "the hub no longer confirms its token"),
        (user("alice", scopes=set()), "alice may no longer use this workspace"),
        (HTTPError(500, "Failed to connect to Hub API"), ""),  # a hub restart: keep it open
    ],
)
async def test_what_a_re_check_decides(answer, reason):
    watch = IdentityWatch(
        _Hub(answer), "token", "", lambda u: is_allowed(u, "alice", SCOPES, False), 30
    )
    assert (await watch.check()).startswith(reason) and bool(await watch.check()) == bool(reason)
