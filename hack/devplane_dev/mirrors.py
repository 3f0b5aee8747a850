"""A site's package and git mirrors, in miniature, served from files on 127.0.0.1.

One HTTP(S) server holds the three kinds of mirror a workspace is pointed at
(docs/workspace.md, "Mirrors"), each with one small package of its own making:

- a PEP 503 simple index at ``/simple/`` with the wheel ``devplane-probe``;
- an npm registry at ``/npm/`` with the package ``devplane-probe`` (its packument and tarball);
- a git repository ``/git/probe.git``, served the way git's "dumb" HTTP protocol reads it.

Each package says ``PROBE_MESSAGE`` when used, so a test can tell the mirror's copy answered.
``ThrowawayCA`` makes the certificate authority of a site's TLS-inspecting proxy or internal
mirror: its server certificate is trusted by nothing until the workspace is given the CA.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import ssl
import subprocess
import tarfile
import threading
import zipfile
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .devcluster import genkey, openssl

PROBE = "devplane-probe"
PROBE_MODULE = "devplane_probe"
PROBE_VERSION = "1.0.0"
PROBE_MESSAGE = "served by the DevPlane test mirror"


@dataclass(frozen=True)
class ThrowawayCA:
    """A CA and one server certificate it signed, for 127.0.0.1 and localhost."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def make(cls, directory: Path) -> ThrowawayCA:
        directory.mkdir(parents=True, exist_ok=True)
        genkey("ca.key", cwd=directory)
        openssl("req", "-x509", "-new", "-key", "ca.key", "-days", "2", "-subj",
                "/CN=DevPlane test site CA", "-out", "ca.crt", cwd=directory)  # fmt: skip
        genkey("server.key", cwd=directory)
        openssl("req", "-new", "-key", "server.key", "-subj", "/CN=mirror.test", "-out",
                "server.csr", cwd=directory)  # fmt: skip
        (directory / "server.ext").write_text(
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
        )
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.crt",
                cwd=directory)  # fmt: skip
        return cls(directory / "ca.crt", directory / "server.crt", directory / "server.key")


def _write_wheel(index: Path) -> None:
    """A pure-Python wheel of ``devplane-probe`` and the simple index pages that list it."""
    dist = f"{PROBE_MODULE}-{PROBE_VERSION}"
    files = {
        f"{PROBE_MODULE}/__init__.py": f"MESSAGE = {PROBE_MESSAGE!r}\n",
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {PROBE}\nVersion: {PROBE_VERSION}\n"
        ),
        f"{dist}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: devplane-test\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
    wheel = f"{dist}-py3-none-any.whl"
    project = index / PROBE
    project.mkdir(parents=True)
    with zipfile.ZipFile(project / wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    sha = hashlib.sha256((project / wheel).read_bytes()).hexdigest()
    (project / "index.html").write_text(
        f'<!DOCTYPE html><html><body><a href="{wheel}#sha256={sha}">{wheel}</a></body></html>\n'
    )
    (index / "index.html").write_text(
        f'<!DOCTYPE html><html><body><a href="{PROBE}/">{PROBE}</a></body></html>\n'
    )


def _write_npm(registry: Path, base_url: str) -> None:
    """The npm package ``devplane-probe``: its tarball and the packument naming it."""
    package = {"name": PROBE, "version": PROBE_VERSION, "main": "index.js"}
    contents = {
        "package/package.json": json.dumps(package).encode(),
        "package/index.js": f"module.exports = {json.dumps(PROBE_MESSAGE)};\n".encode(),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in contents.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    tarball = buffer.getvalue()
    (registry / PROBE / "-").mkdir(parents=True)
    tgz = f"{PROBE}-{PROBE_VERSION}.tgz"
    (registry / PROBE / "-" / tgz).write_bytes(tarball)
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    packument = {
        "name": PROBE,
        "dist-tags": {"latest": PROBE_VERSION},
        "versions": {
            PROBE_VERSION: {
                **package,
                "dist": {
                    "tarball": f"{base_url}/npm/{PROBE}/-/{tgz}",
                    "shasum": hashlib.sha1(tarball).hexdigest(),
                    "integrity": integrity,
                },
            }
        },
    }
    # A file beside the directory of the same name is impossible: the packument is index.json,
    # which the handler serves for /npm/<name>.
    (registry / PROBE / "index.json").write_text(json.dumps(packument))


def _write_git(root: Path) -> None:
    """A bare repository with one commit, readable over git's dumb HTTP protocol."""
    work = root / "probe-work"
    bare = root / "probe.git"

    def git(*args: str, cwd: Path) -> None:
        subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)

    work.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=work)
    (work / "README").write_text(PROBE_MESSAGE + "\n")
    git("add", "README", cwd=work)
    git("-c", "user.name=mirror", "-c", "user.email=mirror@test", "commit", "-q", "-m", "probe",
        cwd=work)  # fmt: skip
    git("clone", "-q", "--bare", str(work), str(bare), cwd=root)
    git("update-server-info", cwd=bare)


class _Handler(SimpleHTTPRequestHandler):
    requests: list[str]

    def translate_path(self, path: str) -> str:
        local = Path(super().translate_path(path))
        if local.is_dir() and (local / "index.json").is_file():
            return str(local / "index.json")  # an npm packument
        return str(local)

    def guess_type(self, path: Any) -> str:
        if str(path).endswith(".json"):
            return "application/json"
        return super().guess_type(path)

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LocalMirror:
    """The three mirrors on 127.0.0.1, over HTTP or (given ``tls``) HTTPS; a context manager.

    ``requests`` lists every path asked for, so a test can check the mirror was used."""

    def __init__(self, directory: Path, tls: ThrowawayCA | None = None) -> None:
        self.root = directory / "mirror"
        self.root.mkdir(parents=True)
        self.requests: list[str] = []
        handler = type("Handler", (_Handler,), {"requests": self.requests})
        self._server = ThreadingHTTPServer(
            ("127.0.0.1", 0), partial(handler, directory=str(self.root))
        )
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert, tls.key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        _write_wheel(self.root / "simple")
        _write_npm(self.root / "npm", self.url)
        _write_git(self.root / "git")
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def pip_index(self) -> str:
        return f"{self.url}/simple/"

    @property
    def npm_registry(self) -> str:
        return f"{self.url}/npm/"

    @property
    def git_base(self) -> str:
        """The URL prefix git repositories are under: the probe is ``<git_base>probe.git``."""
        return f"{self.url}/git/"

    def __enter__(self) -> LocalMirror:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
