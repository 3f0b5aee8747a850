"""The hub's /hub/metrics, for the cluster's Prometheus: readable with the scraper's token,
which can read nothing else, and with nothing else."""

from __future__ import annotations

import secrets

import requests
from hub_testdata import USERS, login_stack


def test_the_scraper_token_reads_the_metrics_and_nothing_else(tmp_path):
    token = secrets.token_hex(32)
    with login_stack(tmp_path, [USERS["alice"]], DEVPLANE_METRICS_TOKEN=token) as (hub, _):
        url = f"{hub.url}/hub/metrics"
        scraped = requests.get(url, headers={"Authorization": f"token {token}"}, timeout=30)
        assert scraped.status_code == 200, scraped.text[:500]
        assert "jupyterhub_running_servers" in scraped.text
        assert "jupyterhub_total_users" in scraped.text
        # Without it: refused, as JupyterHub refuses every unauthenticated scrape.
        assert requests.get(url, timeout=30).status_code == 403
        # With it, the REST API gives nothing: its only scope is read:metrics.
        users = requests.get(
            f"{hub.url}/hub/api/users", headers={"Authorization": f"token {token}"}, timeout=30
        )
        assert users.status_code == 403, users.text
