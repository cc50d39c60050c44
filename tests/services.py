"""Real service processes for the tests: PostgreSQL and Redis servers started from the installed binaries."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throw-away PostgreSQL on a free port; yields its URL (database ``postgres``).

    PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user.
    """
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError(
            "PostgreSQL binaries not found: install Debian's postgresql package (make test does as root) "
            "or set FORUMLIVE_TEST_POSTGRES_URL"
        )
    root = tempfile.mkdtemp(prefix="forumlive-pg-")
    os.chmod(root, 0o755)
    datadir = os.path.join(root, "data")
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    run = {"check": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
    subprocess.run([*as_user, f"{bindir}/initdb", "-D", datadir, "-A", "trust", "-U", "postgres", "--no-sync"], **run)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    logfile = os.path.join(root, "server.log")
    subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", datadir, "-o", options, "-l", logfile, "-w", "start"], **run)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, f"{bindir}/pg_ctl", "-D", datadir, "-m", "immediate", "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(root, ignore_errors=True)


def create_database(server_url: str, name: str) -> str:
    """Create an empty database on the server; returns its URL."""
    import psycopg

    plain = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


class RedisServer:
    """A throw-away ``redis-server`` without persistence on a fixed port, which a test can stop and start again.

    Args:
        root: a directory for its log and working files.
        port: the port it listens on; it keeps it across restarts.
        config: more of redis.conf's settings (``requirepass`` also goes into ``url``).
    """

    def __init__(self, root: str, port: int, config: dict[str, str] | None = None) -> None:
        self.root = root
        self.port = port
        self.config = dict(config or {})
        password = self.config.get("requirepass")
        self.url = f"redis://{f':{password}@' if password else ''}127.0.0.1:{port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        """Start it and wait until it answers PING (before sign-in, with a password: NOAUTH is an answer)."""
        options = {"port": str(self.port), "bind": "127.0.0.1", "dir": self.root, "save": "", "appendonly": "no"}
        options.update(self.config)
        command = [redis_binary() or "redis-server", *(a for k, v in options.items() for a in (f"--{k}", v))]
        command += ["--logfile", os.path.join(self.root, "server.log")]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while True:  # a new process has no event to wait on: ask until it answers
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._process.returncode}; see {self.root}/server.log")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith((b"+PONG", b"-NOAUTH")):
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer on port {self.port}")
            time.sleep(0.01)

    def stop(self) -> None:
        """Kill it, as a crash would: with no persistence its data is gone."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


def redis_binary() -> str | None:
    found = shutil.which("redis-server")
    if found is None and os.path.exists("/usr/bin/redis-server"):  # /usr/bin may be missing from a test's PATH
        found = "/usr/bin/redis-server"
    return found


@contextmanager
def redis_process(config: dict[str, str] | None = None) -> Iterator[RedisServer]:
    """Start a throw-away Redis on a free port (no RDB, no AOF; ``config``: more redis.conf settings); yields
    it, running, to stop and restart at will."""
    if redis_binary() is None:
        raise RuntimeError(
            "redis-server not found: install Debian's redis-server package or set FORUMLIVE_TEST_REDIS_URL"
        )
    root = tempfile.mkdtemp(prefix="forumlive-redis-")
    server = RedisServer(root, free_port(), config)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def redis_server() -> Iterator[str]:
    """A Redis URL: ``FORUMLIVE_TEST_REDIS_URL`` when set, else a throw-away server from ``redis_process``."""
    url = os.environ.get("FORUMLIVE_TEST_REDIS_URL")
    if url:
        yield url
        return
    with redis_process() as server:
        yield server.url
