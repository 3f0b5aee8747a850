"""The hub's audit events (devplane_api.audit, component ``hub``): login, logout, and every
request to start or stop a server, with who asked.

One hook sees them all: JupyterHub logs each request it answered through the tornado
``log_function``, after the handler has found out who is asking (``_jupyterhub_user``: a
user, or a service such as the idle culler) and with the status it answered. ``log_request``
wraps JupyterHub's own logger (that log stays as it is) and writes the audit events:

* ``login``: the OAuth callback that signed a user in (``user``, ``admin``, ``remote``);
* ``logout``: ``/hub/logout`` by a signed-in user (written by the authenticator's logout
  handler, ``logout()``: the hub forgets the user before it logs the request);
* ``server.start`` / ``server.stop``: ``POST`` / ``DELETE`` of ``/hub/api/users/<u>/server`` or
  ``.../servers/<name>``, and the spawn form's ``POST /hub/spawn/<u>[/<name>]``, whatever the
  answer (``status``: 201/202/204 accepted, 400/403/404 refused), with ``actor`` (who asked),
  ``user`` (whose server) and ``server``.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote

from jupyterhub.log import log_request as jupyterhub_log_request
from tornado.web import RequestHandler

from devplane_api import audit

COMPONENT = "hub"
log = logging.getLogger("devplane.hubaudit")

_SERVER_API = re.compile(r"^api/users/(?P<user>[^/]+)/(?:server|servers/(?P<server>[^/]*))/?$")
# /hub/spawn (the signed-in user's own default server: where a browser lands after login, and
# where the form posts back), /hub/spawn/<user>[/<server>].
_SPAWN_FORM = re.compile(r"^spawn(?:/(?P<user>[^/]+)(?:/(?P<server>[^/]*))?)?/?$")
_SERVER_ACTIONS = {"POST": "server.start", "DELETE": "server.stop"}


def classify(method: str, hub_path: str, status: int) -> tuple[str, dict[str, str]] | None:
    """(event, fields) for a request to ``hub_path`` (the part after ``<base>/hub/``)."""
    match = _SERVER_API.match(hub_path)
    if match and method in _SERVER_ACTIONS:
        return _SERVER_ACTIONS[method], _names(match)
    match = _SPAWN_FORM.match(hub_path)
    # POST: the form was submitted. GET answered with a redirect: a start without a form (no
    # profiles, or the options in the query); a GET answered 200 only showed the form.
    if match and (method == "POST" or (method == "GET" and status in (302, 303))):
        return "server.start", _names(match)
    if hub_path.rstrip("/") == "oauth_callback" and method == "GET" and status in (200, 302):
        return "login", {}
    return None


def _names(match: re.Match[str]) -> dict[str, str]:
    """``user`` is empty for /hub/spawn: the actor's own server (``record`` fills it in)."""
    return {"user": unquote(match["user"] or ""), "server": unquote(match["server"] or "")}


def record(handler: RequestHandler) -> dict[str, Any] | None:
    """The audit event for this answered request, if it is one; written and returned."""
    prefix = f"{getattr(handler, 'base_url', '/')}hub/"
    path = handler.request.path
    if not path.startswith(prefix):
        return None
    status = handler.get_status()
    found = classify(handler.request.method or "", path[len(prefix) :], status)
    if found is None:
        return None
    name, fields = found
    who = getattr(handler, "_jupyterhub_user", None)
    actor = getattr(who, "name", None)
    remote = handler.request.remote_ip
    if name == "login":
        if actor is None:  # a callback that signed nobody in
            return None
        return audit.event(name, COMPONENT, user=actor, admin=bool(getattr(who, "admin", False)),
                           remote=remote)  # fmt: skip
    if not fields["user"]:  # /hub/spawn: the actor's own
        if actor is None:  # not signed in: the hub sent them to log in
            return None
        fields["user"] = actor
    return audit.event(name, COMPONENT, **fields, actor=actor, status=status, remote=remote)


def logout(handler: RequestHandler, user: Any) -> dict[str, Any]:
    return audit.event("logout", COMPONENT, user=user.name, admin=bool(user.admin),
                       remote=handler.request.remote_ip)  # fmt: skip


def log_request(handler: RequestHandler) -> None:
    """JupyterHub's request log, then the audit event; a failure here never fails a request."""
    jupyterhub_log_request(handler)
    try:
        record(handler)
    except Exception:
        log.exception("could not write the audit event of %s", handler.request.path)
