"""Settings in one place: ``FORUMLIVE_*`` environment variables, then a ``.env`` file, then defaults.

Nothing here runs at import time; ``load_settings()`` is called by the command line and by tests,
and the result is handed to ``create_app(settings)``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from dotenv import dotenv_values

PREFIX = "FORUMLIVE_"
SECRET_KEY_FILE = "secret_key"  # noqa: S105 (a file name, not a secret)
SECRET_KEY_BYTES = 32
CAPTION_ENGINES = ("faster-whisper", "openai-whisper")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    """Everything the platform can be configured with.

    Args:
        data_dir: where the SQLite file, the generated secret key and demo files live.
        database_url: SQLAlchemy URL; ``None`` means a SQLite file in ``data_dir``.
        redis_url: Redis for sharing rooms between processes; ``None`` means the in-process bus.
        host, port: where ``forumlive serve`` listens.
        allowed_origins: exact Origins accepted on WebSockets and unsafe requests; empty means the
            origin of ``public_url``.
        public_url: the address people use to reach the platform (used in invitation links).
        secret_key: signs session cookies; generated and stored in ``data_dir`` on first run.
        session_max_age_s: lifetime of the sign-in cookie, in seconds.
        secure_cookies: send cookies only over HTTPS (turn on behind TLS).
        invitation_ttl_h: default lifetime of speaker/moderator invitation links, in hours.
        captions_model: the Whisper model for live captions: a name (``tiny.en``) or a model directory
            (with ``openai-whisper``, also the path of a converted ``.pt`` checkpoint).
        captions_workers: engine calls running at once, shared by all caption streams in turn (each call
            uses 2 threads; default: half the CPU cores).
        captions_batch: the most streams' windows one engine call transcribes together (faster-whisper
            batches them in one pass; default 8).
        captions_step_s: new audio between two transcriptions of a stream (default 0.5 s): shorter gives
            earlier captions for more engine time; under load steps lengthen by themselves.
        captions_beam: beam search width of a stream's step when it runs alone (default 3; 1 is greedy
            decoding, about a third less engine time for a few more errors); shared passes are greedy.
        captions_translate: give sessions held in a language other than English a second caption track, in
            English (Whisper's translate task), when the model is multilingual; doubles their engine time.
        captions_engine: what runs the model: ``faster-whisper`` (CTranslate2, the default) or
            ``openai-whisper`` (PyTorch; the model is converted once into ``data_dir/models/NAME.pt``).
        stun_urls: STUN servers given to browsers and the server's peer connections (none by default:
            no request leaves for a public STUN server unless configured).
        turn_urls: TURN servers; browsers get short-lived credentials for them signed with ``turn_secret``
            (coturn's ``use-auth-secret``).
        turn_secret: the secret shared with the TURN server.
        turn_ttl_s: lifetime of the TURN credentials handed out.
        ice_host_addresses: the local addresses the server gathers ICE candidates on; empty: all of them.
        live_captions: caption every speaker who publishes audio (on by default).
        attendance_retention_days: delete the raw visits (who came when) of sessions that ended more than
            this many days ago, keeping the per-session aggregates the key figures read; None keeps them.
        record_audio: keep each speaker's audio (16 kHz mono WAV, from the captioning tap) under
            ``data_dir/recordings``; off by default.
        cluster_lease_s: with Redis, how long a process's ownership of a room lasts without renewal
            (a killed owner's rooms are taken over after this long).
        cluster_heartbeat_s: with Redis, how often each process says it is alive and refreshes its
            visits; a process silent for three heartbeats is dead to the others.
        log_level: the server's log level (``critical``, ``error``, ``warning``, ``info``, ``debug``).
        access_log: a line per HTTP request and per WebSocket handshake (on by default; behind a reverse
            proxy that logs requests, and with audiences of thousands joining at once, turn it off).
    """

    data_dir: Path = Path("data")
    database_url: str | None = None
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    allowed_origins: tuple[str, ...] = ()
    public_url: str | None = None
    secret_key: str = ""
    session_max_age_s: int = 14 * 24 * 3600
    secure_cookies: bool = False
    invitation_ttl_h: int = 72
    captions_model: str = "tiny.en"
    captions_engine: str = "faster-whisper"
    captions_translate: bool = True
    captions_workers: int = field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2))
    captions_batch: int = 8
    captions_step_s: float = 0.5
    captions_beam: int = 3
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str = ""
    turn_ttl_s: int = 3600
    ice_host_addresses: tuple[str, ...] = ()
    live_captions: bool = True
    record_audio: bool = False
    attendance_retention_days: int | None = None
    cluster_lease_s: float = 10.0
    cluster_heartbeat_s: float = 5.0
    log_level: str = "info"
    access_log: bool = True

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'forumlive.db').resolve()}"

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def effective_origins(self) -> tuple[str, ...]:
        if self.allowed_origins:
            return self.allowed_origins
        base = self.effective_public_url
        origins = [base]
        # 127.0.0.1 and localhost reach the same local server; accept both in the default.
        if "//127.0.0.1:" in base:
            origins.append(base.replace("//127.0.0.1:", "//localhost:"))
        elif "//localhost:" in base:
            origins.append(base.replace("//localhost:", "//127.0.0.1:"))
        return tuple(origins)

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{PREFIX}{name}: expected true or false, got {value!r}")


def _int(name: str, value: str, minimum: int, maximum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{PREFIX}{name}: expected a whole number, got {value!r}") from None
    if not minimum <= number <= maximum:
        raise SettingsError(f"{PREFIX}{name}: must be between {minimum} and {maximum}, got {number}")
    return number


def _seconds(name: str, value: str, minimum: float, maximum: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(f"{PREFIX}{name}: expected a number of seconds, got {value!r}") from None
    if not minimum <= number <= maximum:
        raise SettingsError(f"{PREFIX}{name}: must be between {minimum} and {maximum}, got {number}")
    return number


def _list(name: str, value: str, schemes: tuple[str, ...] = ()) -> tuple[str, ...]:
    items = tuple(item.strip() for item in value.split(",") if item.strip())
    for item in items:
        if schemes and not item.startswith(schemes):
            raise SettingsError(f"{PREFIX}{name}: {item!r} must start with {' or '.join(schemes)}")
    return items


def _origins(value: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())
    for origin in origins:
        if not origin.startswith(("http://", "https://")):
            raise SettingsError(f"{PREFIX}ALLOWED_ORIGINS: {origin!r} must start with http:// or https://")
    return origins


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: str | Path | None = ".env",
    **overrides: object,
) -> Settings:
    """Read settings from the environment (winning) and a ``.env`` file, then apply ``overrides``.

    The secret key is read from ``FORUMLIVE_SECRET_KEY`` or from ``data_dir/secret_key``; when
    neither exists, a new one is generated and stored there (readable by the owner only).

    Raises:
        SettingsError: a value cannot be parsed.
    """
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    env = {k[len(PREFIX) :]: v for k, v in values.items() if k.startswith(PREFIX)}

    kwargs: dict[str, object] = {}
    if "DATA_DIR" in env:
        kwargs["data_dir"] = Path(env["DATA_DIR"])
    for key, attr in (("DATABASE_URL", "database_url"), ("REDIS_URL", "redis_url"), ("PUBLIC_URL", "public_url")):
        if env.get(key):
            kwargs[attr] = env[key]
    if "HOST" in env:
        kwargs["host"] = env["HOST"]
    if "PORT" in env:
        kwargs["port"] = _int("PORT", env["PORT"], 1, 65535)
    if "ALLOWED_ORIGINS" in env:
        kwargs["allowed_origins"] = _origins(env["ALLOWED_ORIGINS"])
    if "SECURE_COOKIES" in env:
        kwargs["secure_cookies"] = _bool("SECURE_COOKIES", env["SECURE_COOKIES"])
    if "SESSION_MAX_AGE_S" in env:
        kwargs["session_max_age_s"] = _int("SESSION_MAX_AGE_S", env["SESSION_MAX_AGE_S"], 60, 10**8)
    if "INVITATION_TTL_H" in env:
        kwargs["invitation_ttl_h"] = _int("INVITATION_TTL_H", env["INVITATION_TTL_H"], 1, 24 * 365)
    if env.get("CAPTIONS_MODEL"):
        kwargs["captions_model"] = env["CAPTIONS_MODEL"]
    if env.get("CAPTIONS_ENGINE", "").strip():
        kwargs["captions_engine"] = env["CAPTIONS_ENGINE"].strip().lower()
    if "STUN_URLS" in env:
        kwargs["stun_urls"] = _list("STUN_URLS", env["STUN_URLS"], ("stun:", "stuns:"))
    if "TURN_URLS" in env:
        kwargs["turn_urls"] = _list("TURN_URLS", env["TURN_URLS"], ("turn:", "turns:"))
    if env.get("TURN_SECRET"):
        kwargs["turn_secret"] = env["TURN_SECRET"]
    if "TURN_TTL_S" in env:
        kwargs["turn_ttl_s"] = _int("TURN_TTL_S", env["TURN_TTL_S"], 60, 7 * 24 * 3600)
    if "ICE_HOST_ADDRESSES" in env:
        kwargs["ice_host_addresses"] = _list("ICE_HOST_ADDRESSES", env["ICE_HOST_ADDRESSES"])
    if "LIVE_CAPTIONS" in env:
        kwargs["live_captions"] = _bool("LIVE_CAPTIONS", env["LIVE_CAPTIONS"])
    if env.get("ATTENDANCE_RETENTION_DAYS"):
        kwargs["attendance_retention_days"] = _int(
            "ATTENDANCE_RETENTION_DAYS", env["ATTENDANCE_RETENTION_DAYS"], 1, 36500
        )
    if "RECORD_AUDIO" in env:
        kwargs["record_audio"] = _bool("RECORD_AUDIO", env["RECORD_AUDIO"])
    if "CAPTIONS_TRANSLATE" in env:
        kwargs["captions_translate"] = _bool("CAPTIONS_TRANSLATE", env["CAPTIONS_TRANSLATE"])
    if "CAPTIONS_WORKERS" in env:
        kwargs["captions_workers"] = _int("CAPTIONS_WORKERS", env["CAPTIONS_WORKERS"], 1, 64)
    if "CAPTIONS_BATCH" in env:
        kwargs["captions_batch"] = _int("CAPTIONS_BATCH", env["CAPTIONS_BATCH"], 1, 64)
    if "CAPTIONS_STEP_S" in env:
        kwargs["captions_step_s"] = _seconds("CAPTIONS_STEP_S", env["CAPTIONS_STEP_S"], 0.2, 5.0)
    if "CAPTIONS_BEAM" in env:
        kwargs["captions_beam"] = _int("CAPTIONS_BEAM", env["CAPTIONS_BEAM"], 1, 10)
    if "CLUSTER_LEASE_S" in env:
        kwargs["cluster_lease_s"] = _seconds("CLUSTER_LEASE_S", env["CLUSTER_LEASE_S"], 0.5, 600)
    if "CLUSTER_HEARTBEAT_S" in env:
        kwargs["cluster_heartbeat_s"] = _seconds("CLUSTER_HEARTBEAT_S", env["CLUSTER_HEARTBEAT_S"], 0.1, 300)
    if env.get("LOG_LEVEL", "").strip():
        level = env["LOG_LEVEL"].strip().lower()
        if level not in LOG_LEVELS:
            raise SettingsError(f"{PREFIX}LOG_LEVEL: expected one of {', '.join(LOG_LEVELS)}, got {env['LOG_LEVEL']!r}")
        kwargs["log_level"] = level
    if "ACCESS_LOG" in env:
        kwargs["access_log"] = _bool("ACCESS_LOG", env["ACCESS_LOG"])
    if env.get("SECRET_KEY"):
        kwargs["secret_key"] = env["SECRET_KEY"]
    kwargs.update(overrides)
    settings = Settings(**kwargs)  # type: ignore[arg-type]
    if settings.captions_engine not in CAPTION_ENGINES:
        raise SettingsError(
            f"{PREFIX}CAPTIONS_ENGINE: expected {' or '.join(CAPTION_ENGINES)}, got {settings.captions_engine!r}"
        )
    if settings.turn_urls and not settings.turn_secret:
        raise SettingsError(f"{PREFIX}TURN_URLS needs {PREFIX}TURN_SECRET (the TURN server's auth secret)")
    if not settings.secret_key:
        settings = replace(settings, secret_key=stored_secret_key(settings.data_dir))
    return settings


def stored_secret_key(data_dir: Path) -> str:
    """Return the secret key kept in ``data_dir``, generating and storing it on first use."""
    path = data_dir / SECRET_KEY_FILE
    if path.is_file():
        key = path.read_text().strip()
        if key:
            return key
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(SECRET_KEY_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key
