"""DevPlane's JupyterHub spawner: it writes Workspace resources and reads their status.

Only the hub's configuration imports this package. What the spawner shares with the operator
and the auth proxy lives in :mod:`devplane_api`.
"""

__version__ = "0.1.0"
