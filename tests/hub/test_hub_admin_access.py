"""Admin access to users' terminals only with per-user subdomains.

A workspace page is whatever its owner makes it. An admin who opens it on the hub's own origin
gives that page the admin's session (a review saw a user's Set-Cookie replace an admin's hub
cookie), so the hub refuses admin access unless each user's server has a host of its own.
"""

from __future__ import annotations

import pytest
from devplane_dev.hub import NO_LOGIN, Hub
from devplane_dev.procs import StartError
from devplane_dev.proxy import ConfigurableHttpProxy


def test_admin_access_without_subdomains_is_refused_at_start(tmp_path):
    proxy = ConfigurableHttpProxy(tmp_path)
    hub = Hub(
        tmp_path, proxy, None, namespace="unused", profiles=[],
        extra_env={**NO_LOGIN, "DEVPLANE_ADMIN_ACCESS": "true"},
    )  # fmt: skip
    try:
        with pytest.raises(StartError) as refused:
            hub.start(timeout=60)
        assert "DEVPLANE_ADMIN_ACCESS=true needs per-user subdomains" in str(refused.value)
        assert "DEVPLANE_SUBDOMAIN_HOST=https://<host>" in str(refused.value)
    finally:
        hub.stop()
        proxy.stop()
