"""DevPlane's development harness: what the tests, `make demo` and the benchmarks use to run
the system on one machine. Installed from the checkout (``pip install -e hack/``), never
shipped: the product's wheel holds only devplane_api, devplane_spawner, devplane_authproxy
and devplane_operator.

One module per job; each is the only place that does it:

* ``paths``            — where things are in the checkout (node_modules, hub config, CRD, ttyd);
* ``poll``             — ``wait_for``: poll until something holds (stdlib only);
* ``procs``            — ``ManagedProcess``: run a process in its own group, log it, wait
                         until it is ready, stop it and everything it started; free ports;
* ``devcluster``       — the local control plane (etcd, kube-apiserver, ..., kwok) and its
                         CLI, run as ``hack/devcluster.py`` (stdlib only; it says why);
* ``realnode``         — the cluster's real node (unless ``DEVCLUSTER_REAL_NODE=0``): kubelet,
                         containerd, CNI, kube-proxy, CoreDNS, kube-router's firewall, in
                         namespaces of its own; with ``realnode_config`` (its files and command
                         lines), ``realnode_manifests`` (CoreDNS), ``realnode_procs`` (its
                         processes), ``realnode_images`` (podman's images into containerd) and
                         ``realnode_pods`` (restricted test pods there, and probes from inside);
* ``installed``        — DevPlane installed by its chart on the real node, as a site does it
                         (registry, OIDC provider and LLM stand-in by address, NodePort);
* ``demo``             — ``make demo``'s users, settings and banner (an ``installed`` system);
* ``kubectl``          — the pinned kubectl against a cluster; namespaces with their labels;
* ``operator_process`` — the real operator as a subprocess; ``install_crd``;
* ``oidc``             — the OIDC provider (hack/oidc/server.mjs) with its users and client;
* ``proxy``            — configurable-http-proxy, started apart from the hub;
* ``hub``              — JupyterHub: ``run_jupyterhub``, and ``Hub`` (hub_config via env vars);
* ``login``            — log in through the real login form (the provider's or the hub's);
* ``localhub``         — a hub whose users' servers are local auth proxies (no cluster);
* ``local_spawner``    — the spawner ``localhub`` uses;
* ``local_workspace``  — the workspace container run as local processes;
* ``ttyd_client``      — a ttyd-protocol WebSocket client (what xterm.js does);
* ``ttyd_page``        — ttyd's own page from a ttyd; refreshes the auth proxy's copy of it;
* ``browser``          — chromium for Playwright, the terminal in a page, CSP violations;
* ``hostile_ttyd``     — what an owner can put on the ttyd socket instead of ttyd (recording);
* ``responders``       — answer the hub's readiness check at kwok pods' IPs;
* ``workspaces``       — Workspace manifests and the example LLM provider;
* ``vllm_stub``        — an OpenAI-compatible stand-in for vLLM.
"""
