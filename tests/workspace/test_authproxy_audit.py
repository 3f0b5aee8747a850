"""The auth proxy's audit events around the terminal (docs/audit.md): who opened and closed it,
from where and for how long, and who was turned away and why. The real hub, the real auth
proxies (their standard output is the hub's log) and real workspaces."""

from __future__ import annotations

import asyncio

from devplane_dev.poll import wait_for
from devplane_dev.ttyd_client import handshake_status

COMMON = {"schema", "time", "event", "component", "user"}


def matching(deployment, event: str, **fields) -> list[dict]:
    return deployment.hub.audit_events(event, **fields)


async def test_a_terminal_session_is_audited_when_it_opens_and_when_it_closes(deployment):
    hub = deployment.hub
    alice = await asyncio.to_thread(hub.login, "alice")
    before = len(matching(deployment, "terminal.close", user="alice"))
    async with await hub.open_terminal(alice, "alice") as term:
        await term.run("echo audited-$((6*7))", r"audited-42")
        (opened, *_) = await asyncio.to_thread(
            wait_for, "terminal.open", lambda: matching(deployment, "terminal.open", user="alice")
        )
    closes = await asyncio.to_thread(
        wait_for,
        "terminal.close",
        lambda: matching(deployment, "terminal.close", user="alice")[before:],
    )
    closed = closes[-1]
    for record in (opened, closed):
        assert set(record) >= COMMON and record["schema"] == "devplane.audit/v1"
        assert record["component"] == "authproxy"
        assert record["actor"] == "alice" and record["remote"]
    assert closed["duration_s"] >= 0 and closed["reason"] == "closed"


async def test_another_user_and_a_foreign_origin_are_audited_as_refused(deployment):
    hub = deployment.hub
    # The hub completes OAuth for an admin (admin_access), so it is alice's proxy that turns
    # the admin away (her workspace does not let admins in): a refusal with a known actor.
    admin = await asyncio.to_thread(hub.login, "admin")
    assert (await asyncio.to_thread(hub.open_server, admin, "alice")).status_code == 403
    alice = await asyncio.to_thread(hub.login, "alice")
    await asyncio.to_thread(hub.open_server, alice, "alice")
    own = hub.cookie_header(alice, "/user/alice/ws")
    assert await handshake_status(hub.ws_url("alice"), own, "http://evil.example") == 403

    def refusals() -> list[dict]:
        crossed = matching(deployment, "access.refused", reason="not_allowed", actor="admin")
        foreign = matching(deployment, "access.refused", reason="bad_origin",
                           origin="http://evil.example")  # fmt: skip
        return crossed + foreign if crossed and foreign else []

    events = await asyncio.to_thread(wait_for, "the refusals' audit events", refusals)
    for record in events:
        assert set(record) >= COMMON and record["user"] == "alice"
        assert record["remote"] and record["path"].startswith("/user/alice/")
