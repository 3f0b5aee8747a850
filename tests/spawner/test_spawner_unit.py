"""DevPlaneSpawner's pure parts: the Secret's content, the Workspace it writes, its state,
profile validation as JupyterHub runs it (HTTP 400), and the traitlet help texts."""

from __future__ import annotations

import json
import socket
from types import SimpleNamespace

import pytest
from jupyterhub import orm
from jupyterhub.objects import Hub
from kubernetes_asyncio.client.exceptions import ApiException
from tornado import web
from traitlets import TraitError

from devplane_spawner.spawner import DevPlaneSpawner, WorkspaceStartError, replacing
from devplane_spawner.workspace_client import explain

PROFILES = [
    {"slug": "small", "resources": {"limits": {"cpu": "1", "memory": "2Gi"}}},
    {"slug": "big", "image": "registry.local/ws:big", "model": "vllm/qwen", "default": True},
]


async def no_auth_state() -> None:
    """A hub user without auth state (made by an admin): no git identity."""


def make_spawner(server_name: str = "dev", **config) -> DevPlaneSpawner:
    hub = Hub(ip="127.0.0.1", port=8081, base_url="/hub/")
    user = SimpleNamespace(
        name="Alice@x.com", url="/user/Alice@x.com/", escaped_name="Alice@x.com",
        get_auth_state=no_auth_state,
    )  # fmt: skip
    # An ORM server object carries the URL prefix get_env() reports.
    orm_server = orm.Server(
        proto="http", ip="", port=0, cookie_name="c", base_url=f"/user/Alice@x.com/{server_name}/"
    )
    orm_spawner = SimpleNamespace(
        name=server_name, server=orm_server, display_name=server_name, state=None
    )
    spawner = DevPlaneSpawner(
        user=user, hub=hub, orm_spawner=orm_spawner, api_token="secret-token",
        oauth_client_id="jupyterhub-user-alice", environment={"LEAK": "1"}, **config,
    )  # fmt: skip
    return spawner


def test_secret_holds_only_the_jupyterhub_environment():
    env = make_spawner().hub_env()
    assert env["JUPYTERHUB_API_TOKEN"] == "secret-token"
    assert env["JUPYTERHUB_SERVICE_PREFIX"] == "/user/Alice@x.com/dev/"
    assert env["JUPYTERHUB_SERVER_NAME"] == "dev"
    required = {
        "JUPYTERHUB_API_URL", "JUPYTERHUB_CLIENT_ID", "JUPYTERHUB_USER",
        "JUPYTERHUB_OAUTH_CALLBACK_URL", "JUPYTERHUB_ACTIVITY_URL", "JUPYTERHUB_BASE_URL",
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES",
    }  # fmt: skip
    assert required <= set(env)
    # Admin `environment` entries and the deprecated token alias are not hub credentials.
    assert all(k.startswith("JUPYTERHUB_") for k in env)


async def test_workspace_from_the_chosen_profile():
    spawner = make_spawner(
        profile_list=PROFILES,
        ai_providers=[{"name": "vllm", "baseURL": "http://vllm:8000/v1", "models": ["qwen"]}],
        storage_class="fast",
        storage_reclaim_policy="Delete",
    )
    await spawner.apply_profile({"profile": "big"})
    body = spawner._new_workspace(spawner.workspace_spec())
    assert body["metadata"]["name"] == "alice-x-com---30f5543c7fff0dbc79c08057--dev"
    assert body["metadata"]["annotations"]["devplane.io/owner"] == "Alice@x.com"
    assert body["metadata"]["labels"]["devplane.io/server"] == "dev"
    spec = body["spec"]
    assert spec["owner"] == "Alice@x.com" and spec["serverName"] == "dev"
    assert spec["started"] is True
    assert spec["image"] == "registry.local/ws:big"
    assert "resources" not in spec  # neither the profile nor the spawner: operator default
    assert spec["servicePrefix"] == "/user/Alice@x.com/dev/"
    assert spec["ai"]["defaultModel"] == "vllm/qwen"
    assert spec["storage"] == {"reclaimPolicy": "Delete", "storageClassName": "fast"}
    assert spec["hubSecretRef"] == {"name": "ws-alice-x-com---30f5543c7fff0dbc79c08057--dev-hub"}
    assert "secret-token" not in repr(body)  # the token is only in the Secret

    await spawner.apply_profile({"profile": "small"})
    small = spawner.workspace_spec()
    assert small["image"] is None  # a merge patch with None restores the operator's default
    assert small["resources"] == {"limits": {"cpu": "1", "memory": "2Gi"}}


async def test_bad_user_options_become_http_400_through_the_hub_hook():
    spawner = make_spawner(profile_list=PROFILES)
    # JupyterHub 6 runs this hook before start() and passes an HTTPError through unchanged.
    with pytest.raises(web.HTTPError) as info:
        await spawner._run_apply_user_options({"profile": "huge"})
    assert info.value.status_code == 400
    assert "choose one of: small, big" in info.value.log_message
    await spawner._run_apply_user_options({})
    assert spawner._profile.slug == "big"


def test_broken_profile_list_fails_at_configuration_time():
    with pytest.raises(Exception, match="duplicate"):
        make_spawner(profile_list=[{"slug": "a"}, {"slug": "a"}])


def test_state_round_trip_finds_the_same_workspace():
    first = make_spawner(namespace="team-a")
    first.ws_name()
    state = first.get_state()
    assert state == {
        "workspace_name": "alice-x-com---30f5543c7fff0dbc79c08057--dev",
        "namespace": "team-a",
    }
    second = make_spawner()
    second.load_state(state)
    assert second.ws_name() == first.ws_name() and second.namespace == "team-a"
    # A name stored by an older release wins over today's rule (volumes must never move).
    third = make_spawner()
    third.load_state({"workspace_name": "legacy-name", "namespace": "team-a"})
    assert third.ws_name() == "legacy-name"


async def test_poll_without_state_reports_not_running():
    assert await make_spawner().poll() == 0


async def test_options_form_lists_profiles():
    spawner = make_spawner(profile_list=PROFILES)
    form = await spawner.get_options_form()
    assert 'value="small"' in form and 'value="big" checked' in form
    assert spawner.options_from_form({"profile": ["small"]}) == {"profile": "small"}
    assert await make_spawner().get_options_form() == ""


async def test_a_callable_profile_list_gives_each_user_their_own_profiles():
    """As KubeSpawner's: called per user, sync or async, e.g. to offer profiles by group."""

    async def by_group(spawner):
        gpu = {"slug": "gpu", "display_name": "GPU", "image": "registry.local/ws:gpu"}
        return [PROFILES[0], gpu] if spawner.user.name.startswith("Alice") else PROFILES

    spawner = make_spawner(profile_list=by_group)
    form = await spawner.get_options_form()
    assert 'value="gpu"' in form and 'value="big"' not in form
    await spawner._run_apply_user_options({"profile": "gpu"})
    assert spawner.workspace_spec()["image"] == "registry.local/ws:gpu"
    with pytest.raises(web.HTTPError) as info:
        await spawner._run_apply_user_options({"profile": "big"})  # not offered to her
    assert info.value.status_code == 400 and "choose one of: small, gpu" in info.value.log_message

    # A list the callable returns that does not parse fails the start with the reason.
    spawner = make_spawner(profile_list=lambda spawner: [{"slug": "x"}, {"slug": "x"}])
    with pytest.raises(web.HTTPError) as info:
        await spawner._run_apply_user_options({})
    assert info.value.status_code == 400 and "duplicate profile slugs: x" in info.value.log_message


def test_connect_mode_is_checked():
    with pytest.raises(TraitError):
        make_spawner(hub_connect_via="dns")


def test_every_setting_is_documented():
    own = set(DevPlaneSpawner.class_own_traits(config=True))
    assert {"namespace", "profile_list", "hub_connect_via", "image"} <= own
    for name, trait in DevPlaneSpawner.class_own_traits(config=True).items():
        assert len((trait.help or "").strip()) > 20, f"{name} needs a help text"


async def test_a_create_refused_while_a_new_quota_counts_nothing_yet_is_retried(monkeypatch):
    """Right after an install the quota controller has not counted Workspaces yet, and the API
    server refuses creates with "status unknown for quota": a spawn then must wait, not fail.
    Any other refusal fails at once."""
    from kubernetes_asyncio.client.exceptions import ApiException

    from devplane_spawner import workspace_client

    monkeypatch.setattr(workspace_client, "QUOTA_RETRY_SECONDS", 0)
    pending = ApiException(status=403)
    pending.body = (
        '{"message": "workspaces.devplane.io \\"a\\" is forbidden: status unknown for quota: q"}'
    )
    answers: list = [pending, pending, {"metadata": {"name": "a"}}]

    class Custom:
        calls = 0

        async def create_namespaced_custom_object(self, *args):
            Custom.calls += 1
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

    offered: list = []  # what the shared watch was handed: the created object, once
    monkeypatch.setattr(
        workspace_client.WorkspaceClient, "watch", SimpleNamespace(offer=offered.append)
    )
    client = workspace_client.WorkspaceClient.__new__(workspace_client.WorkspaceClient)
    client.namespace, client.custom = "ns", Custom()
    assert await client.create({}) == {"metadata": {"name": "a"}}
    assert Custom.calls == 3
    assert offered == [{"metadata": {"name": "a"}}]
    forbidden = ApiException(status=403)
    forbidden.body = '{"message": "workspaces.devplane.io is forbidden: User cannot create"}'
    answers[:] = [forbidden]
    with pytest.raises(ApiException):
        await client.create({})


def with_auth_state(spawner: DevPlaneSpawner, state: dict | None) -> DevPlaneSpawner:
    async def get_auth_state() -> dict | None:
        return state

    spawner.user.get_auth_state = get_auth_state
    return spawner


async def test_git_identity_comes_from_the_identity_providers_claims():
    claims = {"name": "Alice Liddell", "email": "alice@example.org", "groups": ["devs"]}
    spawner = with_auth_state(make_spawner(), {"access_token": "t", "oauth_user": claims})
    assert await spawner.git_identity() == {"name": "Alice Liddell", "email": "alice@example.org"}
    # Other claim names, as a site's provider may use them.
    other = {"oauth_user": {"displayName": "A. L.", "mail": "al@example.org"}}
    spawner = with_auth_state(
        make_spawner(git_identity_claims={"name": "displayName", "email": "mail"}), other
    )
    assert await spawner.git_identity() == {"name": "A. L.", "email": "al@example.org"}


@pytest.mark.parametrize(
    "state",
    [
        None,  # no auth state: a user made by an admin, or auth state off
        {"oauth_user": {}},
        {"oauth_user": {"name": ["not", "a string"], "email": "not an address"}},
        {"oauth_user": {"name": "line\nbreak", "email": "  "}},
    ],
)
async def test_no_usable_claims_give_no_git_identity(state):
    assert await with_auth_state(make_spawner(), state).git_identity() == {}


def test_git_identity_claims_refuse_unknown_keys():
    with pytest.raises(TraitError, match=r"unknown key.*signingkey; use name and email"):
        make_spawner(git_identity_claims={"name": "name", "signingkey": "key"})


async def test_a_claim_longer_than_the_crd_takes_is_left_out():
    claims = {"oauth_user": {"name": "A" * 257, "email": "a@example.org"}}
    spawner = with_auth_state(make_spawner(), claims)
    assert await spawner.git_identity() == {"email": "a@example.org"}


def test_a_restart_patch_replaces_what_an_earlier_profile_set():
    """JSON merge patches merge objects: the patch must remove the nested keys the new spec
    leaves out (another profile's node labels, limits, ...), at every depth."""
    old = {
        "owner": "alice",
        "resources": {"limits": {"cpu": "4", "memory": "8Gi"}},
        "scheduling": {"nodeSelector": {"pool": "gpu"}, "tolerations": [{"key": "gpu"}]},
        "storage": {"size": "10Gi"},
    }
    new = {
        "resources": {"requests": {"cpu": "1"}},
        "scheduling": {"nodeSelector": {"size": "big"}},
        "image": None,
    }
    patch = replacing(old, new)
    assert patch == {
        "resources": {"limits": None, "requests": {"cpu": "1"}},
        "scheduling": {"nodeSelector": {"pool": None, "size": "big"}, "tolerations": None},
        "image": None,
    }

    # Applied as a merge patch (RFC 7386), it leaves exactly the new values.
    def merge(target, change):
        if not isinstance(change, dict):
            return change
        result = dict(target) if isinstance(target, dict) else {}
        for key, value in change.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = merge(result.get(key), value)
        return result

    merged = merge(old, patch)
    assert merged["scheduling"] == {"nodeSelector": {"size": "big"}}
    assert merged["resources"] == {"requests": {"cpu": "1"}}
    assert merged["storage"] == {"size": "10Gi"} and merged["owner"] == "alice"


@pytest.mark.parametrize(
    ("status", "message", "says"),
    [
        (403, 'workspaces.devplane.io is forbidden: User "x" cannot create resource "workspaces"',
         "not allowed to manage workspaces"),
        (403, 'workspaces.devplane.io "w" is forbidden: exceeded quota: q, requested: ...',
         'the cluster refused it: workspaces.devplane.io "w" is forbidden: exceeded quota'),
        (403, 'admission webhook "policy.example" denied the request: no', "denied the request"),
    ],
)  # fmt: skip
def test_a_refusal_is_named_for_what_it_is(status, message, says):
    """RBAC's words are RBAC; a quota or a webhook is passed on, not called an RBAC problem."""
    err = ApiException(status=status, reason="Forbidden")
    err.body = json.dumps({"kind": "Status", "reason": "Forbidden", "message": message})
    to_user, to_admin = explain(err, "ws")
    assert says in to_user
    assert ("RoleBinding" in to_admin) == ("cannot create resource" in message)


async def test_start_fails_with_a_reason_when_the_hub_cannot_reach_the_workspace(caplog):
    spawner = make_spawner(http_timeout=1)
    with socket.socket() as never_listening:  # bound, so connections to it are refused
        never_listening.bind(("127.0.0.1", 0))
        port = never_listening.getsockname()[1]
        with pytest.raises(WorkspaceStartError, match="the hub cannot reach it"):
            await spawner._wait_routable(f"http://127.0.0.1:{port}")
    assert "cannot open a connection" in caplog.text and "NetworkPolicy" in caplog.text
    assert "the last: Connection refused" in caplog.text  # what the tries ran into
