"""The Workspace API (devplane.io/v1alpha1): the contract the spawner, the operator and the
auth proxy agree on, and the only package all three import.

Like kubebuilder's ``api/<version>/``, this package owns the contract and imports nothing of
DevPlane's and nothing outside the standard library, so the operator image needs no
JupyterHub and the hub image needs no kopf. Clients import it; it never imports them.

* :mod:`devplane_api.v1alpha1` — group, version, kind, label keys, the auth proxy's port and
  module, phases and the reasons a start will not recover from;
* :mod:`devplane_api.naming` — the DNS-safe, never-changing names of Workspaces and children;
* :mod:`devplane_api.envparse` — the one strict reading of a boolean environment variable,
  so the hub, the operator and the auth proxy accept the same words.

docs/workspace-api.md describes the resource; chart/crds/ holds its schema.
"""
