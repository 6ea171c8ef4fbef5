"""Real Ray and PostgreSQL servers on loopback for tests and benchmarks, stopped by PID.

Not a test module: imported by tests/test_ray_import.py, tests/test_store_postgres.py and
benchmarks/bench_scaling.py (as `tests.clusters`).

    with ray_cluster(num_cpus=2) as address:        # "127.0.0.1:PORT", `ray start --head --block`
        ...                                          # python -m signseek.datasets import ... --address
    with postgres_server() as server:                # initdb + postgres on a temp dir, as an
        url = server.create_database("t1")          # unprivileged user, on 127.0.0.1:PORT

Both start their own processes and stop them (and everything those started) by PID, within a
bounded time: SIGTERM / SIGINT first, SIGKILL for whatever is left. Nothing else is touched.
`Unavailable` says why one cannot start here (Ray or PostgreSQL not installed).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

try:  # imported as `tests.clusters` by the benchmarks, as `clusters` by the tests
    from tests.servers import free_port
except ImportError:
    from servers import free_port


class Unavailable(RuntimeError):
    """The server cannot be started on this machine; the message says what to install."""


def _stop_tree(proc: subprocess.Popen, sig: int, timeout_s: float) -> None:
    """Send ``sig`` to ``proc``; after ``timeout_s`` SIGKILL it and every process it started."""
    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
    # Children that outlive the parent are killed by their own PIDs (collected above, and now).
    for p in list(family):
        try:
            family += p.children(recursive=True)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(family, timeout=5)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=5)


# ---------------------------------------------------------------------------- Ray


def ray_executable() -> Path:
    ray = Path(sys.executable).with_name("ray")
    if not ray.is_file():
        raise Unavailable("Ray is not installed in this environment: pip install -c constraints.txt -e '.[ray]'")
    return ray


@contextmanager
def ray_cluster(num_cpus: int = 2, timeout_s: float = 180.0, object_store_mb: int = 100) -> Iterator[str]:
    """A Ray head node on 127.0.0.1 with ``num_cpus`` worker slots; yields its address.

    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 keeps every Ray socket on loopback (Ray otherwise
    resolves 127.0.0.1 to the machine's address); the price is that no second node can join,
    so the cluster's workers are the head node's worker processes.
    """
    ray = ray_executable()
    tmp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's unix sockets live under it
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "PYTHONUNBUFFERED": "1"}
    cmd = [str(ray), "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
           f"--num-cpus={num_cpus}", "--num-gpus=0", f"--object-store-memory={object_store_mb * 2**20}",
           "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={tmp}",
           f"--ray-client-server-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
           f"--dashboard-agent-grpc-port={free_port()}", f"--metrics-export-port={free_port()}",
           f"--runtime-env-agent-port={free_port()}"]
    log_path = tmp / "head.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout_s
        while "Ray runtime started" not in log_path.read_text(errors="replace"):
            if proc.poll() is not None:
                raise RuntimeError(f"ray start exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"ray start did not finish in {timeout_s:.0f} s:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.25)
        yield f"127.0.0.1:{port}"
    finally:
        _stop_tree(proc, signal.SIGTERM, timeout_s=30)
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------- PostgreSQL


def postgres_bin() -> Path:
    """Debian's PostgreSQL server programs (package `postgresql`), newest version first."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]), reverse=True)
    if not found:
        raise Unavailable("PostgreSQL is not installed: apt-get install postgresql (make system-deps does it)")
    return Path(found[0]).parent


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: PostgreSQL refuses to run as root, so root hands it to an
    unprivileged account (Debian's `postgres`, else `nobody`); anyone else runs it themselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise Unavailable("running as root and there is no unprivileged account (postgres, nobody) for PostgreSQL")


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    process: subprocess.Popen
    data_dir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextmanager
def postgres_server(timeout_s: float = 60.0) -> Iterator[PostgresServer]:
    """initdb on a temp directory and `postgres` on 127.0.0.1:<free port>, as an unprivileged
    user, trust authentication for a `signseek` role (loopback only); stopped by PID."""
    bindir = postgres_bin()
    account = _server_user()
    as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []} if account else {}
    tmp = Path(tempfile.mkdtemp(prefix="signseek-pg-"))
    data, sockets = tmp / "data", tmp / "sock"
    sockets.mkdir()
    if account:
        for path in (tmp, sockets):
            os.chown(path, account.pw_uid, account.pw_gid)
    env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    user = "signseek"
    done = subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8",
                           "--no-sync", "--no-instructions"], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=timeout_s, **as_user)
    if done.returncode:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    port = free_port()
    log_path = tmp / "postgres.log"
    with open(log_path, "w") as log:
        if account:
            os.chown(log_path, account.pw_uid, account.pw_gid)
        proc = subprocess.Popen([str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                                 "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={sockets}",
                                 "-c", "max_connections=60", "-c", "shared_buffers=32MB"],
                                cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, **as_user)
    server = PostgresServer("127.0.0.1", port, user, proc, data)
    try:
        import psycopg

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                psycopg.connect(server.url(), connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if proc.poll() is not None:
                    raise RuntimeError(f"postgres exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postgres did not accept connections in {timeout_s:.0f} s:\n"
                                       f"{log_path.read_text()[-4000:]}") from None
                time.sleep(0.2)
        yield server
    finally:
        _stop_tree(proc, signal.SIGINT, timeout_s=20)  # SIGINT: PostgreSQL's "fast" shutdown
        shutil.rmtree(tmp, ignore_errors=True)


_SHARED_POSTGRES: tuple | None = None


def shared_postgres() -> PostgresServer:
    """One PostgreSQL server for the whole test process, started on first use and stopped (by
    PID) at exit; each test makes its own database on it (`create_database`)."""
    global _SHARED_POSTGRES
    if _SHARED_POSTGRES is None:
        import atexit

        context = postgres_server()
        server = context.__enter__()
        atexit.register(context.__exit__, None, None, None)
        _SHARED_POSTGRES = (context, server)
    return _SHARED_POSTGRES[1]
