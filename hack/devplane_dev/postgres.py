"""A throwaway PostgreSQL server on 127.0.0.1, for the hub's external-database tests.

Debian's PostgreSQL binaries (hack/apt-packages.txt), run as ``nobody``: the server refuses
to run as root. The superuser ``postgres`` logs in with a random password over TCP (scram),
as a hub does with the URL from its Secret.
"""

from __future__ import annotations

import glob
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from .procs import ManagedProcess, free_port


class PostgresError(RuntimeError):
    """The server could not be set up; the message says what is missing."""


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise PostgresError(
            "PostgreSQL's server is not installed (no /usr/lib/postgresql/*/bin/initdb): "
            "run `make setup-apt` (hack/apt-packages.txt lists postgresql)"
        )
    return Path(found[-1]).parent


class LocalPostgres:
    """``with LocalPostgres() as db: db.url("jupyterhub")``; stopped and deleted on exit."""

    def __init__(self) -> None:
        self.bin = _binaries()
        self.root = Path(tempfile.mkdtemp(prefix="dppg-", dir="/tmp"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.password = secrets.token_hex(16)
        self.port = free_port()
        self.process: ManagedProcess | None = None

    def _as_nobody(self, *argv: str) -> list[str]:
        runner = shutil.which("setpriv")
        if runner is None:
            raise PostgresError("setpriv (util-linux) is needed to run PostgreSQL as nobody")
        return [runner, "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv]

    def __enter__(self) -> LocalPostgres:
        self.data.mkdir()
        password_file = self.root / "pw"
        password_file.write_text(self.password + "\n")
        subprocess.run(["chown", "-R", "nobody:nogroup", str(self.root)], check=True)
        done = subprocess.run(
            self._as_nobody(
                str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                "--auth-local=trust", "--auth-host=scram-sha-256",
                f"--pwfile={password_file}", "--no-sync",
            ),
            capture_output=True, text=True, cwd=self.root,
        )  # fmt: skip
        password_file.unlink()
        if done.returncode != 0:
            raise PostgresError(f"initdb failed:\n{done.stdout}{done.stderr}")
        self.process = ManagedProcess(
            self._as_nobody(
                str(self.bin / "postgres"), "-D", str(self.data), "-h", "127.0.0.1",
                "-p", str(self.port), "-k", str(self.root), "-c", "fsync=off",
            ),
            self.root / "postgres.log",
            cwd=self.root,
            name="postgres",
        )  # fmt: skip
        try:
            self.process.wait_for_log("database system is ready to accept connections", 60)
        except BaseException:
            self.__exit__()
            raise
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new database; returns its URL."""
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def query(self, database: str, sql: str) -> list[tuple]:
        with psycopg.connect(self.url(database)) as connection:
            return list(connection.execute(sql).fetchall())

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.stop()
        shutil.rmtree(self.root, ignore_errors=True)
