"""The real node's settings: a bad value stops `up` at once with what to do, and the node's
addresses follow from its one range. No cluster needed."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest
from devplane_dev.realnode_config import NodeConfigError, NodeLayout, parse_node_cidr

ROOT = Path(__file__).resolve().parents[2]
TAKEN = ["10.96.0.0/16", "127.20.0.0/16", "10.88.0.0/16", "10.222.0.0/25"]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("ten.0.0.0/24", "is not a network"),
        ("fd00::/64", "must be IPv4, /16 to /24"),
        ("10.0.0.0/8", "must be IPv4, /16 to /24"),
        ("10.230.0.0/28", "must be IPv4, /16 to /24"),
        ("8.8.8.0/24", "is not a private range"),
        ("10.88.0.0/24", "overlaps 10.88.0.0/16"),
        ("10.222.0.0/24", "overlaps 10.222.0.0/25"),
    ],
)
def test_a_bad_node_range_is_refused_with_a_free_one_suggested(value, says):
    with pytest.raises(NodeConfigError) as refused:
        parse_node_cidr(value, TAKEN)
    message = str(refused.value)
    assert f"DEVCLUSTER_NODE_CIDR={value}" in message.replace("'", "") and says in message
    suggested = message.rsplit("e.g. ", 1)[1]
    assert parse_node_cidr(suggested, TAKEN) == ipaddress.ip_network(suggested)


def test_the_node_addresses_come_from_its_range():
    node = NodeLayout(
        state=Path("/x"),
        cidr=parse_node_cidr("10.230.4.0/24", TAKEN),
        apiserver_port=1,
        service_cidr="10.96.0.0/16",
        cluster_id="abcdef",
    )
    assert str(node.pods) == "10.230.4.0/25"
    assert node.node_ip == "10.230.4.1"  # the bridge's own address, kubelet's node IP
    assert (node.host_link_ip, node.node_link_ip) == ("10.230.4.253", "10.230.4.254")
    assert len(node.host_link) <= 15  # Linux's limit for an interface name


def test_a_bad_real_node_switch_stops_up_before_anything_starts(tmp_path):
    state = tmp_path / "cluster"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "devcluster.py"), "up"],
        env={**os.environ, "DEVCLUSTER_DIR": str(state), "DEVCLUSTER_REAL_NODE": "maybe"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "DEVCLUSTER_REAL_NODE='maybe' is not a boolean: use true or false" in proc.stderr
    assert not state.exists()
