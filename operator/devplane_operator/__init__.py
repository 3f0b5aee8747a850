"""DevPlane operator: turns Workspace resources into a hardened workspace pod and its children.

kopf is used only to watch Workspaces and their children and hand each event to our cache and
queue (handlers.py); the reconcile loop, its retries and its error types are our own.

Modules, one job each:

* ``settings``  — operator settings from DEVPLANE_* env vars / CLI flags, validated at start-up;
* ``model``     — the parsed, validated view of one Workspace;
* ``providers`` — what an LLM provider entry may hold;
* ``policy``    — what a Workspace may reference (its own hub Secret, allowed keys and images);
* ``builders``  — pure functions: (workspace, settings) -> child manifests;
* ``netpol``, ``endpoint`` — the NetworkPolicy's rules, and where an LLM endpoint is;
* ``status``    — pure functions: observed children -> phase, conditions, message;
* ``compare``   — pure functions: desired vs actual child -> what to write (if anything);
* ``cache``     — the in-memory view of Workspaces and children, fed by watch events;
* ``workqueue`` — de-duplicating queue of Workspace keys, with delayed retries;
* ``kube``      — the only place that talks to the API server (and counts every write);
* ``reconcile`` — the one idempotent reconcile(workspace) that ties them together;
* ``handlers``  — the kopf handlers that feed the cache and the queue;
* ``metrics``, ``server`` — Prometheus metrics, /healthz and /readyz on one port;
* ``leader``    — Lease-based leader election, so two replicas are safe;
* ``app``, ``__main__`` — wiring and the ``devplane-operator`` entry point.
"""
