"""docs/deploy.md's nginx configuration, as written there, in a real nginx (Debian's, installed by
``make test``) in front of two ``forumlive serve`` processes sharing rooms through PostgreSQL and a Redis set
up as the guide's redis.conf says (a password, no eviction).

What changes from the file: the upstream addresses (the two processes' ports), the listening ports, the
certificate (a self-signed one made here) and the places nginx writes to. The rest runs as documented: TLS,
the redirect from plain HTTP, WebSocket upgrades with the Origin passed through, the session's sockets kept
on one process, and ``/metrics`` closed to the world.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import re
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.server.test_cluster_e2e import Node, cluster_env, seed_demo
from tests.services import create_database, free_port, redis_process

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if found is None:  # make test installs it (scripts/system-deps.sh); a missing install step must fail
        raise RuntimeError("nginx is not installed: run scripts/system-deps.sh as root (apt-get install nginx)")
    return found


def documented_config() -> str:
    """The ```nginx block of docs/deploy.md."""
    blocks = re.findall(r"```nginx\n(.*?)```", DEPLOY.read_text(), flags=re.S)
    assert len(blocks) == 1, "docs/deploy.md has one nginx configuration"
    return blocks[0]


def documented_redis() -> tuple[dict[str, str], str]:
    """docs/deploy.md's redis.conf settings (but ``bind``) and its FORUMLIVE_REDIS_URL."""
    text = DEPLOY.read_text()
    (block,) = [b for b in re.findall(r"```conf\n(.*?)```", text, flags=re.S) if "redis.conf" in b]
    config = {}
    for line in block.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) == 2 and words[0] != "bind":
            config[words[0]] = words[1]
    (url,) = set(re.findall(r"^FORUMLIVE_REDIS_URL=(\S+)$", text, flags=re.M))  # the same wherever it is shown
    return config, url


def self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "forum.example.org")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def local_config(doc: str, ports: list[int], http_port: int, https_port: int, cert: Path, key: Path) -> str:
    """The documented configuration with this test's ports and certificate."""
    replacements = [
        ("127.0.0.1:8001", f"127.0.0.1:{ports[0]}"),
        ("127.0.0.1:8002", f"127.0.0.1:{ports[1]}"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl"),
        ("/etc/letsencrypt/live/forum.example.org/fullchain.pem", str(cert)),
        ("/etc/letsencrypt/live/forum.example.org/privkey.pem", str(key)),
    ]
    for old, new in replacements:
        assert old in doc, f"docs/deploy.md's nginx configuration no longer has {old!r}"
        doc = doc.replace(old, new)
    return doc


@dataclass
class Proxied:
    url: str  # https through nginx
    http_url: str  # plain http through nginx
    nodes: list[Node]
    accounts: dict[str, dict[str, str]]
    cookie: str = ""

    def connections(self) -> list[int]:
        """Room sockets open in each process, asked of each process directly."""
        counts = []
        for node in self.nodes:
            text = httpx2.get(f"{node.url}/metrics").text
            counts.append(int(float(re.search(r"^forumlive_connections (\S+)$", text, re.M).group(1))))
        return counts


@pytest.fixture(scope="module")
def proxied(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    binary = nginx_binary()
    root = tmp_path_factory.mktemp("nginx")
    ports = [free_port(), free_port()]
    http_port, https_port = free_port(), free_port()
    public = f"https://127.0.0.1:{https_port}"
    cert, key = self_signed(root)
    user = "user root root;\n" if os.geteuid() == 0 else ""  # workers read the key and write temp files here
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp = "".join(f"{kind}_temp_path {root}/{kind};\n" for kind in kinds)
    conf = root / "nginx.conf"
    conf.write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {root}/nginx.pid;\nerror_log {root}/error.log info;\n"
        f"events {{ worker_connections 512; }}\n"
        f"http {{\naccess_log {root}/access.log;\n{temp}"
        f"{local_config(documented_config(), ports, http_port, https_port, cert, key)}\n}}\n"
    )
    checked = subprocess.run([binary, "-t", "-c", str(conf), "-p", str(root)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr

    database_url = create_database(postgres_server_url, "deploy_nginx")
    # Redis as the guide sets it up: a password, a memory cap that never evicts.
    redis_config, documented_url = documented_redis()
    assert redis_config.get("requirepass") and redis_config.get("maxmemory-policy") == "noeviction"
    with redis_process(redis_config) as redis:
        assert documented_url.replace("10.0.0.5:6379", f"127.0.0.1:{redis.port}") == redis.url
        # As in the documented environment file: the public URL, secure cookies, no access log.
        env = cluster_env(root, database_url, redis.url, public_url=public, secure_cookies="true", access_log="false")
        accounts = seed_demo(env)
        nodes = [Node(port, env, root / f"node{i}.log") for i, port in enumerate(ports)]
        nginx = None
        try:
            for node in nodes:
                node.start()
            with (root / "nginx.out").open("w") as out:
                command = [binary, "-c", str(conf), "-p", str(root)]
                nginx = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 15
            while True:
                try:
                    if httpx2.get(f"{public}/healthz", verify=False).status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                assert nginx.poll() is None, (root / "nginx.out").read_text()
                assert time.monotonic() < deadline, (root / "error.log").read_text()
                time.sleep(0.1)
            yield Proxied(public, f"http://127.0.0.1:{http_port}", nodes, accounts)
        finally:
            if nginx is not None:
                nginx.terminate()
                nginx.wait(timeout=10)
            for node in nodes:
                node.stop()


def _sign_in(proxied: Proxied, email: str) -> str:
    with httpx2.Client(base_url=proxied.url, verify=False) as http:
        token = http.get("/api/auth/csrf").json()["csrf_token"]
        response = http.post(
            "/api/auth/signin",
            json={"email": email, "password": proxied.accounts[email]["password"]},
            headers={"X-CSRF-Token": token, "Origin": proxied.url},
        )
        assert response.status_code == 200, response.text
        assert "secure" in response.headers["set-cookie"].lower()  # FORUMLIVE_SECURE_COOKIES behind TLS
        return http.cookies["forumlive_session"]


def _tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the test's own self-signed certificate
    return context


def test_pages_over_tls_and_plain_http_redirected(proxied: Proxied) -> None:
    page = httpx2.get(f"{proxied.url}/", verify=False)
    assert page.status_code == 200 and "WSIS Forum" in page.text
    assert page.headers["strict-transport-security"] == "max-age=31536000"
    plain = httpx2.get(f"{proxied.http_url}/sessions/1?x=1", follow_redirects=False)
    assert plain.status_code == 301 and plain.headers["location"].startswith("https://")
    assert plain.headers["location"].endswith("/sessions/1?x=1")
    assert httpx2.get(f"{proxied.url}/healthz", verify=False).json()["status"] == "ok"
    assert httpx2.get(f"{proxied.url}/metrics", verify=False).status_code == 403  # only from Prometheus's network


def test_sockets_of_a_session_reach_one_process_through_nginx(proxied: Proxied) -> None:
    """The room and lite sockets of each live session open through nginx (wss, Origin checked by the server)
    and land on the same process; a socket from another origin is refused."""
    cookie = _sign_in(proxied, "participant@demo.forumlive.org")
    sessions = [s["id"] for s in httpx2.get(f"{proxied.url}/api/sessions?status=live", verify=False).json()["sessions"]]
    assert len(sessions) >= 3
    base = proxied.url.replace("https://", "wss://")
    headers = {"Cookie": f"forumlive_session={cookie}"}

    def socket(path: str, origin: str = proxied.url):  # noqa: ANN202 - websockets' connect
        return connect(f"{base}{path}", origin=origin, additional_headers=headers, ssl=_tls(), open_timeout=15)

    async def main() -> tuple[list[list[int]], list[int]]:
        per_session = []
        for session_id in sessions:
            async with (
                socket(f"/ws/sessions/{session_id}") as room,
                socket(f"/ws/sessions/{session_id}/lite?track=machine") as lite,
            ):
                for ws in (room, lite):
                    await ws.send(json.dumps({"type": "hello", "v": 1}))
                    assert json.loads(await ws.recv())["type"] == "welcome"
                per_session.append(proxied.connections())
            deadline = time.monotonic() + 10
            while sum(proxied.connections()) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        refused = []
        try:
            async with socket(f"/ws/sessions/{sessions[0]}", origin="https://evil.example"):
                pass
        except InvalidStatus as exc:
            refused.append(exc.response.status_code)
        return per_session, refused

    per_session, refused = asyncio.run(main())
    assert all(sorted(counts) == [0, 2] for counts in per_session), per_session  # both sockets on one process
    assert refused == [403]
