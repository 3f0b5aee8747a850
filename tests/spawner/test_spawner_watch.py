"""DevPlaneSpawner against the real API server, with the Workspace status written by the test.

The operator is not running here on purpose: the test plays its part (writing status through
the status subresource) so it can put the Workspace in exactly the state under test and check
that start()/stop() react to the watch at once. The full path with the real operator is in
tests/hub/test_hub_workspaces.py.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from types import SimpleNamespace

import pytest
from devplane_dev.kubectl import service_account_kubeconfig
from devplane_dev.operator_process import install_crd
from devplane_dev.poll import wait_for_async
from devplane_dev.workspaces import workspace_manifest
from jupyterhub import orm
from jupyterhub.objects import Hub
from jupyterhub.utils import iterate_until
from kubernetes_asyncio import client as k8s

from devplane_api import naming
from devplane_api.v1alpha1 import GROUP, PLURAL, PROXY_PORT, VERSION
from devplane_spawner import workspace_client
from devplane_spawner.spawner import DevPlaneSpawner, WorkspaceStartError

pytestmark = pytest.mark.cluster


@pytest.fixture
def ws_namespace(kubeconfig, bin_dir, make_namespace) -> str:
    install_crd([str(bin_dir / "kubectl"), "--kubeconfig", str(kubeconfig)])
    return make_namespace("spw")


async def no_auth_state() -> None:
    """A hub user without auth state (made by an admin): no git identity."""


def make_spawner(kubeconfig, namespace: str, user: str, **config) -> DevPlaneSpawner:
    orm_server = orm.Server(proto="http", ip="", port=0, cookie_name="c", base_url=f"/user/{user}/")
    spawner = DevPlaneSpawner(
        user=SimpleNamespace(
            name=user, url=f"/user/{user}/", escaped_name=user, get_auth_state=no_auth_state
        ),
        hub=Hub(ip="127.0.0.1", port=8081, base_url="/hub/"),
        orm_spawner=SimpleNamespace(name="", server=orm_server, display_name="", state=None),
        api_token="t0ken", oauth_client_id=f"jupyterhub-user-{user}",
        namespace=namespace, kubeconfig=str(kubeconfig), hub_connect_via="pod-ip", **config,
    )  # fmt: skip
    return spawner


async def set_status(api_client, namespace: str, name: str, status: dict) -> None:
    custom = k8s.CustomObjectsApi(api_client)
    for _ in range(100):  # until start() has created it
        try:
            ws = await custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            break
        except k8s.ApiException:
            await asyncio.sleep(0.05)
    status = {"observedGeneration": ws["metadata"]["generation"], **status}
    await custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, name, {"status": status},
        _content_type="application/merge-patch+json",
    )  # fmt: skip


def cond(type_: str, ok: bool, reason: str, message: str = "") -> dict:
    return {
        "type": type_,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message or reason,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }


async def test_start_returns_the_pod_url_when_ready(kubeconfig, api_client, ws_namespace):
    spawner = make_spawner(kubeconfig, ws_namespace, "wendy")
    task = asyncio.ensure_future(spawner.start())
    await asyncio.sleep(0.5)
    assert not task.done()  # waiting on the watch
    await set_status(api_client, ws_namespace, "wendy", {
        "phase": "Running", "podIP": "127.20.9.9", "url": f"http://ws-wendy.x.svc:{PROXY_PORT}",
        "conditions": [cond("StorageReady", True, "Bound"), cond("PodReady", True, "PodReady"),
                       cond("Ready", True, "Running")],
    })  # fmt: skip
    assert await asyncio.wait_for(task, 10) == "http://127.20.9.9:8888"
    core = k8s.CoreV1Api(api_client)
    secret = await core.read_namespaced_secret("ws-wendy-hub", ws_namespace)
    assert secret.metadata.owner_references[0].name == "wendy"
    assert await spawner.poll() is None

    stop = asyncio.ensure_future(spawner.stop())
    await asyncio.sleep(0.5)
    assert not stop.done()  # until the operator says Stopped
    await set_status(api_client, ws_namespace, "wendy", {
        "phase": "Stopped", "conditions": [cond("Ready", False, "Stopped")],
    })  # fmt: skip
    await asyncio.wait_for(stop, 10)
    assert await spawner.poll() == 0


async def test_start_fails_fast_on_an_image_pull_failure(kubeconfig, api_client, ws_namespace):
    spawner = make_spawner(kubeconfig, ws_namespace, "walt")
    task = asyncio.ensure_future(spawner.start())
    await asyncio.sleep(0.5)
    message = "the image registry.invalid/ws:1 of container workspace cannot be pulled"
    begun = time.monotonic()
    await set_status(api_client, ws_namespace, "walt", {
        "phase": "Starting", "message": message,
        "conditions": [cond("StorageReady", True, "Bound"),
                       cond("Ready", False, "ImagePullFailed", message)],
    })  # fmt: skip
    with pytest.raises(WorkspaceStartError) as info:
        await asyncio.wait_for(task, 10)
    assert time.monotonic() - begun < 5
    assert info.value.jupyterhub_message == f"Your workspace cannot start: {message}"


async def test_delete_forever_removes_the_workspace(kubeconfig, api_client, ws_namespace):
    spawner = make_spawner(kubeconfig, ws_namespace, "wanda")
    task = asyncio.ensure_future(spawner.start())
    await set_status(api_client, ws_namespace, "wanda", {"phase": "Pending"})
    task.cancel()
    custom = k8s.CustomObjectsApi(api_client)
    await spawner.delete_forever()
    with pytest.raises(k8s.ApiException) as info:
        await custom.get_namespaced_custom_object(GROUP, VERSION, ws_namespace, PLURAL, "wanda")
    assert info.value.status == 404


async def test_progress_follows_a_start_as_the_hub_reads_it(kubeconfig, api_client, ws_namespace):
    """The stream the spawn page shows, read the hub's way (each item from a task of its own,
    jupyterhub.utils.iterate_until): a line per step as the status moves, the operator's Event
    as a line, and the end once the Workspace is ready."""
    spawner = make_spawner(kubeconfig, ws_namespace, "pat")
    start = asyncio.ensure_future(spawner.start())
    never = asyncio.get_running_loop().create_future()  # the hub's deadline, not reached here
    messages: list[str] = []
    bar: list[int] = []

    async def read() -> None:
        async for event in iterate_until(never, spawner.progress()):
            messages.append(event["message"])
            bar.append(event["progress"])

    reader = asyncio.ensure_future(read())

    async def says(line: str) -> None:
        while line not in messages:
            assert not reader.done(), f"the stream ended early: {messages}"
            await asyncio.sleep(0.02)

    await asyncio.wait_for(says("Your workspace has been requested"), 10)
    await set_status(api_client, ws_namespace, "pat", {
        "phase": "Starting", "conditions": [cond("StorageReady", True, "Bound"),
                                            cond("PodReady", False, "ContainerCreating")],
    })  # fmt: skip
    await asyncio.wait_for(says("Your home volume is ready"), 10)
    ws = await k8s.CustomObjectsApi(api_client).get_namespaced_custom_object(
        GROUP, VERSION, ws_namespace, PLURAL, "pat"
    )
    await k8s.CoreV1Api(api_client).create_namespaced_event(ws_namespace, {
        "metadata": {"generateName": "pat-"}, "type": "Normal", "reason": "Pulling",
        "message": "Pulling the workspace image",
        "involvedObject": {"apiVersion": ws["apiVersion"], "kind": ws["kind"], "name": "pat",
                           "namespace": ws_namespace, "uid": ws["metadata"]["uid"]},
    })  # fmt: skip
    await asyncio.wait_for(says("Pulling the workspace image"), 10)
    await set_status(api_client, ws_namespace, "pat", {
        "phase": "Running", "podIP": "127.20.9.10", "url": f"http://ws-pat.x.svc:{PROXY_PORT}",
        "conditions": [cond("StorageReady", True, "Bound"), cond("PodReady", True, "PodReady"),
                       cond("Ready", True, "Running")],
    })  # fmt: skip
    await asyncio.wait_for(reader, 10)  # the stream ends by itself once the Workspace is ready
    await asyncio.wait_for(start, 10)
    assert messages[-1] == "Your workspace is ready, connecting"
    assert len(messages) == len(set(messages)), f"a line was said twice: {messages}"
    assert bar == sorted(bar), f"the progress bar went back: {bar}"
    await spawner.delete_forever()


async def read_workspace(api_client, namespace: str, name: str) -> dict | None:
    try:
        return await k8s.CustomObjectsApi(api_client).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
    except k8s.ApiException as e:
        assert e.status == 404, e
        return None


async def create_workspace(api_client, namespace: str, body: dict) -> dict:
    return await k8s.CustomObjectsApi(api_client).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )


async def test_a_workspace_of_another_user_under_our_name_is_never_adopted(
    kubeconfig, api_client, ws_namespace
):
    """A name clash (an admin's object, or a user name searched to hash like another's) must
    not hand one user's Workspace — its home volume, its hub Secret — to someone else."""
    name = naming.workspace_name("olive")
    theirs = workspace_manifest("mallory", metadata={"name": name}, started=False)
    before = await create_workspace(api_client, ws_namespace, theirs)
    spawner = make_spawner(kubeconfig, ws_namespace, "olive")

    with pytest.raises(WorkspaceStartError) as info:
        await asyncio.wait_for(spawner.start(), 10)
    assert "taken by another user's workspace" in info.value.jupyterhub_message
    assert "mallory" not in info.value.jupyterhub_message  # the admin reads that in the log

    after = await read_workspace(api_client, ws_namespace, name)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    core = k8s.CoreV1Api(api_client)
    with pytest.raises(k8s.ApiException) as missing:
        await core.read_namespaced_secret(naming.child_name(name, "hub"), ws_namespace)
    assert missing.value.status == 404  # olive's token was not written for mallory's pod
    # Nor does anything else the hub does to olive's server touch it.
    assert await spawner.poll() == 0
    await spawner.stop()
    await spawner.delete_forever()
    after = await read_workspace(api_client, ws_namespace, name)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def test_a_workspace_named_by_an_older_release_is_found_again(
    kubeconfig, api_client, ws_namespace
):
    """Names with a hash got a wider one: a user's Workspace made with the old, shorter hash
    is still theirs when the hub has no state naming it (e.g. a restored hub database)."""
    user = "Liam@Example.org"
    legacy = naming.legacy_workspace_name(user)
    assert legacy != naming.workspace_name(user)
    old = workspace_manifest(user, metadata={"name": legacy}, started=False)
    created = await create_workspace(api_client, ws_namespace, old)
    spawner = make_spawner(kubeconfig, ws_namespace, user)

    start = asyncio.ensure_future(spawner.start())

    async def started() -> None:  # start() has patched the old Workspace, not made a new one
        while not ((await read_workspace(api_client, ws_namespace, legacy))["spec"]["started"]):
            assert not start.done(), start
            await asyncio.sleep(0.05)

    await asyncio.wait_for(started(), 10)
    await set_status(api_client, ws_namespace, legacy, {
        "phase": "Running", "podIP": "127.20.9.11",
        "conditions": [cond("StorageReady", True, "Bound"), cond("PodReady", True, "PodReady"),
                       cond("Ready", True, "Running")],
    })  # fmt: skip
    assert await asyncio.wait_for(start, 10) == "http://127.20.9.11:8888"
    ws = await read_workspace(api_client, ws_namespace, legacy)
    assert ws["metadata"]["uid"] == created["metadata"]["uid"] and ws["spec"]["started"] is True
    assert await read_workspace(api_client, ws_namespace, naming.workspace_name(user)) is None
    assert spawner.get_state()["workspace_name"] == legacy


# ------------------------------------------------------------------ what goes wrong, said
# (docs/troubleshooting.md quotes these messages)


async def test_a_hub_without_rights_says_who_must_fix_what(
    kubeconfig, kubectl, ws_namespace, tmp_path, caplog
):
    config = service_account_kubeconfig(
        kubectl, kubeconfig, ws_namespace, "no-rights", tmp_path / "kc"
    )
    spawner = make_spawner(config, ws_namespace, "rita")
    with caplog.at_level(logging.ERROR), pytest.raises(WorkspaceStartError) as info:
        await asyncio.wait_for(spawner.start(), 30)
    assert info.value.jupyterhub_message == (
        "Your workspace cannot start: the hub is not allowed to manage workspaces in namespace "
        f"{ws_namespace}. Tell an administrator."
    )
    # The admin's line names the refusal in the API server's words and what to check.
    assert "the API server refused the hub (403)" in caplog.text
    assert re.search(r'cannot (get|create) resource "workspaces"', caplog.text), caplog.text
    assert f"Check the hub's RoleBinding in namespace {ws_namespace}" in caplog.text


async def test_a_missing_workspace_type_is_named_not_a_stack_trace(
    kubeconfig, ws_namespace, monkeypatch, caplog
):
    # The API server as it is when the CRD (here: the version this hub speaks) is not installed.
    monkeypatch.setattr(workspace_client, "VERSION", "v1alpha0")
    spawner = make_spawner(kubeconfig, ws_namespace, "mona")
    with caplog.at_level(logging.ERROR), pytest.raises(WorkspaceStartError) as info:
        await asyncio.wait_for(spawner.start(), 30)
    assert info.value.jupyterhub_message == (
        "Your workspace cannot start: this cluster has no Workspace resource type. Tell an "
        "administrator."
    )
    assert "the CRD workspaces.devplane.io is not installed" in caplog.text
    assert "kubectl get crd workspaces.devplane.io" in caplog.text


async def test_a_missing_namespace_is_named(kubeconfig, caplog):
    spawner = make_spawner(kubeconfig, "no-such-namespace-x1", "nina")
    with caplog.at_level(logging.ERROR), pytest.raises(WorkspaceStartError) as info:
        await asyncio.wait_for(spawner.start(), 30)
    assert info.value.jupyterhub_message == (
        "Your workspace cannot start: the namespace no-such-namespace-x1 does not exist. Tell "
        "an administrator."
    )
    assert "namespace no-such-namespace-x1 does not exist" in caplog.text


async def test_the_spawn_page_says_when_no_operator_takes_the_workspace_up(
    kubeconfig, api_client, ws_namespace, caplog
):
    """No operator runs here: after operator_grace_seconds the stream says so (once), and the
    hub log says what to check; a Workspace the operator answers in time gets no such line."""
    never = asyncio.get_running_loop().create_future()

    async def lines_for(user: str, answer: bool) -> list[str]:
        spawner = make_spawner(kubeconfig, ws_namespace, user, operator_grace_seconds=1)
        start = asyncio.ensure_future(spawner.start())
        if answer:
            await set_status(api_client, ws_namespace, user, {"phase": "Pending"})
        messages: list[str] = []

        async def read() -> None:
            async for event in iterate_until(never, spawner.progress()):
                messages.append(event["message"])

        reader = asyncio.ensure_future(read())
        await asyncio.sleep(2.5)  # well past the grace
        reader.cancel()
        start.cancel()
        await asyncio.gather(reader, start, return_exceptions=True)
        await spawner.delete_forever()
        return messages

    with caplog.at_level(logging.WARNING):
        silent = await lines_for("otto", answer=False)
    warning = (
        "Warning: nothing has taken up your workspace after 1 s (the DevPlane operator has not "
        "answered). Still waiting; if this lasts, tell an administrator."
    )
    assert silent.count(warning) == 1, silent
    assert f"does it watch namespace {ws_namespace}" in caplog.text
    assert warning not in await lines_for("olga", answer=True)


async def test_every_spawner_polls_from_one_shared_watch(
    kubeconfig, api_client, ws_namespace, monkeypatch
):
    """poll() for N running servers costs no API call (issue 14: it was a GET each, every
    poll interval), and still sees at once a Workspace stopped or deleted behind the hub's
    back, also after the API server has ended the watch several times (resuming it is
    pinned by test_spawner_workspace_watch.py; here it must only keep working)."""
    from devplane_spawner import workspace_watch

    monkeypatch.setattr(workspace_watch, "WATCH_SECONDS", 1)  # ended several times below
    users = [f"poll{i}" for i in range(6)]
    spawners = [make_spawner(kubeconfig, ws_namespace, user) for user in users]
    starts = [asyncio.ensure_future(spawner.start()) for spawner in spawners]
    ready = {
        "phase": "Running", "podIP": "127.20.9.8", "url": f"http://x.svc:{PROXY_PORT}",
        "conditions": [cond("StorageReady", True, "Bound"), cond("PodReady", True, "PodReady"),
                       cond("Ready", True, "Running")],
    }  # fmt: skip
    for user in users:
        await set_status(api_client, ws_namespace, user, ready)
    await asyncio.wait_for(asyncio.gather(*starts), 20)

    gets = []
    original = k8s.CustomObjectsApi.get_namespaced_custom_object

    async def counted(self, *args, **kwargs):
        gets.append(args)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(k8s.CustomObjectsApi, "get_namespaced_custom_object", counted)
    await asyncio.sleep(2.5)  # the server has ended the watch twice meanwhile
    assert [await spawner.poll() for spawner in spawners] == [None] * len(users)
    assert gets == [], "poll() read from the API server"

    # Changes made behind the hub's back arrive through the watch.
    custom = k8s.CustomObjectsApi(api_client)
    await set_status(api_client, ws_namespace, users[0], {
        "phase": "Stopped", "conditions": [cond("Ready", False, "Stopped")],
    })  # fmt: skip
    await custom.delete_namespaced_custom_object(GROUP, VERSION, ws_namespace, PLURAL, users[1])

    async def both_seen() -> bool:
        return [await spawner.poll() for spawner in spawners[:3]] == [0, 0, None]

    await wait_for_async("poll() to see the stop and the deletion", both_seen, 10, 0.1)
    assert [args for args in gets if args[-1] in users[2:]] == []
