"""DevPlaneSpawner: JupyterHub's side of a DevPlane workspace.

The spawner never creates pods. It writes two objects and reads one:

* the hub-credentials Secret ``ws-<workspace>-hub`` (the ``JUPYTERHUB_*`` environment,
  including the API token, which only the in-pod auth proxy receives);
* the ``Workspace`` (devplane.io/v1alpha1) with ``spec.started`` true or false;
* the Workspace's status, which the operator keeps up to date, watched (never polled in a
  sleep loop) until it says Ready, Stopped, or that it cannot start. One watch of the
  namespace serves every spawner's start(), stop() and poll() (``workspace_watch``).

Helpers, each with one job: ``naming`` (object names), ``profiles`` (what users may choose),
``progress`` (reading the status), ``workspace_client`` (the Kubernetes calls).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from jupyterhub.spawner import Spawner
from jupyterhub.utils import maybe_future
from kubernetes_asyncio.client.exceptions import ApiException
from tornado import web
from traitlets import (
    Bool,
    Callable,
    Dict,
    Enum,
    Integer,
    List,
    TraitError,
    Unicode,
    Union,
    default,
    validate,
)

from devplane_api import naming
from devplane_api.v1alpha1 import (
    API_VERSION,
    KIND,
    OWNER_ANNOTATION,
    PROXY_PORT,
    workspace_labels,
)

from . import profiles, server_token
from .progress import (
    DEFAULT_FATAL_REASONS,
    ProgressEvent,
    ProgressLines,
    fatal_message,
    is_current,
    is_ready,
    is_stopped,
    kube_event,
    phase,
    pod_not_ready,
    ready_reason,
    server_url,
    workspace_progress,
)
from .reachability import Attempts, host_and_port, wait_connectable
from .workspace_client import WorkspaceClient, belongs_to, explain, shared_api_client

# Environment the auth proxy needs; everything else from get_env() (JPY_API_TOKEN, the
# admin's `environment` entries) stays out of the Secret.
_HUB_ENV_PREFIX = "JUPYTERHUB_"
# What the CRD accepts as spec.gitIdentity: an email address, and these lengths.
_EMAIL = re.compile(r"[^\s<>]+@[^\s<>]+")
_GIT_IDENTITY_MAX = {"name": 256, "email": 320}


def replacing(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch that gives each key of ``new`` exactly its value in ``new``.

    A merge patch merges objects: patching {"nodeSelector": {"size": "big"}} over an earlier
    profile's {"nodeSelector": {"pool": "gpu"}} would keep "pool". Here every key ``old`` has
    under an object ``new`` sets is given None (removed), at every depth; keys ``new`` does not
    name (owner, storage, ...) are left alone.
    """
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            patch[key] = {k: None for k in before if k not in value} | replacing(before, value)
        else:
            patch[key] = value
    return patch


class WorkspaceStartError(web.HTTPError):
    """A start that cannot succeed; the hub shows ``log_message`` on the spawn page and in the
    REST API's pending/failed server model."""

    def __init__(self, message: str) -> None:
        super().__init__(500, message)
        # The hub's spawn page shows ``jupyterhub_message`` when present.
        self.jupyterhub_message = message


class DevPlaneSpawner(Spawner):
    """Starts a user's server by setting ``started: true`` on their Workspace."""

    # ------------------------------------------------------------ settings

    namespace = Unicode(
        config=True,
        help="""Namespace holding the Workspaces, their Secrets and pods.

        Default: $DEVPLANE_NAMESPACE, else the hub pod's own namespace (from the service
        account), else "devplane".
        """,
    )

    @default("namespace")
    def _namespace_default(self) -> str:
        if os.environ.get("DEVPLANE_NAMESPACE"):
            return os.environ["DEVPLANE_NAMESPACE"]
        sa_ns = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
        if os.path.exists(sa_ns):
            with open(sa_ns) as f:
                return f.read().strip()
        return "devplane"

    kubeconfig = Unicode(
        "",
        config=True,
        help="""Path of a kubeconfig file. Empty: $KUBECONFIG if set, else the in-cluster
        service account (the normal case in the Helm chart).""",
    )

    image = Unicode(
        "",
        config=True,
        help="""Workspace container image (spec.image) when the chosen profile names none.
        Empty: the operator's default image (one place to configure it for every hub).""",
    )

    resources = Dict(
        config=True,
        help="""Requests/limits of the workspace container (spec.resources), e.g.
        {"requests": {"cpu": "250m"}, "limits": {"cpu": "2", "memory": "4Gi"}}, used when the
        chosen profile sets none. Unset values come from the operator's defaults.""",
    )

    storage_size = Unicode(
        "",
        config=True,
        help="Size of a new home volume (spec.storage.size). Empty: the operator's default.",
    )

    storage_class = Unicode(
        "",
        config=True,
        help="StorageClass of the home volume; empty uses the cluster's default class.",
    )

    storage_reclaim_policy = Enum(
        ["Retain", "Delete"],
        default_value="Retain",
        config=True,
        help="""What happens to the home volume when the Workspace is deleted (the hub deletes
        it with the user or named server). Retain keeps it, so a re-created user gets their
        files back; Delete removes it with the Workspace.""",
    )

    ai_providers = List(
        Dict(),
        config=True,
        help="""OpenAI-compatible endpoints for opencode (spec.ai.providers): a list of
        {"name", "baseURL", "models": [...], "apiKeySecretRef": {"name", "key"}} dicts.
        Empty: the Workspace gets no `ai` section.""",
    )

    default_model = Unicode(
        "",
        config=True,
        help="""Default model (spec.ai.defaultModel), "<provider>/<model>" or a model name
        offered by exactly one provider. A profile's `model` overrides it.""",
    )

    profile_list = Union(
        [List(Dict()), Callable()],
        config=True,
        help="""Choices shown on the spawn page and accepted as user_options {"profile": slug}
        over the REST API. Each entry: slug (DNS label, required), display_name, description,
        default (bool, at most one), image, resources ({requests, limits}), model, models,
        llmLimits, idleTimeout. KubeSpawner's format is accepted too (kubespawner_override,
        profile_options; docs/admin-guide.md, "Migrating from Zero to JupyterHub"). An unknown
        slug or any other user_options key is refused with HTTP 400 listing the slugs.
        Empty: no form, and any user_options other than {} are refused.

        May be a callable, as KubeSpawner's: called with the spawner (sync or async) each time
        the form is shown or a server starts, it returns the list for that user, e.g. by their
        groups (spawner.user.groups). A list it returns that does not parse fails that start
        with the reason (HTTP 400), and the hub logs it.""",
    )

    @validate("profile_list")
    def _validate_profile_list(self, proposal: dict[str, Any]) -> Any:
        # Fail at hub start-up on a broken profile list, not at a user's first spawn.
        if not callable(proposal["value"]):
            profiles.parse_profiles(proposal["value"])
        return proposal["value"]

    git_identity_claims = Dict(
        Unicode(),
        default_value={"name": "name", "email": "email"},
        config=True,
        help="""Which identity-provider claims become the user's git identity (spec.gitIdentity:
        git's user.name and user.email, written into a home's git configuration on its first
        start and never over what the user set). Keys: "name", "email"; values: claim names
        in the authenticator's auth state (GenericOAuthenticator's user info). Needs auth state
        (the chart keeps it on); a claim the provider does not send is left out, and {}
        turns the feature off.""",
    )

    @validate("git_identity_claims")
    def _validate_git_identity_claims(self, proposal: dict[str, Any]) -> dict[str, str]:
        unknown = sorted(set(proposal["value"]) - {"name", "email"})
        if unknown:
            raise TraitError(
                f"git_identity_claims: unknown key(s) {', '.join(unknown)}; use name and email"
            )
        return proposal["value"]

    hub_connect_via = Enum(
        ["service", "pod-ip"],
        default_value="service",
        config=True,
        help="""How the hub and its proxy reach a workspace: "service" uses the Workspace's
        status.url (the Service's cluster DNS name, which only leads to a ready pod: the only
        choice the chart offers), once the Service takes connections (see http_timeout);
        "pod-ip" uses http://<status.podIP>:<workspace_port>, for
        tests against simulated (kwok) pods only, where cluster DNS does not exist: poll()
        then stops a server whose pod is not ready, at most poll_interval after the operator
        says so.""",
    )

    workspace_port = Integer(
        PROXY_PORT, config=True, help="The auth proxy's port in the workspace pod (contracts.md)."
    )

    # JupyterHub's own setting, with a default for a Kubernetes spawner and the wait it adds.
    http_timeout = Integer(
        60,
        config=True,
        help="""Seconds the hub waits, once the Workspace is Ready, for its auth proxy to
        answer. With hub_connect_via "service" the spawner first waits as long, at most, for
        the Service to take TCP connections from the hub (a new endpoint is routable only once
        kube-proxy on the hub's node has programmed it; docs/spawner.md, "Reaching a
        workspace"), and fails the start with a reason when it does not; JupyterHub's own
        HTTP check then has as long again.""",
    )

    fatal_reasons = List(
        Unicode(),
        default_value=sorted(DEFAULT_FATAL_REASONS),
        config=True,
        help="""Reasons of a Ready=False condition that fail a start at once with the
        Workspace's status.message (e.g. the image cannot be pulled), instead of waiting out
        start_timeout.""",
    )

    fatal_grace_seconds = Dict(
        Integer(),
        default_value={"Unschedulable": 60},
        config=True,
        help="""Seconds into a start before a reason in fatal_reasons counts, per reason.
        The scheduler reports a new pod unschedulable for a moment while its fresh home
        volume is being bound; a pod that still cannot be scheduled after this grace really
        cannot (too large for every node). Reasons not listed fail at once.""",
    )

    operator_grace_seconds = Integer(
        30,
        config=True,
        help="""Seconds into a start after which, if the operator has still not reported on the
        Workspace (no status for its current generation), the spawn page says so and the hub
        logs a warning: the operator is down, or does not watch this namespace
        (docs/troubleshooting.md). The start goes on waiting until start_timeout.""",
    )

    stop_wait_timeout = Integer(
        120,
        config=True,
        help="Seconds stop() waits for the Workspace to report Stopped before giving up.",
    )

    extra_labels = Dict(
        Unicode(),
        config=True,
        help="Extra labels on Workspaces and hub Secrets (e.g. for cost accounting).",
    )

    k8s_connection_pool_size = Integer(
        500,
        config=True,
        help="""Connections the hub keeps to the API server; each starting or stopping server
        holds one watch open, so set it above the number of concurrent spawns you expect.""",
    )

    server_token_lifetime = Integer(
        3 * 24 * 3600,
        config=True,
        help="""Seconds a server's API token stays valid unless the hub renews it.

        The hub renews it (in poll(), every Spawner.poll_interval) while the server runs and
        revokes it when the server stops, whichever hub instance started it; the expiry ends a
        token every other path missed. A hub down for longer finds those tokens expired and
        stops their workspaces (home volumes stay). Must exceed twice poll_interval.""",
    )

    cleanup_secret_on_stop = Bool(
        False,
        config=True,
        help="""Delete the hub-credentials Secret on stop. Off by default: the Secret is
        rewritten on every start and garbage-collected with the Workspace.""",
    )

    # JupyterHub defaults that matter for a Kubernetes spawner.
    @default("start_timeout")
    def _start_timeout_default(self) -> int:
        return 300

    @default("port")
    def _port_default(self) -> int:
        return self.workspace_port

    @default("ip")
    def _ip_default(self) -> str:
        return "0.0.0.0"

    @default("options_form")
    def _options_form_default(self) -> Any:
        # A callable, so the form reflects the profile list (this user's) at render time.
        async def form(spawner: DevPlaneSpawner) -> str:
            return profiles.render_form(await spawner.load_profiles())

        return form

    @default("apply_user_options")
    def _apply_user_options_default(self) -> Any:
        async def apply(spawner: DevPlaneSpawner, user_options: Any) -> None:
            await spawner.apply_profile(user_options)

        return apply

    # ------------------------------------------------------------ state

    workspace_name = Unicode("", help="Name of this server's Workspace (kept in hub state).")
    _profile: profiles.Profile | None = None
    _client: WorkspaceClient | None = None
    # The name came from hub state, or start() has looked for one made by an older release.
    _name_settled = False
    # Database id of this server's API token (server_token.py), kept in state.
    _token_id: int | None = None

    async def load_profiles(self) -> list[profiles.Profile]:
        """This user's profiles: the configured list, or what the callable returns for them.

        ProfileError when the list does not parse (a callable's, found only now)."""
        raw = self.profile_list
        if callable(raw):
            raw = await maybe_future(raw(self))
            try:
                return profiles.parse_profiles(raw)
            except profiles.ProfileError as e:
                self.log.error("profile_list for %s returned a bad list: %s", self.user.name, e)
                raise
        return profiles.parse_profiles(raw)

    def ws_name(self) -> str:
        if not self.workspace_name:
            self.workspace_name = naming.workspace_name(self.user.name, self.name or "")
        return self.workspace_name

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.workspace_name:
            state["workspace_name"] = self.workspace_name
            state["namespace"] = self.namespace
        if self._token_id is not None:
            state["api_token_id"] = self._token_id
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        # Keep the name the Workspace was created with, even if naming rules ever changed.
        if state.get("workspace_name"):
            self.workspace_name = state["workspace_name"]
            self._name_settled = True
        if state.get("namespace"):
            self.namespace = state["namespace"]
        self._token_id = state.get("api_token_id")

    def clear_state(self) -> None:
        # The Workspace (and its name) outlive a stop; only the token is per-start. The hub
        # calls this when the server has stopped (and before a new start): the token dies here,
        # whichever hub instance started the server.
        session = server_token.hub_session(self.orm_spawner)
        token_id, self._token_id = self._token_id, None
        if (
            session is not None
            and token_id is not None
            and server_token.revoke(session, token_id, self.orm_spawner.user_id)
        ):
            self.log.info("Revoked the API token of %s's stopped server", self._log_name)
        super().clear_state()

    def _adopt_token(self) -> None:
        """Give this start's API token its expiry and remember its id (server_token.py)."""
        if self.server_token_lifetime <= 2 * self.poll_interval:
            raise WorkspaceStartError(
                f"DevPlaneSpawner.server_token_lifetime ({self.server_token_lifetime}s) must "
                f"exceed twice Spawner.poll_interval ({self.poll_interval}s), or running "
                "servers lose their token between two renewals: ask an administrator"
            )
        session = server_token.hub_session(self.orm_spawner)
        if session is not None and self.api_token:
            self._token_id = server_token.adopt(session, self.api_token, self.server_token_lifetime)

    def _token_alive(self) -> bool:
        """Renew this server's token; False once it is gone (revoked, or expired while no
        hub ran). Servers started before the token was tracked count as alive."""
        session = server_token.hub_session(self.orm_spawner)
        if session is None or self._token_id is None:
            return True
        return server_token.renew(
            session, self._token_id, self.orm_spawner.user_id, self.server_token_lifetime
        )

    async def client(self) -> WorkspaceClient:
        if self._client is None:
            api = await shared_api_client(self.kubeconfig, self.k8s_connection_pool_size)
            self._client = WorkspaceClient(api, self.namespace)
        return self._client

    # ------------------------------------------------------------ user options

    def options_from_form(self, form_data: dict[str, list[str]]) -> dict[str, str]:
        return profiles.options_from_form(form_data)

    async def apply_profile(self, user_options: Any) -> None:
        """Validate user_options; an HTTP 400 that lists what is allowed if they are wrong."""
        try:
            self._profile = profiles.choose_profile(await self.load_profiles(), user_options)
            # Its LLM allow-list must leave a model: said now, not when the Workspace is made.
            profiles.workspace_ai(self.ai_providers, self._profile, self.default_model)
        except profiles.ProfileError as e:
            raise web.HTTPError(400, str(e)) from None

    # ------------------------------------------------------------ the Workspace

    def _labels(self) -> dict[str, str]:
        # The contract's labels last, so an extra label can never hide whose Workspace it is.
        return {
            **self.extra_labels,
            **workspace_labels(self.ws_name(), self.user.name, self.name or ""),
        }

    def _secret_name(self) -> str:
        return naming.child_name(self.ws_name(), "hub")

    def hub_env(self) -> dict[str, str]:
        """The Secret's content: the JUPYTERHUB_* part of the hub's server environment."""
        return {k: str(v) for k, v in self.get_env().items() if k.startswith(_HUB_ENV_PREFIX)}

    def workspace_spec(self) -> dict[str, Any]:
        """The mutable part of spec for this start (owner/serverName are set at creation)."""
        profile = self._profile
        image = profile.image if profile and profile.image else self.image
        resources = dict(profile.resources) if profile and profile.resources else self.resources
        spec: dict[str, Any] = {
            "started": True,
            # None deletes the field in a merge patch: the operator's default applies again.
            "image": image or None,
            "resources": resources or None,
            "servicePrefix": self.server.base_url if self.server else None,
            "hubSecretRef": {"name": self._secret_name()},
        }
        ai = profiles.workspace_ai(self.ai_providers, profile, self.default_model)
        if ai is not None:
            spec["ai"] = ai
        spec |= profiles.workspace_extras(profile)
        return spec

    async def git_identity(self) -> dict[str, str]:
        """The user's git identity from their identity-provider claims (git_identity_claims),
        or {} when the hub keeps no auth state for them."""
        if not self.git_identity_claims:
            return {}
        state = await self.user.get_auth_state()
        key = getattr(self.authenticator, "user_auth_state_key", "oauth_user")
        claims = (state or {}).get(key) or {}
        identity = {}
        for field, claim in self.git_identity_claims.items():
            value = claims.get(claim)
            # A claim can be a list or an object at some providers: only a plain one line
            # string is an identity (the CRD refuses control characters).
            if isinstance(value, str) and value.strip() and value.isprintable():
                identity[field] = value.strip()
        if "email" in identity and not _EMAIL.fullmatch(identity["email"]):
            self.log.warning("%s: the email claim %r is not an address; git gets none",
                             self.user.name, identity.pop("email"))  # fmt: skip
        for field, longest in _GIT_IDENTITY_MAX.items():
            if len(identity.get(field, "")) > longest:
                self.log.warning("%s: the %s claim is longer than %d characters; git gets none",
                                 self.user.name, field, longest)  # fmt: skip
                del identity[field]
        return identity

    def _new_workspace(self, spec: dict[str, Any]) -> dict[str, Any]:
        storage: dict[str, Any] = {"reclaimPolicy": self.storage_reclaim_policy}
        if self.storage_size:
            storage["size"] = self.storage_size
        if self.storage_class:
            storage["storageClassName"] = self.storage_class
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {
                "name": self.ws_name(),
                "labels": self._labels(),
                "annotations": {OWNER_ANNOTATION: self.user.name},
            },
            "spec": {
                "owner": self.user.name,
                "serverName": self.name or "",
                "storage": storage,
                # A new object has no fields to reset: drop the None placeholders.
                **{k: v for k, v in spec.items() if v is not None},
            },
        }

    def _is_ours(self, ws: dict[str, Any]) -> bool:
        return belongs_to(ws, self.user.name, self.name or "")

    def _foreign(self, ws: dict[str, Any]) -> WorkspaceStartError:
        """The refusal to use a Workspace of someone else that sits under our name."""
        spec = ws.get("spec") or {}
        # The other owner is named in the hub's log for the admin, not to this user.
        self.log.error(
            "Workspace %s/%s belongs to user %r (server %r), not to %r (server %r): refusing "
            "to adopt it", self.namespace, ws["metadata"]["name"], spec.get("owner"),
            spec.get("serverName", ""), self.user.name, self.name or "",
        )  # fmt: skip
        return WorkspaceStartError(
            f"Your workspace cannot start: its name {ws['metadata']['name']!r} is taken by "
            "another user's workspace. Ask an administrator to resolve the clash; the hub's "
            "log names both."
        )

    async def _settle_name(self, client: WorkspaceClient) -> str:
        """This server's Workspace name: from hub state, else today's rule, else the name an
        older release gave it (8-hex-digit hash) if a Workspace of ours has it."""
        name = self.ws_name()
        if self._name_settled:
            return name
        legacy = naming.legacy_workspace_name(self.user.name, self.name or "")
        if legacy != name and await client.get(name) is None:
            old = await client.get(legacy)
            if old is not None and self._is_ours(old):
                self.workspace_name = name = legacy
        self._name_settled = True
        return name

    async def _restart_own(
        self, client: WorkspaceClient, name: str, spec: dict[str, Any]
    ) -> dict[str, Any]:
        """Patch the existing Workspace ``name`` for this start, if it is ours.

        The patch names the uid that was checked, so a Workspace deleted and re-created by
        someone else between the check and the patch is refused too.
        """
        existing = await client.get(name)
        if existing is None:
            raise WorkspaceStartError("Your workspace was deleted while it was starting.")
        if not self._is_ours(existing):
            raise self._foreign(existing)
        patch = replacing(existing.get("spec") or {}, spec)
        return await client.patch_spec(name, patch, existing["metadata"]["uid"])

    async def start(self) -> str:
        self._adopt_token()
        client = await self.client()
        if self._profile is None and self.profile_list:
            # start() without the hub's apply step (e.g. a custom apply_user_options hook).
            await self.apply_profile(self.user_options)
        spec = self.workspace_spec()
        # None removes an identity the provider no longer sends (the home keeps what it has).
        spec["gitIdentity"] = await self.git_identity() or None
        # Two API round trips for a new Workspace, four for an existing one: create (or,
        # when it exists, read, check it is ours and merge-patch) the Workspace, then write
        # the Secret already owned by it. The operator needs the Secret only when the pod's
        # containers start, several API calls later (and the kubelet retries until it exists).
        try:
            name = await self._settle_name(client)
            try:
                ws = await client.create(self._new_workspace(spec))
            except ApiException as e:
                if e.status != 409:
                    raise
                ws = await self._restart_own(client, name, spec)
            await client.write_secret(self._secret_name(), self.hub_env(), self._labels(), ws)
        except ApiException as e:
            explained = explain(e, self.namespace)
            if explained is None:
                raise
            to_user, to_admin = explained
            self.log.error("Cannot start %s's workspace: %s", self.user.name, to_admin)
            raise WorkspaceStartError(to_user) from None
        generation = ws["metadata"]["generation"]
        self.log.info("Workspace %s/%s started (generation %s)", self.namespace, name, generation)

        begun = time.monotonic()

        def settled(current: dict[str, Any] | None) -> bool:
            if current is None:
                raise WorkspaceStartError("Your workspace was deleted while it was starting.")
            if current["metadata"].get("generation", 0) < generation:
                return False
            cause = fatal_message(current, self.fatal_reasons)
            grace = self.fatal_grace_seconds.get(ready_reason(current), 0)
            if cause and time.monotonic() - begun >= grace:
                raise WorkspaceStartError(cause)
            return is_ready(current)

        # The watch wakes us on every change; a cause with a grace period also needs a fresh
        # look once the grace is over, even if nothing changed, hence the bounded rounds.
        recheck = min(self.fatal_grace_seconds.values(), default=None)
        while True:
            try:
                ready = await asyncio.wait_for(client.wait_for(name, settled), recheck)
                break
            except TimeoutError:
                continue
        assert ready is not None
        url = server_url(ready, self.hub_connect_via, self.workspace_port)
        self.log.info("Workspace %s/%s is ready at %s", self.namespace, name, url)
        if self.hub_connect_via == "service":
            await self._wait_routable(url)
        return url

    async def _wait_routable(self, url: str) -> None:
        """Until the Service takes connections from here (``reachability`` says why the hub's
        own check is not enough), at most ``http_timeout``."""
        begun = time.monotonic()
        attempts = Attempts()
        try:
            async with asyncio.timeout(self.http_timeout):
                await wait_connectable(*host_and_port(url), attempts)
        except TimeoutError:
            self.log.error(
                "Workspace %s/%s is Ready, but the hub cannot open a connection to %s within "
                "http_timeout (%ss; %d tries, the last: %s). Check that the name resolves in "
                "the hub's pod (cluster DNS), that kube-proxy (or its replacement) runs on the "
                "hub's node, and that a NetworkPolicy lets the hub reach the workspaces' port %s.",
                self.namespace, self.ws_name(), url, self.http_timeout, attempts.count,
                attempts.last_error, self.workspace_port,
            )  # fmt: skip
            raise WorkspaceStartError(
                "Your workspace started, but the hub cannot reach it. Please tell your "
                "administrator (the hub's log says more)."
            ) from None
        waited = time.monotonic() - begun
        if waited >= 0.1:
            self.log.info("Workspace %s/%s took connections %.2fs after Ready (%d tries)",
                          self.namespace, self.ws_name(), waited, attempts.count)  # fmt: skip

    async def stop(self, now: bool = False) -> None:
        client = await self.client()
        name = self.ws_name()
        current = await client.get(name)
        if current is None:
            return  # nothing to stop (e.g. a start refused before it created anything)
        if not self._is_ours(current):
            self.log.warning("Workspace %s/%s is not %s's: not stopping it", self.namespace,
                             name, self._log_name)  # fmt: skip
            return
        try:
            ws = await client.patch_spec(name, {"started": False}, current["metadata"]["uid"])
        except ApiException as e:
            if e.status == 404:
                return  # deleted meanwhile
            raise
        generation = ws["metadata"]["generation"]

        def stopped(current: dict[str, Any] | None) -> bool:
            return current is None or (
                current["metadata"].get("generation", 0) >= generation and is_stopped(current)
            )

        try:
            await asyncio.wait_for(client.wait_for(name, stopped), self.stop_wait_timeout)
        except TimeoutError:
            self.log.warning(
                "Workspace %s/%s did not report Stopped within %ss; the operator will finish",
                self.namespace, name, self.stop_wait_timeout,
            )  # fmt: skip
        if self.cleanup_secret_on_stop:
            with contextlib.suppress(Exception):
                await client.core.delete_namespaced_secret(self._secret_name(), self.namespace)

    async def poll(self) -> int | None:
        if not self.workspace_name and not self._spawn_pending:
            # Never started and no saved state: not running (JupyterHub's poll contract).
            return 0
        client = await self.client()
        # From the hub's one shared watch: no API call per server per poll interval.
        ws = await client.current(self.ws_name())
        if ws is None or not self._is_ours(ws) or not (ws.get("spec") or {}).get("started"):
            return 0
        # A status from before the last start (the operator has not answered it yet) does not
        # say the server stopped or failed: reporting that would let the hub skip stop() while
        # the Workspace stays started.
        if is_current(ws) and phase(ws) == "Failed":
            return 1
        if is_current(ws) and phase(ws) in ("Stopping", "Stopped"):
            return 0
        if self.hub_connect_via == "pod-ip" and not self._spawn_pending and pod_not_ready(ws):
            # The hub's proxy routes straight to the pod's IP, and once the auth proxy is down
            # the user's own processes may listen on its port (docs/spawner.md, "Reaching a
            # workspace"). A Service would stop sending traffic to a pod that is not ready;
            # here only removing the route does, which the hub does for a server that stopped.
            await self._stop_without_waiting(client, ws, "its auth proxy is not ready")
            return 1
        if not self._token_alive():
            # Its auth proxy can no longer authenticate anyone. Stopping it (not only
            # reporting it stopped) keeps the hub and the cluster agreeing: a pod the hub
            # forgot would escape the idle culler, and a new start would reuse it with the
            # dead token.
            await self._stop_without_waiting(client, ws, "its API token was revoked or expired")
            return 1
        return None

    async def _stop_without_waiting(
        self, client: WorkspaceClient, ws: dict[str, Any], why: str
    ) -> None:
        self.log.warning("Stopping Workspace %s/%s: %s", self.namespace, self.ws_name(), why)
        with contextlib.suppress(ApiException):  # gone or replaced meanwhile: nothing to stop
            await client.patch_spec(self.ws_name(), {"started": False}, ws["metadata"]["uid"])

    async def delete_forever(self) -> None:
        """Delete the Workspace; its children follow, the home volume per its reclaim policy."""
        client = await self.client()
        name = await self._settle_name(client)
        ws = await client.get(name)
        if ws is not None and not self._is_ours(ws):
            self.log.warning("Workspace %s/%s is not %s's: not deleting it", self.namespace,
                             name, self._log_name)  # fmt: skip
            return
        deleted = ws is not None and await client.delete(name, ws["metadata"]["uid"])
        self.log.info(
            "Workspace %s/%s %s", self.namespace, name, "deleted" if deleted else "was already gone"
        )

    # ------------------------------------------------------------ progress

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        """Spawn-page events from the Workspace's conditions and its Kubernetes Events.

        Two watches feed one queue of new lines; ``None`` on it ends the stream. They run in
        a task group inside one feeder task, not in this generator: JupyterHub reads each
        item of a progress generator from a task of its own, and a task group must be entered
        and left by the same task.
        """
        updates: asyncio.Queue[list[ProgressEvent] | None] = asyncio.Queue()
        feeder = asyncio.create_task(self._follow_start(await self.client(), updates))
        lines = ProgressLines()
        try:
            while (batch := await updates.get()) is not None:
                for line in lines.fresh(batch):
                    yield line
        finally:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder

    async def _follow_start(
        self, client: WorkspaceClient, updates: asyncio.Queue[list[ProgressEvent] | None]
    ) -> None:
        """Queue the Workspace's lines until it is ready or deleted, and its Events meanwhile."""
        latest: list[dict[str, Any] | None] = [None]  # the Workspace as last seen
        try:
            async with asyncio.TaskGroup() as group:
                events = group.create_task(self._follow_events(client, updates))
                watchdog = group.create_task(self._watch_for_the_operator(latest, updates))
                await self._follow_workspace(client, updates, latest)
                events.cancel()
                watchdog.cancel()
        except* Exception:
            self.log.warning("Following %s's start failed", self.ws_name(), exc_info=True)
        finally:
            updates.put_nowait(None)

    async def _follow_workspace(
        self,
        client: WorkspaceClient,
        updates: asyncio.Queue[list[ProgressEvent] | None],
        latest: list[dict[str, Any] | None],
    ) -> None:
        existed = False

        def finished(ws: dict[str, Any] | None) -> bool:
            # The progress stream may open before start() has created the Workspace: absent
            # at first means "not yet", absent after it existed means deleted.
            nonlocal existed
            if ws is None:
                return existed
            existed = True
            # A failing start ends with start() raising; the hub then stops this stream.
            return is_ready(ws)

        def changed(ws: dict[str, Any] | None) -> None:
            latest[0] = ws
            if ws is not None:
                updates.put_nowait(workspace_progress(ws, self.fatal_reasons))

        await client.wait_for(self.ws_name(), finished, on_change=changed)

    async def _watch_for_the_operator(
        self,
        latest: list[dict[str, Any] | None],
        updates: asyncio.Queue[list[ProgressEvent] | None],
    ) -> None:
        """Say so, once, when the operator has not taken the Workspace up in time."""
        await asyncio.sleep(self.operator_grace_seconds)
        ws = latest[0]
        if ws is not None and is_current(ws):
            return
        waited = self.operator_grace_seconds
        self.log.warning(
            "Workspace %s/%s: no status from the operator after %s s; is the operator running, "
            "and does it watch namespace %s (DEVPLANE_NAMESPACES)? kubectl logs deploy/<release>"
            "-devplane-operator",
            self.namespace, self.ws_name(), waited, self.namespace,
        )  # fmt: skip
        message = (
            f"Warning: nothing has taken up your workspace after {waited} s (the DevPlane "
            "operator has not answered). Still waiting; if this lasts, tell an administrator."
        )
        updates.put_nowait([ProgressEvent("operator-silent", 10, message)])

    async def _follow_events(
        self, client: WorkspaceClient, updates: asyncio.Queue[list[ProgressEvent] | None]
    ) -> None:
        """Events only add detail: if they cannot be read, the stream goes on without them."""
        try:
            async for event in client.watch_events(self.ws_name()):
                line = kube_event(event)
                if line is not None:
                    updates.put_nowait([line])
        except Exception:
            self.log.warning("Cannot follow the Events of %s", self.ws_name(), exc_info=True)
