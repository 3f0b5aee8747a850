"""DevPlane's JupyterHub side: the spawner, the naming scheme and the in-pod auth proxy.

Importing this package must stay cheap and free of JupyterHub imports: the operator uses
:mod:`devplane_spawner.naming` too.
"""

__version__ = "0.1.0"
