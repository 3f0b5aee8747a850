"""The oldest Kubernetes API server DevPlane supports, started bare for the compatibility tests.

`hack/build-binaries.sh compat` builds kube-apiserver at versions.env's
COMPAT_KUBERNETES_VERSION. Here it runs on an etcd of its own (the pinned etcd binary), on
127.0.0.1 ports of its own, beside the local cluster and without touching it: no
controller-manager, scheduler or node, since what is tested is what the API server itself
decides (the CRD's schema and CEL rules, the chart's objects, the operator's requests).
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from .devcluster import ROOT, genkey, openssl
from .procs import ManagedProcess, free_port


def compat_bin_dir() -> Path:
    """Where build-binaries.sh puts the compatibility kube-apiserver (built if missing)."""
    done = subprocess.run(
        [str(ROOT / "hack" / "build-binaries.sh"), "compat"], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"building the compatibility API server failed:\n{done.stderr}")
    return Path(done.stdout.strip().splitlines()[-1])


def _sign(pki: Path, name: str, subject: str, extensions: str) -> None:
    genkey(f"{name}.key", cwd=pki)
    openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr",
            cwd=pki)  # fmt: skip
    (pki / f"{name}.ext").write_text(extensions)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt",
            cwd=pki)  # fmt: skip


class OldestApiServer:
    """``with OldestApiServer(bin_dir, etcd) as api: api.kubeconfig``."""

    def __init__(self, apiserver: Path, etcd: Path) -> None:
        self.apiserver, self.etcd_binary = apiserver, etcd
        self.root = Path(tempfile.mkdtemp(prefix="dpcompat-"))
        self.port = free_port()
        self.kubeconfig = self.root / "admin.kubeconfig"
        self._processes: list[ManagedProcess] = []

    def _pki(self) -> Path:
        pki = self.root / "pki"
        pki.mkdir()
        genkey("ca.key", cwd=pki)
        openssl("req", "-x509", "-new", "-key", "ca.key", "-days", "2", "-subj",
                "/CN=devplane-compat-ca", "-out", "ca.crt", cwd=pki)  # fmt: skip
        _sign(
            pki,
            "apiserver",
            "/CN=kube-apiserver",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
        _sign(pki, "admin", "/O=system:masters/CN=compat-admin",
              "extendedKeyUsage=clientAuth\n")  # fmt: skip
        genkey("sa.key", cwd=pki)
        openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
        return pki

    def _write_kubeconfig(self, pki: Path) -> None:
        def b64(name: str) -> str:
            return base64.b64encode((pki / name).read_bytes()).decode()

        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "compat",
            "clusters": [{"name": "compat", "cluster": {
                "server": f"https://127.0.0.1:{self.port}",
                "certificate-authority-data": b64("ca.crt")}}],
            "users": [{"name": "admin", "user": {
                "client-certificate-data": b64("admin.crt"),
                "client-key-data": b64("admin.key")}}],
            "contexts": [{"name": "compat", "context": {"cluster": "compat", "user": "admin"}}],
        }))  # fmt: skip

    def _ready(self, pki: Path, timeout: float = 120) -> None:
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(
                    f"https://127.0.0.1:{self.port}/readyz", context=context, timeout=5
                ) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            for process in self._processes:
                if process.proc.poll() is not None:
                    raise RuntimeError(f"{process.name} exited:\n{process.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError("the compatibility API server did not become ready")
            time.sleep(0.5)

    def version(self) -> str:
        with urllib.request.urlopen(
            f"https://127.0.0.1:{self.port}/version",
            context=ssl._create_unverified_context(),
            timeout=10,
        ) as answer:
            return str(json.load(answer)["gitVersion"])

    def __enter__(self) -> OldestApiServer:
        try:
            pki = self._pki()
            client, peer = free_port(), free_port()
            self._processes.append(ManagedProcess(
                [str(self.etcd_binary), "--name=compat", f"--data-dir={self.root / 'etcd'}",
                 f"--listen-client-urls=http://127.0.0.1:{client}",
                 f"--advertise-client-urls=http://127.0.0.1:{client}",
                 f"--listen-peer-urls=http://127.0.0.1:{peer}",
                 f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                 f"--initial-cluster=compat=http://127.0.0.1:{peer}",
                 "--unsafe-no-fsync", "--log-level=warn"],
                self.root / "etcd.log", name="compat-etcd",
            ))  # fmt: skip
            self._processes.append(ManagedProcess(
                [str(self.apiserver), f"--etcd-servers=http://127.0.0.1:{client}",
                 "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
                 f"--secure-port={self.port}",
                 f"--tls-cert-file={pki / 'apiserver.crt'}",
                 f"--tls-private-key-file={pki / 'apiserver.key'}",
                 f"--client-ca-file={pki / 'ca.crt'}",
                 f"--service-account-key-file={pki / 'sa.pub'}",
                 f"--service-account-signing-key-file={pki / 'sa.key'}",
                 "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                 "--service-cluster-ip-range=10.97.0.0/16", "--authorization-mode=RBAC",
                 "--profiling=false", "--v=0"],
                self.root / "apiserver.log", name="compat-apiserver",
            ))  # fmt: skip
            self._write_kubeconfig(pki)
            self._ready(pki)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for process in reversed(self._processes):
            process.stop()
        shutil.rmtree(self.root, ignore_errors=True)
