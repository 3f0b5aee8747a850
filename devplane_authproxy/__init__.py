"""The workspace pod's auth proxy: the only listening port of a workspace.

It sits between the hub's proxy and ttyd, lets only the workspace's owner (and hub admins when
explicitly allowed) through using JupyterHub's own OAuth (`HubOAuth`), serves ttyd's page from
its own copy and relays the terminal WebSocket (nothing else) to ttyd, answers the hub's
readiness check, and reports *real* activity to the hub so the idle culler can tell live work
from an abandoned tab. See docs/workspace.md.

Modules: ``settings`` (environment), ``auth`` (who may pass), ``origin`` (whose page opens the
socket), ``terminal_page`` (ttyd's page and its policy), ``wshandshake`` and ``wsrelay`` (the
terminal's WebSocket), ``upstream`` (reaching ttyd), ``activity`` (what counts as use,
reporting it), ``logs`` (what is written about requests), ``handlers``, ``app``.
"""
