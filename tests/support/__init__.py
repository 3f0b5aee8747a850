"""Test harness shared by DevPlane's test suites (real processes, no mocks).

* ``procs``      — free ports, managed subprocesses that never outlive a test, waiting helpers;
* ``hub``        — a real JupyterHub (+ configurable-http-proxy) on loopback, logins through
                   its login form, OAuth into a user's server, API calls with an admin token;
* ``local_spawner`` — the JupyterHub spawner ``hub`` uses: runs the DevPlane auth proxy as
                   the user's server, as the current unix user;
* ``workspace``  — the workspace container (``images/workspace/devplane-workspace``) run as
                   local processes with the pod's environment and file layout;
* ``ttyd_client``— a ttyd-protocol WebSocket client (what the browser's xterm.js does).

Import as ``from support.hub import LocalHub`` (pytest puts ``tests/`` on ``sys.path``
because ``tests/conftest.py`` lives there).
"""
