"""Admin access to users' terminals only with per-user subdomains.

A workspace page is whatever its owner makes it. An admin who opens it on the hub's own origin
gives that page the admin's session (a review saw a user's Set-Cookie replace an admin's hub
cookie), so the hub refuses admin access unless each user's server has a host of its own.
(A hub that accepts it, and what it does: test_hub_workspaces.py,
test_with_admin_access_each_users_server_has_a_host_of_its_own.)
"""

from __future__ import annotations

import pytest
from devplane_dev.hub import running_hub
from devplane_dev.procs import StartError


def test_admin_access_without_subdomains_is_refused_at_start(tmp_path):
    with pytest.raises(StartError) as refused, running_hub(tmp_path, DEVPLANE_ADMIN_ACCESS="true"):
        pass
    assert "DEVPLANE_ADMIN_ACCESS=true needs per-user subdomains" in str(refused.value)
    assert "DEVPLANE_SUBDOMAIN_HOST=https://<host>" in str(refused.value)
