"""The whole DevPlane system on one machine: what `make demo` runs and tests/e2e tests.

DemoStack.start() brings up, in order:
  1. the local control plane (devplane_dev.devcluster), the Workspace CRD and the workspace
     namespace (Pod Security `restricted` enforced, as in production);
  2. the vLLM stand-in (unless a real OpenAI-compatible endpoint is configured);
  3. the OIDC provider (hack/oidc) with the demo users;
  4. the operator and the local runner (which plays the kubelet for workspace pods);
  5. configurable-http-proxy and the hub (hub_config/jupyterhub_config.py).
DemoStack.stop() stops all of it, in reverse, and checks that no process of the run is left.

Every process listens on 127.0.0.1 (workspace proxies on their pod IPs in 127.20.0.0/16).
Each component is started by the harness's launcher for it, the same the tests use.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .. import vllm_stub
from ..devcluster import DevclusterError, binary_dir, run_cli
from ..hub import Hub
from ..kubectl import RESTRICTED
from ..oidc import ADMINS_GROUP, USERS_GROUP, OidcProvider, OidcUser
from ..operator_process import OperatorProcess, install_crd
from ..paths import LOCAL_RUNNER, ROOT, VENV_BIN
from ..procs import ManagedProcess, StartError, base_env, free_port, port_open
from ..proxy import ConfigurableHttpProxy
from .kube import Kube
from .runs import RUN_MARKER_ENV, stop_run
from .supervisor import kill_marked, published_pod

STUB_MODEL = "devplane-stub"
OIDC_CLIENT_ID = "devplane-hub"
# What the spawn form offers (and the REST API accepts as user_options {"profile": slug}).
DEMO_PROFILES = [
    {
        "slug": "small",
        "display_name": "Small (1 CPU, 2 GiB)",
        "description": "Everyday editing, git and the AI assistant.",
        "default": True,
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"cpu": "1", "memory": "2Gi"},
        },
    },
    {
        "slug": "large",
        "display_name": "Large (4 CPU, 8 GiB)",
        "description": "Builds and test suites.",
        "resources": {
            "requests": {"cpu": "1", "memory": "2Gi"},
            "limits": {"cpu": "4", "memory": "8Gi"},
        },
    },
]


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    admin: bool = False

    def oidc_user(self) -> OidcUser:
        return OidcUser(
            self.username, self.password, (USERS_GROUP, *([ADMINS_GROUP] if self.admin else []))
        )


DEMO_USERS = (
    DemoUser("alice", "alice-demo"),
    DemoUser("bob", "bob-demo"),
    DemoUser("admin", "admin-demo", admin=True),
)


@dataclass
class DemoConfig:
    """Ports, names and the LLM endpoint. `from_env` is `make demo`; `for_tests` is pytest."""

    state_dir: Path
    namespace: str = "devplane-demo"
    host: str = "127.0.0.1"
    hub_port: int = 8000  # the public URL (configurable-http-proxy)
    proxy_api_port: int = 8001
    hub_api_port: int = 8081
    oidc_port: int = 9000
    llm_port: int = 9100  # the vLLM stand-in
    # A real OpenAI-compatible endpoint instead of the stand-in (all three or none).
    llm_url: str = ""
    llm_api_key: str = ""
    llm_model: str = ""
    users: tuple[DemoUser, ...] = DEMO_USERS
    # Tests leave nothing in the shared control plane; the demo keeps its workspaces.
    delete_namespace_on_stop: bool = False
    # Tokens the run generates (kept stable across `make demo` restarts via the state dir).
    api_token: str = field(default_factory=lambda: secrets.token_hex(16))
    oidc_client_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    stub_api_key: str = field(default_factory=lambda: secrets.token_hex(12))

    @classmethod
    def from_env(cls) -> DemoConfig:
        env = os.environ
        state = Path(env.get("DEVPLANE_DEMO_STATE", ROOT / ".devcluster" / "demo"))
        cfg = cls(
            state_dir=state,
            namespace=env.get("DEVPLANE_DEMO_NAMESPACE", "devplane-demo"),
            hub_port=int(env.get("DEVPLANE_DEMO_PORT", "8000")),
            proxy_api_port=int(env.get("DEVPLANE_DEMO_PROXY_API_PORT", "8001")),
            hub_api_port=int(env.get("DEVPLANE_DEMO_HUB_API_PORT", "8081")),
            oidc_port=int(env.get("DEVPLANE_DEMO_OIDC_PORT", "9000")),
            llm_port=int(env.get("DEVPLANE_DEMO_LLM_PORT", "9100")),
            llm_url=env.get("DEVPLANE_DEMO_LLM_URL", ""),
            llm_api_key=env.get("DEVPLANE_DEMO_LLM_API_KEY", ""),
            llm_model=env.get("DEVPLANE_DEMO_LLM_MODEL", ""),
        )
        if cfg.llm_url and not cfg.llm_model:
            raise SystemExit("DEVPLANE_DEMO_LLM_URL needs DEVPLANE_DEMO_LLM_MODEL as well")
        cfg._reuse_secrets()
        return cfg

    @classmethod
    def for_tests(cls, state_dir: Path) -> DemoConfig:
        """Random free ports and a fresh namespace, so a test run never meets a running demo."""
        return cls(
            state_dir=state_dir,
            namespace=f"e2e-{uuid.uuid4().hex[:6]}",
            hub_port=free_port(),
            proxy_api_port=free_port(),
            hub_api_port=free_port(),
            oidc_port=free_port(),
            llm_port=free_port(),
            delete_namespace_on_stop=True,
        )

    def _reuse_secrets(self) -> None:
        """Keep tokens across restarts: the hub's database and running workspaces hold them."""
        path = self.state_dir / "secrets.json"
        names = ("api_token", "oidc_client_secret", "stub_api_key")
        if path.exists():
            for name, value in json.loads(path.read_text()).items():
                if name in names:
                    setattr(self, name, value)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({n: getattr(self, n) for n in names}))
        path.chmod(0o600)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.hub_port}"

    @property
    def llm_base_url(self) -> str:
        return self.llm_url or f"http://{self.host}:{self.llm_port}/v1"

    @property
    def model(self) -> str:
        return self.llm_model or STUB_MODEL


class DemoStack:
    def __init__(self, config: DemoConfig) -> None:
        self.config = config
        self.run_id = uuid.uuid4().hex
        self.procs: list[ManagedProcess] = []
        self.oidc: OidcProvider | None = None
        self.hub: Hub | None = None
        self.kubeconfig: Path | None = None
        self.kube: Kube | None = None
        # Shared by configurable-http-proxy and the hub; new each run (the proxy is too).
        self.proxy_token = secrets.token_hex(16)
        self.started_at = 0.0
        self.ready_after = 0.0

    # ------------------------------------------------------------------ helpers

    @property
    def logs(self) -> Path:
        return self.config.state_dir / "logs"

    @property
    def runner_state(self) -> Path:
        return self.config.state_dir / "runner"

    def _env(self, **extra: str) -> dict[str, str]:
        env = base_env(PYTHONUNBUFFERED="1", **{RUN_MARKER_ENV: self.run_id})
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        return env | extra

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> ManagedProcess:
        proc = ManagedProcess(argv, self.logs / f"{name}.log", env=env, cwd=ROOT, name=name)
        self.procs.append(proc)
        return proc

    def _check_ports_free(self) -> None:
        cfg = self.config
        wanted = {
            "hub (DEVPLANE_DEMO_PORT)": cfg.hub_port,
            "proxy API (DEVPLANE_DEMO_PROXY_API_PORT)": cfg.proxy_api_port,
            "hub API (DEVPLANE_DEMO_HUB_API_PORT)": cfg.hub_api_port,
            "OIDC provider (DEVPLANE_DEMO_OIDC_PORT)": cfg.oidc_port,
        }
        if not cfg.llm_url:
            wanted["vLLM stand-in (DEVPLANE_DEMO_LLM_PORT)"] = cfg.llm_port
        busy = [f"{what}: {port}" for what, port in wanted.items() if port_open(port, cfg.host)]
        if busy:
            raise StartError(
                "ports already in use (another `make demo`?): "
                + "; ".join(busy)
                + ". Stop it, or pick other ports with the variables named."
            )

    # ------------------------------------------------------------------ steps

    def _control_plane(self) -> None:
        try:
            self.kubeconfig = run_cli("up", progress=True)
        except DevclusterError as err:
            raise StartError(f"the local control plane did not start: {err}") from None
        self.kube = Kube(self.kubeconfig)
        install_crd([str(binary_dir() / "kubectl"), "--kubeconfig", str(self.kubeconfig)])
        self.kube.ensure_namespace(
            self.config.namespace, {**RESTRICTED, "app.kubernetes.io/part-of": "devplane-demo"}
        )

    def _llm(self) -> None:
        cfg = self.config
        if cfg.llm_url:
            return
        stub = vllm_stub.launch(
            self.logs / "vllm-stub.log",
            cfg.llm_port,
            STUB_MODEL,
            cfg.stub_api_key,
            cfg.host,
            self._env(),
        )
        self.procs.append(stub)

    def _oidc(self) -> None:
        cfg = self.config
        self.oidc = OidcProvider(
            cfg.state_dir,
            f"{cfg.url}/hub/oauth_callback",
            [u.oidc_user() for u in cfg.users],
            port=cfg.oidc_port,
            host=cfg.host,
            client_id=OIDC_CLIENT_ID,
            client_secret=cfg.oidc_client_secret,
            env=self._env(),
            log_dir=self.logs,
        )
        self.procs.append(self.oidc.process)

    def _llm_providers(self) -> list[dict]:
        cfg = self.config
        provider: dict = {"name": "vllm", "baseURL": cfg.llm_base_url, "models": [cfg.model]}
        key = cfg.llm_api_key if cfg.llm_url else cfg.stub_api_key
        if key:
            # The operator reads provider keys from a Secret in the workspace namespace.
            assert self.kube is not None
            self.kube.apply(
                f"/api/v1/namespaces/{cfg.namespace}/secrets/devplane-llm",
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "devplane-llm", "namespace": cfg.namespace},
                    "stringData": {"api-key": key},
                },
            )
            provider["apiKeySecretRef"] = {"name": "devplane-llm", "key": "api-key"}
        return [provider]

    def _operator(self) -> None:
        cfg = self.config
        assert self.kubeconfig is not None
        operator = OperatorProcess(
            self.kubeconfig,
            [cfg.namespace],
            env={
                # Not pulled by anyone: the local runner maps it to images/workspace.
                "DEVPLANE_WORKSPACE_IMAGE": "devplane/workspace:demo",
                "DEVPLANE_AUTHPROXY_IMAGE": "devplane/hub:demo",
                "DEVPLANE_LLM_PROVIDERS": json.dumps(self._llm_providers()),
                "DEVPLANE_LLM_DEFAULT_MODEL": cfg.model,
                "DEVPLANE_RESYNC_SECONDS": "60",
                RUN_MARKER_ENV: self.run_id,
            },
            log_path=self.logs / "operator.log",
        ).start()
        assert operator.process is not None
        self.procs.append(operator.process)
        # /readyz: 200 once the operator leads (no election here) and watches the namespace.
        operator.wait_ready(60)

    def _runner(self) -> None:
        cfg = self.config
        assert self.kubeconfig is not None
        proc = self._spawn(
            "local-runner",
            [
                str(VENV_BIN / "python"),
                str(LOCAL_RUNNER),
                "--kubeconfig",
                str(self.kubeconfig),
                "--namespace",
                cfg.namespace,
                "--state-dir",
                str(self.runner_state),
            ],
            self._env(),
        )
        proc.wait_for_log("watching pods", 30)

    def _hub(self) -> None:
        cfg = self.config
        hub_api = f"http://{cfg.host}:{cfg.hub_api_port}"
        proxy = ConfigurableHttpProxy(
            self.logs,
            port=cfg.hub_port,
            api_port=cfg.proxy_api_port,
            host=cfg.host,
            token=self.proxy_token,
            default_target=hub_api,
            log_level="info",
            env=self._env(),
        )
        self.procs.append(proxy.process)
        assert self.kubeconfig is not None
        hub = Hub(
            cfg.state_dir / "hub",
            proxy,
            self.oidc,
            cfg.namespace,
            DEMO_PROFILES,
            extra_env={
                # Workspace auth proxies are local processes: they reach the hub on loopback,
                # through the proxy as in the chart (never the hub's own port).
                "DEVPLANE_HUB_CONNECT_URL": hub_api,
                "DEVPLANE_WORKSPACE_HUB_URL": proxy.url,
                "DEVPLANE_OIDC_LOGIN_SERVICE": "DevPlane demo login",
                "DEVPLANE_KUBECONFIG": str(self.kubeconfig),
            },
            hub_port=cfg.hub_api_port,
            token=cfg.api_token,
            timeouts={},
            env=self._env(),
            log_dir=self.logs,
            host=cfg.host,
        )
        hub.start(timeout=90)
        assert hub.process is not None
        self.procs.append(hub.process)
        self.hub = hub

    # ------------------------------------------------------------------ lifecycle

    def _markers(self, run_id: str) -> list[tuple[str, str]]:
        """Environment entries that identify this run's processes (see stop())."""
        cfg = self.config
        # JupyterHub starts its managed services (the idle culler) in their own session with a
        # filtered environment, without our run marker, and a hub that has to be killed
        # leaves them behind; they are recognised by the API URL of this run's hub.
        hub_api = f"http://{cfg.host}:{cfg.hub_api_port}/hub/api"
        return [(RUN_MARKER_ENV, run_id), ("JUPYTERHUB_API_URL", hub_api)]

    def _stop_previous_run(self) -> None:
        """A demo that was killed (not Ctrl-C'd) leaves its processes; stop them first."""
        record = self.config.state_dir / "run.json"
        if record.exists():
            previous = json.loads(record.read_text())["run_id"]
            found = [
                pid for key, value in self._markers(previous) for pid in kill_marked(key, value)
            ]
            if found:
                print(f"stopped {len(found)} process(es) left by a previous demo run", flush=True)
        record.write_text(json.dumps({"run_id": self.run_id}))

    def start(self) -> None:
        self.started_at = time.monotonic()
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        self._stop_previous_run()
        self._check_ports_free()
        try:
            self._control_plane()
            self._llm()
            self._oidc()
            self._operator()
            self._runner()
            self._hub()
        except BaseException:
            self.stop()
            raise
        self.ready_after = time.monotonic() - self.started_at

    def stop(self) -> list[int]:
        """Stop everything this run started; returns PIDs that survived (should be [])."""
        cfg = self.config
        left = stop_run(self.procs, self._markers(self.run_id))
        self.procs.clear()
        self.hub = self.oidc = None
        if self.kube is not None:
            if cfg.delete_namespace_on_stop:
                self.kube.delete_namespace(cfg.namespace)
            self.kube.close()
            self.kube = None
        return left

    def workspace_phase(self, name: str) -> str | None:
        assert self.kube is not None, "the stack is not started"
        workspace = self.kube.workspace(self.config.namespace, name) or {}
        return (workspace.get("status") or {}).get("phase")

    def runner_pod(self, pod_name: str) -> dict | None:
        """The local runner's record of a running pod (PIDs, pod IP, mounts), or None."""
        return published_pod(self.runner_state / "pods.json", self.config.namespace, pod_name)

    def dead_components(self) -> list[str]:
        return [p.name for p in self.procs if not p.alive()]

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        """Call the hub's REST API with the demo's admin-scoped API token."""
        assert self.hub is not None, "the stack is not started"
        return self.hub.api(method, path, **kwargs)
