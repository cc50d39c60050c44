"""docs/deploy.md's coturn configuration, as written there, in a real coturn (Debian's ``turnserver``,
installed by ``make test``), checked with the TURN credentials forumlive hands to browsers.

What changes from the file: the ports, the secret, the certificate (a self-signed one made here), and
loopback as the only address to listen and relay on. A TURN allocation is what a browser makes before it
can relay media; it needs the credentials to pass coturn's check of the shared secret.
"""

from __future__ import annotations

import asyncio
import gc
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aioice import stun, turn

from server.rooms.media import MediaService, turn_credentials
from server.settings import Settings
from tests.server.test_deploy_nginx import self_signed
from tests.services import free_port

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
SECRET = "a-secret-shared-by-forumlive-and-coturn"


def documented_config() -> str:
    """The coturn block of docs/deploy.md (```conf, starting with its file name)."""
    blocks = [b for b in re.findall(r"```conf\n(.*?)```", DEPLOY.read_text(), flags=re.S) if "turnserver.conf" in b]
    assert len(blocks) == 1, "docs/deploy.md has one turnserver.conf"
    return blocks[0]


def free_udp_range(size: int) -> int:
    """The first port of ``size`` consecutive UDP ports free now (relays are allocated among them)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + size > 65535:
            continue
        try:
            held = []
            for port in range(first, first + size):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return first
    raise RuntimeError("no free range of UDP ports")


@dataclass
class Turn:
    port: int
    tls_port: int
    relay_ports: range


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Turn]:
    binary = shutil.which("turnserver")
    if binary is None:  # make test installs it (scripts/system-deps.sh); a missing install step must fail
        raise RuntimeError("coturn is not installed: run scripts/system-deps.sh as root (apt-get install coturn)")
    root = tmp_path_factory.mktemp("coturn")
    cert, key = self_signed(root)
    port, tls_port = free_port(), free_port()
    first = free_udp_range(20)
    config = documented_config()
    replacements = [
        ("listening-port=3478", f"listening-port={port}"),
        ("tls-listening-port=5349", f"tls-listening-port={tls_port}"),
        ("static-auth-secret=the-same-as-FORUMLIVE_TURN_SECRET", f"static-auth-secret={SECRET}"),
        ("/etc/letsencrypt/live/turn.example.org/fullchain.pem", str(cert)),
        ("/etc/letsencrypt/live/turn.example.org/privkey.pem", str(key)),
        ("min-port=49160", f"min-port={first}"),
        ("max-port=49999", f"max-port={first + 19}"),
    ]
    for old, new in replacements:
        assert old in config, f"docs/deploy.md's turnserver.conf no longer has {old!r}"
        config = config.replace(old, new)
    # Loopback only, files under the test's directory, no database (use-auth-secret needs none).
    config += (
        f"listening-ip=127.0.0.1\nrelay-ip=127.0.0.1\npidfile={root}/turnserver.pid\n"
        f"log-file={root}/turnserver.log\nsimple-log\nuserdb={root}/turndb\n"
    )
    (root / "turnserver.conf").write_text(config)
    with (root / "turnserver.out").open("w") as out:
        process = subprocess.Popen([binary, "-c", str(root / "turnserver.conf")], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:  # ready once it takes TCP connections on both ports
            assert process.poll() is None, (root / "turnserver.out").read_text()
            try:
                for ready in (port, tls_port):
                    socket.create_connection(("127.0.0.1", ready), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, (root / "turnserver.out").read_text()
                time.sleep(0.1)
        yield Turn(port, tls_port, range(first, first + 20))
    finally:
        process.terminate()
        process.wait(timeout=10)


def handed_out(turn_url: str) -> dict:
    """The TURN entry of the ICE servers a browser gets in its ``media.config``."""
    settings = Settings(turn_urls=(turn_url,), turn_secret=SECRET, turn_ttl_s=3600)
    (server,) = [s for s in MediaService(settings, lambda connection, message: None).ice_servers(42) if "username" in s]
    assert server["urls"] == [turn_url]
    return server


class _Relay(asyncio.DatagramProtocol):
    """Knows when the allocation is gone (TurnTransport.close deletes it in a task, then calls connection_lost)."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()


async def allocate(port: int, username: str, password: str, tls: bool = False) -> tuple[str, int]:
    """Allocate a relay, then delete it and wait until its socket is closed; the relayed address."""
    context = None
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the test's self-signed certificate
    transport, relay = await turn.create_turn_endpoint(
        _Relay,
        ("127.0.0.1", port),
        username,
        password,
        lifetime=60,
        ssl=context,
        transport="tcp" if tls else "udp",
    )
    try:
        return transport.get_extra_info("sockname")
    finally:
        transport.close()
        await asyncio.wait_for(relay.closed.wait(), 10)
        await asyncio.sleep(0.05)  # the socket itself closes in a callback after connection_lost


@pytest.fixture(autouse=True)
def _collect() -> Iterator[None]:
    """Sockets a test leaves open are reported in that test, not in whichever test the collector runs in."""
    yield
    gc.collect()


def test_the_credentials_forumlive_hands_out_allocate_a_relay(coturn: Turn) -> None:
    server = handed_out(f"turn:127.0.0.1:{coturn.port}?transport=udp")
    host, port = asyncio.run(allocate(coturn.port, server["username"], server["credential"]))
    assert host == "127.0.0.1" and port in coturn.relay_ports  # a relay in the configured range


def test_turns_over_tls_with_the_configured_certificate(coturn: Turn) -> None:
    server = handed_out(f"turns:127.0.0.1:{coturn.tls_port}")
    host, port = asyncio.run(allocate(coturn.tls_port, server["username"], server["credential"], tls=True))
    assert port in coturn.relay_ports


@pytest.mark.parametrize("case", ["wrong secret", "expired"])
def test_credentials_coturn_must_refuse(coturn: Turn, case: str) -> None:
    if case == "wrong secret":
        username, password = turn_credentials("not-the-secret", "42", 3600)
    else:
        username, password = turn_credentials(SECRET, "42", 3600, now=time.time() - 7200)  # ended an hour ago
    with pytest.raises(stun.TransactionFailed, match="401"):
        asyncio.run(allocate(coturn.port, username, password))
