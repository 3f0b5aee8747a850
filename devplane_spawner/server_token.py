"""A server's API token in the hub's database: its expiry, its renewal and its revocation.

JupyterHub makes the token ("Server at /user/<name>/") before start() and deletes it when the
server stops, but only through ``Spawner.api_token``, which the hub keeps in memory alone.
Once the hub has restarted, the instance that stops the server no longer knows the token, so
it outlived the server, with no expiry: it stayed valid in the workspace's Secret and in any
copy of it. The spawner therefore keeps the token's database id (never the secret) in its
state, so whichever hub instance stops the server revokes it, and gives it an expiry that
poll() renews while the server runs, so a token that every other path missed still dies.

The spawner runs inside the hub process; these functions use the hub's own database session
(the one its ORM spawner is attached to). Outside a hub (unit tests), there is none and they
do nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from jupyterhub import orm
from jupyterhub.utils import utcnow
from sqlalchemy import inspect
from sqlalchemy.orm import Session


def hub_session(orm_spawner: Any) -> Session | None:
    """The hub's database session, or None when the spawner has no ORM row (tests)."""
    state = inspect(orm_spawner, raiseerr=False)
    return state.session if state is not None else None


def _now() -> datetime:
    # The ORM stores naive UTC times (JupyterHub's own convention).
    return utcnow(with_tz=False)


def adopt(session: Session, token: str, lifetime: int) -> int | None:
    """Give the server's new ``token`` an expiry; return its id, to keep in state."""
    found = orm.APIToken.find(session, token)
    if found is None:
        return None
    found.expires_at = _now() + timedelta(seconds=lifetime)
    session.commit()
    return int(found.id)


def _live(session: Session, token_id: int, user_id: int) -> Any:
    found = session.get(orm.APIToken, token_id)
    if found is None or found.user_id != user_id:
        return None
    if found.expires_at is not None and found.expires_at <= _now():
        return None
    return found


def renew(session: Session, token_id: int, user_id: int, lifetime: int) -> bool:
    """Push the expiry back to ``lifetime`` from now once half of it is used; False when the
    token is gone (revoked, or expired while no hub renewed it)."""
    found = _live(session, token_id, user_id)
    if found is None:
        return False
    now = _now()
    if found.expires_at is None or found.expires_at - now < timedelta(seconds=lifetime / 2):
        found.expires_at = now + timedelta(seconds=lifetime)
        session.commit()
    return True


def revoke(session: Session, token_id: int, user_id: int) -> bool:
    """Delete the token (only ever one of ``user_id``'s); False when it was already gone."""
    found = session.get(orm.APIToken, token_id)
    if found is None or found.user_id != user_id:
        return False
    session.delete(found)
    session.commit()
    return True
