"""A real PostgreSQL server for the tests and the benchmarks, started from Debian's packages in a temporary folder.

`initdb` makes a cluster under `root` (trust authentication, one superuser), and `pg_ctl` starts it on a free
port of 127.0.0.1 with its socket in the same folder, so nothing of the machine's own PostgreSQL is touched.
PostgreSQL refuses to run as root: under root (CI's containers) the cluster belongs to the `postgres` user the
Debian package creates, and its programs run as that user. Starting one takes a second or two; each test takes
a database of its own (`create_database`).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

USER = "weightkeeper"
START_TIMEOUT = 60.0
INSTALL_HINT = "install PostgreSQL from Debian's packages (`apt-get install postgresql`), as .ci/run does"


def postgres_bin(program: str) -> str:
    """The path of a PostgreSQL server program: on PATH, or in Debian's versioned folder (newest first)."""
    found = shutil.which(program) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"),
                                                      key=lambda path: int(path.split("/")[4]), reverse=True)), None)
    if found is None:
        raise RuntimeError(f"PostgreSQL's `{program}` is not installed: {INSTALL_HINT}")
    return found


class PostgresServer:
    def __init__(self, root: Path, *, durable: bool = False) -> None:
        """`durable`: fsync and synchronous commits as a production server has them (the benchmarks); the
        tests' servers skip both, which loses nothing a test could see short of a machine crash."""
        self.root, self.durable = root, durable
        self.data, self.log_path = root / "data", root / "server.log"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> float:
        """Create the cluster (the first time) and start the server; returns the seconds it took."""
        started = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        if not (self.data / "PG_VERSION").exists():
            self._run(postgres_bin("initdb"), "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8",
                      "--locale=C.UTF-8", "--no-sync")
        options = [f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-c unix_socket_directories={self.root}",
                   "-c max_connections=200"]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log_path), "-o", " ".join(options),
                  "-w", "-t", str(int(START_TIMEOUT)), "start")
        return time.monotonic() - started

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`immediate`: as a crash would); its cluster stays for a restart."""
        if (self.data / "postmaster.pid").exists():
            self._run(postgres_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database, empty or a copy of `template`; returns its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(name)

    def _run(self, *command: str) -> None:
        if self._as_postgres:
            command = ("runuser", "-u", "postgres", "--", *command)
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.root)
        if done.returncode != 0:
            log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
            raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}:\n{done.stdout}{done.stderr}{log}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
