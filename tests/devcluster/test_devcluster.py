"""The local control plane is a real Kubernetes: these tests hold it to the foundation issue.

Each test talks to the real API server started from the pinned binaries; none of them can
pass against a stand-in.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from pathlib import Path

import pytest
from devplane_dev import devcluster
from devplane_dev.poll import wait_for

ROOT = Path(__file__).resolve().parents[2]


def pins() -> dict[str, str]:
    values = {}
    for line in (ROOT / "versions.env").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.strip().split("=", 1)
            values[key] = value
    return values


def test_server_version_is_the_pinned_one(kubectl):
    version = json.loads(kubectl("version", "-o", "json"))
    assert version["serverVersion"]["gitVersion"] == pins()["KUBERNETES_VERSION"]
    # kubectl too is built from the same pin, with real version ldflags.
    assert version["clientVersion"]["gitVersion"] == pins()["KUBERNETES_VERSION"]


def test_binaries_report_real_versions(bin_dir):
    import subprocess

    for name in ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]:
        out = subprocess.run([str(bin_dir / name), "--version"], capture_output=True, text=True)
        assert out.stdout.strip() == f"Kubernetes {pins()['KUBERNETES_VERSION']}", name
    etcd = subprocess.run([str(bin_dir / "etcd"), "--version"], capture_output=True, text=True)
    assert f"etcd Version: {pins()['ETCD_VERSION'].lstrip('v')}" in etcd.stdout
    kwok = subprocess.run([str(bin_dir / "kwok"), "--version"], capture_output=True, text=True)
    assert kwok.stdout.startswith(f"kwok version {pins()['KWOK_VERSION']} "), kwok.stdout
    helm = subprocess.run([str(bin_dir / "helm"), "version"], capture_output=True, text=True)
    assert f'Version:"{pins()["HELM_VERSION"]}"' in helm.stdout, helm.stdout


def test_everything_listens_on_loopback_only():
    """No socket of ours is bound to a non-loopback address."""
    state = devcluster.STATE  # DEVCLUSTER_DIR when set, as for the cluster under test
    pids = {p.stem: int(p.read_text()) for p in (state / "pids").glob("*.pid")}
    assert set(pids) == {
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    }
    inodes_by_name: dict[str, set[str]] = {}
    for name, pid in pids.items():
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = str(fd.readlink()) if fd.is_symlink() else ""
            if m := re.match(r"socket:\[(\d+)\]", target):
                inodes.add(m.group(1))
        inodes_by_name[name] = inodes
    listening = []
    for table in ["/proc/net/tcp", "/proc/net/tcp6"]:
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state_hex, inode = fields[1], fields[3], fields[9]
            if state_hex != "0A":  # LISTEN
                continue
            owner = next((n for n, s in inodes_by_name.items() if inode in s), None)
            if owner:
                listening.append((owner, local))
    assert listening, "found no listening sockets of the control plane"
    for owner, local in listening:
        addr_hex = local.split(":")[0]
        if len(addr_hex) == 8:
            addr = ipaddress.IPv4Address(bytes.fromhex(addr_hex)[::-1])
        else:
            raw = bytes.fromhex(addr_hex)
            addr = ipaddress.IPv6Address(b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))
        assert addr.is_loopback, f"{owner} listens on {addr}"


PRIVILEGED_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "privileged"},
    "spec": {
        "containers": [
            {"name": "c", "image": "busybox:1.36", "securityContext": {"privileged": True}}
        ]
    },
}


def compliant_pod(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "c",
                    "image": "busybox:1.36",
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "readOnlyRootFilesystem": True,
                    },
                }
            ],
        },
    }


async def test_restricted_namespace_rejects_privileged_and_admits_compliant(
    api_client, make_namespace
):
    from kubernetes_asyncio import client as k8s

    ns = make_namespace("pss", restricted=True)
    core = k8s.CoreV1Api(api_client)
    with pytest.raises(k8s.ApiException) as rejected:
        await core.create_namespaced_pod(ns, PRIVILEGED_POD)
    assert rejected.value.status == 403
    body = json.loads(rejected.value.body)
    assert 'violates PodSecurity "restricted:latest"' in body["message"]
    assert "privileged" in body["message"]

    created = await core.create_namespaced_pod(ns, compliant_pod("compliant"))
    assert created.metadata.uid


async def test_pod_becomes_running_and_ready_with_a_loopback_ip(api_client, namespace):
    from kubernetes_asyncio import client as k8s

    core = k8s.CoreV1Api(api_client)
    await core.create_namespaced_pod(namespace, compliant_pod("runner"))

    async def ready():
        pod = await core.read_namespaced_pod("runner", namespace)
        conds = {c.type: c.status for c in pod.status.conditions or []}
        return pod if pod.status.phase == "Running" and conds.get("Ready") == "True" else None

    pod = await async_wait_until(ready, what="pod Running and Ready")
    ip = ipaddress.ip_address(pod.status.pod_ip)
    assert ip in ipaddress.ip_network(devcluster.POD_CIDR), ip
    assert pod.spec.node_name == "kwok-node-0"


async def async_wait_until(check, within: float = 60, what: str = "condition"):
    import asyncio

    deadline = time.monotonic() + within
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out after {within}s waiting for {what}; last: {last!r}")


async def test_pvc_on_default_storageclass_binds(api_client, namespace):
    from kubernetes_asyncio import client as k8s

    core = k8s.CoreV1Api(api_client)
    await core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"},
            # No storageClassName: the default StorageClass must be filled in.
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )

    async def bound():
        pvc = await core.read_namespaced_persistent_volume_claim("data", namespace)
        return pvc if pvc.status.phase == "Bound" else None

    pvc = await async_wait_until(bound, what="PVC Bound")
    assert pvc.spec.storage_class_name == "standard"
    pv = await core.read_persistent_volume(pvc.spec.volume_name)
    assert pv.status.phase == "Bound"
    assert pv.spec.claim_ref.uid == pvc.metadata.uid

    # Reclaim policy Delete: deleting the claim removes the volume too.
    await core.delete_namespaced_persistent_volume_claim("data", namespace)

    async def pv_gone():
        try:
            await core.read_persistent_volume(pv.metadata.name)
        except k8s.ApiException as err:
            return err.status == 404
        return False

    await async_wait_until(pv_gone, what="released PV deleted")


async def test_deleting_an_owner_garbage_collects_its_dependents(api_client, namespace):
    from kubernetes_asyncio import client as k8s

    core = k8s.CoreV1Api(api_client)
    owner = await core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "owner"}, "data": {"k": "v"}}
    )
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner.metadata.uid,
    }
    for i in range(3):
        await core.create_namespaced_secret(
            namespace, {"metadata": {"name": f"dep-{i}", "ownerReferences": [ref]}}
        )
    await core.create_namespaced_secret(namespace, {"metadata": {"name": "unowned"}})
    await core.delete_namespaced_config_map("owner", namespace)

    async def deps_gone():
        names = {s.metadata.name for s in (await core.list_namespaced_secret(namespace)).items}
        return not any(n.startswith("dep-") for n in names) and "unowned" in names

    await async_wait_until(deps_gone, what="garbage collection of dependents")


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.celtest.devplane.io"},
    "spec": {
        "group": "celtest.devplane.io",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "min": {"type": "integer"},
                                    "max": {"type": "integer"},
                                },
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "self.min <= self.max",
                                        "message": "min must not exceed max",
                                    }
                                ],
                            }
                        },
                    }
                },
            }
        ],
    },
}


def test_crd_cel_rule_rejects_a_bad_object(kubectl, namespace):
    kubectl("apply", "-f", "-", stdin=json.dumps(CRD))
    kubectl(
        "wait", "--for=condition=Established", "crd/widgets.celtest.devplane.io", "--timeout=60s"
    )

    def widget(name, lo, hi):
        return json.dumps(
            {
                "apiVersion": "celtest.devplane.io/v1",
                "kind": "Widget",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"min": lo, "max": hi},
            }
        )

    # Discovery can lag Established by a moment.
    wait_for(
        "a valid Widget to be accepted",
        lambda: (
            kubectl("apply", "-f", "-", stdin=widget("good", 1, 2), check=False).returncode == 0
        ),
        timeout=60,
    )
    bad = kubectl("apply", "-f", "-", stdin=widget("bad", 5, 2), check=False)
    assert bad.returncode != 0
    assert "spec: Invalid value" in bad.stderr
    assert "min must not exceed max" in bad.stderr


def test_kwok_node_is_ready(kubectl):
    nodes = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
    # Beside it, the real node when the cluster has one (unless DEVCLUSTER_REAL_NODE=0).
    expected = ["kwok-node-0", *(["real-node-0"] if devcluster.real_node_wanted() else [])]
    assert [n["metadata"]["name"] for n in nodes] == expected
    kwok = next(n for n in nodes if n["metadata"]["name"] == "kwok-node-0")
    ready = {c["type"]: c["status"] for c in kwok["status"]["conditions"]}["Ready"]
    assert ready == "True"


def test_second_build_reuses_the_cached_binaries(bin_dir):
    import subprocess

    before = {p.name: p.stat().st_mtime_ns for p in bin_dir.iterdir()}
    proc = subprocess.run(
        [str(ROOT / "hack" / "build-binaries.sh")], capture_output=True, text=True, check=True
    )
    assert Path(proc.stdout.strip().splitlines()[-1]) == bin_dir
    lines = [line for line in proc.stderr.splitlines() if line.startswith("build-binaries:")]
    assert len(lines) == 4 and all(line.endswith(": cached") for line in lines), proc.stderr
    assert {p.name: p.stat().st_mtime_ns for p in bin_dir.iterdir()} == before
    # The cache key names every pin, so changing one builds into a new directory.
    for key in ["KUBERNETES_VERSION", "ETCD_VERSION", "KWOK_VERSION", "HELM_VERSION"]:
        assert pins()[key] in bin_dir.name


async def test_image_from_an_unresolvable_registry_fails_to_pull(api_client, namespace):
    """Images from a `.invalid` registry host fail as a kubelet reports it; others still run."""
    from kubernetes_asyncio import client as k8s

    core = k8s.CoreV1Api(api_client)
    pod = compliant_pod("pull")
    good = dict(pod["spec"]["containers"][0], name="good")
    pod["spec"]["containers"][0]["image"] = "registry.invalid/team/ws:1"
    pod["spec"]["containers"].append(good)
    await core.create_namespaced_pod(namespace, pod)

    async def backing_off():
        status = (await core.read_namespaced_pod("pull", namespace)).status
        waiting = {
            s.name: s.state.waiting for s in status.container_statuses or [] if s.state.waiting
        }
        return (status, waiting) if "c" in waiting else None

    status, waiting = await async_wait_until(backing_off, what="ImagePullBackOff")
    assert status.phase == "Pending"
    assert waiting["c"].reason == "ImagePullBackOff"
    assert "registry.invalid/team/ws:1" in waiting["c"].message
    assert waiting["good"].reason == "ContainerCreating"

    async def warning_event():
        events = await core.list_namespaced_event(
            namespace, field_selector="involvedObject.name=pull"
        )
        return [e for e in events.items if e.type == "Warning" and e.reason == "Failed"]

    await async_wait_until(warning_event, what="a Warning event about the pull")
