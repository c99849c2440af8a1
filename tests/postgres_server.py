"""A throw-away PostgreSQL server for the team-mode tests (Debian package `postgresql`).

initdb refuses to run as root, so as root the cluster is created and run as the `postgres` user through
`runuser`; otherwise as the current user. It listens on 127.0.0.1 on a free port, trusts local connections
and is stopped (and its folder removed) at the end of the test session.
"""
from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def pg_tool(name: str) -> str | None:
    for folder in PG_BIN_DIRS:
        if (folder / name).exists():
            return str(folder / name)
    return shutil.which(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self):
        self.initdb, self.pg_ctl = pg_tool("initdb"), pg_tool("pg_ctl")
        self.as_root = os.geteuid() == 0
        self.folder = Path(tempfile.mkdtemp(prefix="benchdb_pg_"))
        self.port = free_port()
        self.user = "postgres" if self.as_root else getpass.getuser()

    def available(self) -> str | None:
        if not self.initdb or not self.pg_ctl:
            return "PostgreSQL is not installed (apt-get install postgresql)"
        if self.as_root and not shutil.which("runuser"):
            return "running as root without runuser: initdb refuses root"
        return None

    def _run(self, argv, **kwargs):
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)

    def start(self) -> None:
        if self.as_root:
            shutil.chown(self.folder, "postgres", "postgres")
        data = self.folder / "data"
        done = self._run([self.initdb, "-D", str(data), "--auth=trust", "-U", self.user, "-E", "UTF8"])
        if done.returncode:
            raise RuntimeError(f"initdb failed: {done.stderr[-500:]}")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off"
        done = self._run([self.pg_ctl, "-D", str(data), "-o", options, "-l", str(self.folder / "log"), "-w",
                          "start"])
        if done.returncode:
            raise RuntimeError(f"pg_ctl start failed: {done.stderr[-500:]} {done.stdout[-500:]}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError("PostgreSQL did not start listening")

    def create_database(self, name: str) -> str:
        createdb = pg_tool("createdb")
        done = self._run([createdb, "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name])
        if done.returncode:
            raise RuntimeError(f"createdb failed: {done.stderr}")
        return self.dsn(name)

    def add_password_user(self, name: str, password: str) -> None:
        """A login role that must give `password` (scram) over TCP; every other role stays trusted."""
        psql = pg_tool("psql")
        done = self._run([psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", "postgres", "-c",
                          f"CREATE ROLE {name} LOGIN SUPERUSER PASSWORD '{password}'"])
        if done.returncode and "already exists" not in done.stderr:
            raise RuntimeError(f"CREATE ROLE failed: {done.stderr}")
        hba = self.folder / "data" / "pg_hba.conf"
        rule = f"host all {name} 127.0.0.1/32 scram-sha-256\n"
        text = hba.read_text()
        if rule not in text:
            hba.write_text(rule + text)  # first matching line wins
            done = self._run([self.pg_ctl, "-D", str(self.folder / "data"), "reload"])
            if done.returncode:
                raise RuntimeError(f"pg_ctl reload failed: {done.stderr}")
            time.sleep(0.5)

    def dsn(self, dbname: str) -> str:
        return f"dbname={dbname} host=127.0.0.1 port={self.port} user={self.user}"

    def stop(self) -> None:
        self._run([self.pg_ctl, "-D", str(self.folder / "data"), "-m", "fast", "stop"])
        shutil.rmtree(self.folder, ignore_errors=True)
