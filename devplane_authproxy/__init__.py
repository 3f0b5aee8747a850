"""The workspace pod's auth proxy: the only listening port of a workspace.

It sits between the hub's proxy and ttyd, lets only the workspace's owner (and hub admins when
explicitly allowed) through using JupyterHub's own OAuth (`HubOAuth`), proxies HTTP and the
terminal WebSocket to ttyd, answers the hub's readiness check, and reports *real* activity to
the hub so the idle culler can tell live work from an abandoned tab. See docs/workspace.md.

Modules: ``settings`` (environment), ``auth`` (who may pass), ``upstream`` (reaching ttyd),
``activity`` (what counts as use, reporting it), ``handlers`` (tornado handlers), ``app``.
"""
