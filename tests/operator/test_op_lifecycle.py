"""The operator against the real local control plane: from a Workspace to a running pod, and
back; children put back in line; stop/start; delete with Retain and Delete; stuck causes.

Each test gets its own namespace and its own operator subprocess (see conftest.py).
"""

from __future__ import annotations

import ipaddress
import json

from devplane_dev import devcluster
from op_helpers import (
    apply,
    condition,
    get,
    wait_for,
    wait_ready,
    workspace,
    workspace_event_reasons,
)

from devplane_api import naming
from devplane_api.v1alpha1 import (
    MANAGED_BY,
    MANAGED_BY_VALUE,
    OWNER_ANNOTATION,
    OWNER_LABEL,
    PROXY_PORT,
)

CHILDREN = ("pod", "service", "configmap", "networkpolicy", "persistentvolumeclaim")


def child_names(name: str) -> dict[str, str]:
    return {
        "pod": f"ws-{name}",
        "service": f"ws-{name}",
        "networkpolicy": f"ws-{name}",
        "configmap": f"ws-{name}-opencode",
        "persistentvolumeclaim": f"home-{name}",
    }


def owned_by(obj: dict, ws: dict) -> bool:
    refs = obj["metadata"].get("ownerReferences") or []
    return any(r["uid"] == ws["metadata"]["uid"] and r.get("controller") for r in refs)


def test_workspace_runs_with_every_child(kubectl, ws_namespace):
    ns, _ = ws_namespace
    apply(kubectl, ns, workspace("alice"))
    ws = wait_ready(kubectl, ns, "alice")

    status = ws["status"]
    assert status["phase"] == "Running"
    assert status["observedGeneration"] == ws["metadata"]["generation"]
    assert status["url"] == f"http://ws-alice.{ns}.svc:8888"
    assert status["podName"] == "ws-alice" and status["serviceName"] == "ws-alice"
    assert status["pvcName"] == "home-alice"
    assert ipaddress.ip_address(status["podIP"]) in ipaddress.ip_network(devcluster.POD_CIDR)
    for type_ in ("StorageReady", "PodReady", "Ready"):
        cond = condition(ws, type_)
        assert cond["status"] == "True", cond
        assert cond["reason"] and cond["lastTransitionTime"]
        assert cond["observedGeneration"] == ws["metadata"]["generation"]

    names = child_names("alice")
    for kind in CHILDREN:
        obj = get(kubectl, ns, kind, names[kind])
        assert obj is not None, kind
        assert obj["metadata"]["labels"]["devplane.io/workspace"] == "alice"
        # Retain is the default: the home volume has no owner, everything else is owned.
        assert owned_by(obj, ws) == (kind != "persistentvolumeclaim"), kind
    pod = get(kubectl, ns, "pod", "ws-alice")
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "home-alice"
    assert pod["status"]["podIP"] == status["podIP"]
    # No finalizer: deleting a Workspace never waits for the operator.
    assert not ws["metadata"].get("finalizers")

    # The operator posts the Event after the status write that made it Running: wait for it.
    wait_for("the Workspace's Running Event", lambda: "Running" in workspace_event_reasons(
        kubectl, ns, "alice"))  # fmt: skip

    table = kubectl("get", "ws", "-n", ns)
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "OWNER", "PHASE", "READY", "AGE"]
    assert row.split()[:4] == ["alice", "alice", "Running", "True"]


def test_deleted_children_come_back(kubectl, ws_namespace):
    ns, _ = ws_namespace
    apply(kubectl, ns, workspace("bob"))
    wait_ready(kubectl, ns, "bob")
    names = child_names("bob")
    before = {k: get(kubectl, ns, k, names[k])["metadata"]["uid"] for k in CHILDREN}
    for kind in ("pod", "service", "configmap", "networkpolicy"):
        kubectl("delete", kind, names[kind], "-n", ns, "--wait=false")

    def all_back():
        objs = {k: get(kubectl, ns, k, names[k]) for k in CHILDREN}
        return all(
            (o is not None and o["metadata"]["uid"] != before[k]) or k == "persistentvolumeclaim"
            for k, o in objs.items()
        )

    wait_for("every deleted child to be re-created", all_back, timeout=120)
    ws = wait_ready(kubectl, ns, "bob")
    assert (
        get(kubectl, ns, "persistentvolumeclaim", "home-bob")["metadata"]["uid"]
        == (before["persistentvolumeclaim"])
    )
    assert ws["status"]["phase"] == "Running"


def test_hand_edited_children_are_put_back(kubectl, ws_namespace):
    ns, _ = ws_namespace
    apply(kubectl, ns, workspace("carol"))
    wait_ready(kubectl, ns, "carol")
    pod = get(kubectl, ns, "pod", "ws-carol")
    image = pod["spec"]["containers"][0]["image"]
    svc = get(kubectl, ns, "service", "ws-carol")
    config = get(kubectl, ns, "configmap", "ws-carol-opencode")["data"]

    # A pod's image (mutable) and labels; a Service's selector and port; the ConfigMap's data;
    # the NetworkPolicy's rules.
    kubectl(
        "patch", "pod", "ws-carol", "-n", ns, "--type=strategic", "-p",
        json.dumps({
            "metadata": {"labels": {OWNER_LABEL: "mallory"}},
            "spec": {"containers": [{"name": "workspace", "image": "evil/image:1"}]},
        }),
    )  # fmt: skip
    kubectl(
        "patch", "service", "ws-carol", "-n", ns, "--type=merge", "-p",
        json.dumps({"spec": {"selector": {"app": "other"}, "ports": [
            {"name": "http", "port": 80, "targetPort": PROXY_PORT, "protocol": "TCP"}]}}),
    )  # fmt: skip
    kubectl(
        "patch", "configmap", "ws-carol-opencode", "-n", ns, "--type=merge", "-p",
        json.dumps({"data": {"opencode.json": "{}", "extra": "x"}}),
    )  # fmt: skip
    kubectl(
        "patch", "networkpolicy", "ws-carol", "-n", ns, "--type=merge", "-p",
        json.dumps({"spec": {"egress": [{}]}}),  # {} = allow all egress
    )  # fmt: skip

    def restored():
        p = get(kubectl, ns, "pod", "ws-carol")
        s = get(kubectl, ns, "service", "ws-carol")
        c = get(kubectl, ns, "configmap", "ws-carol-opencode")
        n = get(kubectl, ns, "networkpolicy", "ws-carol")
        return (
            p is not None
            and p["spec"]["containers"][0]["image"] == image
            and p["metadata"]["labels"]["devplane.io/owner"] == "carol"
            and s["spec"]["selector"] == svc["spec"]["selector"]
            and [x["port"] for x in s["spec"]["ports"]] == [8888]
            and c["data"] == config
            and {} not in n["spec"]["egress"]
        )

    wait_for("the hand edits to be undone", restored, timeout=120)
    # The image was patched back in place (it is mutable), so the pod is the same one.
    assert get(kubectl, ns, "pod", "ws-carol")["metadata"]["uid"] == pod["metadata"]["uid"]
    wait_ready(kubectl, ns, "carol")


def test_stop_then_start_keeps_the_same_volume(kubectl, ws_namespace):
    ns, _ = ws_namespace
    apply(kubectl, ns, workspace("dave"))
    wait_ready(kubectl, ns, "dave")
    pvc_uid = get(kubectl, ns, "pvc", "home-dave")["metadata"]["uid"]
    others = {k: get(kubectl, ns, k, n)["metadata"]["uid"] for k, n in child_names("dave").items()}

    kubectl("patch", "ws", "dave", "-n", ns, "--type=merge", "-p", '{"spec":{"started":false}}')

    def stopped():
        ws = get(kubectl, ns, "workspace", "dave")
        return ws if ws["status"]["phase"] == "Stopped" else None

    ws = wait_for("phase Stopped", stopped)
    assert get(kubectl, ns, "pod", "ws-dave") is None
    assert condition(ws, "Ready")["status"] == "False"
    assert condition(ws, "Ready")["reason"] == "Stopped"
    assert "podIP" not in ws["status"]
    # Only the pod went away.
    for kind in ("service", "configmap", "networkpolicy", "persistentvolumeclaim"):
        obj = get(kubectl, ns, kind, child_names("dave")[kind])
        assert obj["metadata"]["uid"] == others[kind], kind

    kubectl("patch", "ws", "dave", "-n", ns, "--type=merge", "-p", '{"spec":{"started":true}}')
    ws = wait_ready(kubectl, ns, "dave")
    assert ws["status"]["phase"] == "Running"
    assert get(kubectl, ns, "pvc", "home-dave")["metadata"]["uid"] == pvc_uid
    pod = get(kubectl, ns, "pod", "ws-dave")
    assert pod["metadata"]["uid"] != others["pod"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"] if
              "persistentVolumeClaim" in v]  # fmt: skip
    assert claims == ["home-dave"]


def test_delete_with_retain_keeps_the_volume_and_a_new_workspace_reuses_it(kubectl, ws_namespace):
    ns, _ = ws_namespace
    apply(kubectl, ns, workspace("erin", "dev"))
    name = "erin--dev"
    wait_ready(kubectl, ns, name)
    pvc_uid = get(kubectl, ns, "pvc", f"home-{name}")["metadata"]["uid"]

    kubectl("delete", "ws", name, "-n", ns, "--timeout=30s")

    def collected():  # real garbage collection by kube-controller-manager
        return all(get(kubectl, ns, k, f"ws-{name}") is None for k in ("pod", "service"))

    wait_for("the owned children to be garbage-collected", collected, timeout=120)
    pvc = get(kubectl, ns, "pvc", f"home-{name}")
    assert pvc is not None and pvc["metadata"]["uid"] == pvc_uid

    apply(kubectl, ns, workspace("erin", "dev"))
    ws = wait_ready(kubectl, ns, name)
    assert ws["status"]["pvcName"] == f"home-{name}"
    assert get(kubectl, ns, "pvc", f"home-{name}")["metadata"]["uid"] == pvc_uid


def home_volume(name: str, owner: str) -> dict:
    """A retained home volume as an older release left it (no ownerReference)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": name,
            "labels": {MANAGED_BY: MANAGED_BY_VALUE},
            "annotations": {OWNER_ANNOTATION: owner},
        },
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def test_a_home_volume_named_by_an_older_release_is_kept_only_by_its_owner(
    kubectl, make_namespace, run_operator
):
    """Hashed names got a wider hash (devplane_api.naming): a user whose home volume has the
    old name gets it back, also when the operator starts cold with it already there; a volume
    under the old name of someone else (the old hash could be matched on purpose) is never
    mounted for them."""
    ns = make_namespace("op")
    gina, ivy = "Gina@Example.org", "Ivy@Example.org"
    mine, squatted = naming.legacy_pvc_name(gina), naming.legacy_pvc_name(ivy)
    apply(kubectl, ns, home_volume(mine, gina), home_volume(squatted, "mallory"))
    apply(kubectl, ns, workspace(gina), workspace(ivy))
    run_operator(ns)

    ws = wait_ready(kubectl, ns, naming.workspace_name(gina))
    assert ws["status"]["pvcName"] == mine
    pod = get(kubectl, ns, "pod", naming.child_name(naming.workspace_name(gina)))
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == mine
    assert get(kubectl, ns, "pvc", naming.pvc_name(gina)) is None

    ws = wait_ready(kubectl, ns, naming.workspace_name(ivy))
    assert ws["status"]["pvcName"] == naming.pvc_name(ivy) != squatted
    pod = get(kubectl, ns, "pod", naming.child_name(naming.workspace_name(ivy)))
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == naming.pvc_name(ivy)


def test_delete_with_reclaim_delete_removes_the_volume(kubectl, ws_namespace):
    ns, _ = ws_namespace
    apply(kubectl, ns, workspace("frank", storage={"reclaimPolicy": "Delete"}))
    ws = wait_ready(kubectl, ns, "frank")
    assert owned_by(get(kubectl, ns, "pvc", "home-frank"), ws)
    kubectl("delete", "ws", "frank", "-n", ns, "--timeout=30s")
    wait_for(
        "the home volume to be deleted",
        lambda: get(kubectl, ns, "pvc", "home-frank") is None,
        timeout=120,
    )


def test_delete_completes_while_the_operator_is_down(kubectl, make_namespace, run_operator):
    ns = make_namespace("op")
    op = run_operator(ns)
    apply(kubectl, ns, workspace("gina"))
    wait_ready(kubectl, ns, "gina")
    op.kill()
    proc = kubectl("delete", "ws", "gina", "-n", ns, "--timeout=20s", check=False)
    assert proc.returncode == 0, proc.stderr
    assert get(kubectl, ns, "workspace", "gina") is None
    wait_for(
        "the pod to be garbage-collected without the operator",
        lambda: get(kubectl, ns, "pod", "ws-gina") is None,
        timeout=120,
    )


def test_image_pull_failure_is_reported_with_its_cause(kubectl, ws_namespace):
    ns, _ = ws_namespace
    apply(kubectl, ns, workspace("hank", image="registry.invalid/ws:1"))

    def stuck():
        ws = get(kubectl, ns, "workspace", "hank")
        return ws if condition(ws, "Ready").get("reason") == "ImagePullFailed" else None

    ws = wait_for("Ready reason ImagePullFailed", stuck)
    assert condition(ws, "Ready")["status"] == "False"
    assert "registry.invalid/ws:1" in ws["status"]["message"]
    assert "cannot be pulled" in ws["status"]["message"]
    assert ws["status"]["phase"] == "Starting"
    # The Warning is posted after the status write that made the Workspace stuck: wait for it.
    wait_for("a Warning Event ImagePullFailed", lambda: "ImagePullFailed" in (
        workspace_event_reasons(kubectl, ns, "hank", type_="Warning")))  # fmt: skip

    # Fixing the image recovers: the spec hash changes, the pod is replaced.
    fixed = '{"spec":{"image":"devplane/workspace:fixed"}}'
    kubectl("patch", "ws", "hank", "-n", ns, "--type=merge", "-p", fixed)
    wait_ready(kubectl, ns, "hank")


def test_unschedulable_pod_is_reported(kubectl, ws_namespace):
    ns, _ = ws_namespace
    too_big = {"requests": {"cpu": "100000"}, "limits": {"cpu": "100000"}}
    apply(kubectl, ns, workspace("ivan", resources=too_big))

    def stuck():  # the scheduler first waits for the volume, then names the real cause
        ws = get(kubectl, ns, "workspace", "ivan")
        cond = condition(ws, "Ready")
        return ws if cond.get("reason") == "Unschedulable" and "cpu" in cond["message"] else None

    ws = wait_for("Ready reason Unschedulable", stuck)
    assert ws["status"]["phase"] == "Pending"
    assert "cannot be scheduled" in ws["status"]["message"]
    assert "cpu" in ws["status"]["message"].lower()


def test_unbound_volume_is_reported(kubectl, make_namespace, run_operator):
    ns = make_namespace("op")
    run_operator(ns, DEVPLANE_STUCK_AFTER_SECONDS="3")
    apply(kubectl, ns, workspace("judy", storage={"storageClassName": "does-not-exist"}))

    def stuck():
        ws = get(kubectl, ns, "workspace", "judy")
        return ws if condition(ws, "Ready").get("reason") == "VolumePending" else None

    ws = wait_for("Ready reason VolumePending", stuck, timeout=30)
    assert condition(ws, "StorageReady")["status"] == "False"
    assert "does-not-exist" in ws["status"]["message"]


def test_pod_is_admitted_where_restricted_is_enforced(kubectl, make_namespace, run_operator):
    ns = make_namespace("op", restricted=True)
    run_operator(ns)
    apply(kubectl, ns, workspace("kate"))
    ws = wait_ready(kubectl, ns, "kate")
    assert ws["status"]["phase"] == "Running"
    # And the namespace really rejects a pod that is not restricted.
    rogue = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "rogue"},
        "spec": {"containers": [{"name": "c", "image": "x/y:1"}]},
    }
    proc = kubectl(
        "apply", "-n", ns, "-f", "-", stdin=json.dumps(rogue), check=False
    )  # fmt: skip
    assert proc.returncode != 0 and "restricted" in proc.stderr


def test_the_sample_applies_cleanly_and_runs(kubectl, ws_namespace):
    from devplane_dev.paths import ROOT

    ns, _ = ws_namespace
    kubectl("apply", "-n", ns, "-f", str(ROOT / "config" / "samples" / "workspace.yaml"))
    ws = wait_ready(kubectl, ns, "alice")
    assert ws["spec"]["storage"]["reclaimPolicy"] == "Retain"


def test_image_pull_failure_reported_by_a_kubelet_is_taken_from_the_pod(kubectl, ws_namespace):
    """Same as above, with the test playing the kubelet: it writes the pod status a kubelet
    writes when a pull fails, so the operator's side of the contract is pinned even if the
    local cluster's simulation changes.

    The image comes from a `.test` registry host, which no kwok stage plays (see
    hack/devcluster/kwok-stages.yaml): the test is the pod status's only writer, so the
    Workspace can only carry the test's words. (With a `.invalid` host, kwok's own pull-failure
    stage, delayed 200 ms after scheduling, could land after the test's write.)"""
    ns, _ = ws_namespace
    image = "registry.test/team/ws:2"
    apply(kubectl, ns, workspace("nina", image=image))
    wait_for("the pod to be scheduled", lambda: (get(kubectl, ns, "pod", "ws-nina") or {}).get(
        "spec", {}).get("nodeName"))  # fmt: skip
    message = f'Back-off pulling image "{image}": not found'
    status = {
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [
                {
                    "name": "workspace", "image": image, "imageID": "", "ready": False,
                    "restartCount": 0,
                    "state": {"waiting": {"reason": "ImagePullBackOff", "message": message}},
                }
            ],
        }
    }  # fmt: skip
    kubectl(
        "patch", "pod", "ws-nina", "-n", ns, "--subresource=status", "--type=merge",
        "-p", json.dumps(status),
    )  # fmt: skip

    def stuck():
        ws = get(kubectl, ns, "workspace", "nina")
        return ws if condition(ws, "Ready").get("reason") == "ImagePullFailed" else None

    ws = wait_for("Ready reason ImagePullFailed", stuck)
    # The pod's words, not a paraphrase: the kubelet's message, with the image it names.
    assert message in ws["status"]["message"] and image in ws["status"]["message"]
    assert condition(ws, "Ready")["status"] == "False"
    assert ws["status"]["phase"] == "Starting"
    # Nobody else wrote the pod's status: it still says what the test wrote.
    pod = get(kubectl, ns, "pod", "ws-nina")
    assert [s["state"] for s in pod["status"]["containerStatuses"]] == [
        {"waiting": {"reason": "ImagePullBackOff", "message": message}}
    ]


def test_extras_reach_a_pod_admitted_where_restricted_is_enforced(
    kubectl, make_namespace, run_operator
):
    """Placement, extra env and extra volumes (the operator's and the Workspace's, merged):
    the pod is admitted under PodSecurity `restricted` and carries each of them."""
    ns = make_namespace("op", restricted=True)
    defaults = {
        "DEVPLANE_WORKSPACE_EXTRA_ENV": json.dumps({"TZ": "Europe/Berlin", "TEAM": "all"}),
        "DEVPLANE_WORKSPACE_EXTRA_VOLUMES": json.dumps(
            [{"name": "scratch", "mountPath": "/scratch", "emptyDir": {"sizeLimit": "1Gi"}}]
        ),
        "DEVPLANE_WORKSPACE_NODE_SELECTOR": "kubernetes.io/os=linux",
    }
    run_operator(ns, **defaults)
    kubectl("create", "configmap", "datasets", "-n", ns, "--from-literal=README=shared")
    spec = {
        "extraEnv": [{"name": "TEAM", "value": "data"}],
        "extraVolumes": [
            {
                "name": "datasets",
                "mountPath": "/home/dev/datasets",
                "readOnly": True,
                "configMap": {"name": "datasets"},
            },
        ],
        "scheduling": {"tolerations": [{"key": "dedicated", "operator": "Exists"}]},
    }
    apply(kubectl, ns, workspace("ines", **spec))
    wait_ready(kubectl, ns, "ines")
    pod = get(kubectl, ns, "pod", "ws-ines")
    container = next(c for c in pod["spec"]["containers"] if c["name"] == "workspace")
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TZ"] == "Europe/Berlin" and env["TEAM"] == "data"  # the Workspace's wins
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/home/dev/datasets"]["readOnly"] is True
    assert "/scratch" in mounts
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["extra-datasets"]["configMap"]["name"] == "datasets"
    assert volumes["extra-scratch"]["emptyDir"] == {"sizeLimit": "1Gi"}
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert {"key": "dedicated", "operator": "Exists"} in pod["spec"]["tolerations"]
    # The auth proxy's container gets none of them.
    proxy = next(c for c in pod["spec"]["containers"] if c["name"] == "authproxy")
    assert "TEAM" not in {e["name"] for e in proxy["env"]}
    assert all(m["name"].startswith("extra-") is False for m in proxy["volumeMounts"])


def test_an_extra_that_reaches_another_users_home_is_refused(kubectl, ws_namespace):
    ns, _ = ws_namespace
    stolen = {"name": "h", "mountPath": "/home/dev/h", "persistentVolumeClaim": {"claimName":
              "home-bob"}}  # fmt: skip
    apply(kubectl, ns, workspace("eve", extraVolumes=[stolen]))

    def failed() -> dict | None:
        ws = get(kubectl, ns, "workspace", "eve")
        return ws if (ws.get("status") or {}).get("phase") == "Failed" else None

    ws = wait_for("eve's Workspace Failed", failed, timeout=30)
    assert condition(ws, "Ready")["reason"] == "InvalidSpec"
    assert "names 'home-bob', a workspace's own object" in ws["status"]["message"]
    assert get(kubectl, ns, "pod", "ws-eve") is None
