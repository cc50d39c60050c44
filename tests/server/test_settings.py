"""Settings: environment, .env file, defaults and the generated secret key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from server.settings import SettingsError, load_settings


def test_defaults_use_sqlite_in_data_dir_and_in_process_bus(tmp_path: Path) -> None:
    """With nothing set, the database is a SQLite file under the data dir and Redis is unset."""
    settings = load_settings(environ={}, env_file=None, data_dir=tmp_path)
    assert settings.effective_database_url == f"sqlite:///{tmp_path.resolve()}/forumlive.db"
    assert settings.redis_url is None
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.effective_origins == ("http://127.0.0.1:8000", "http://localhost:8000")


def test_environment_wins_over_env_file(tmp_path: Path) -> None:
    """FORUMLIVE_* variables override the .env file, which overrides defaults."""
    env_file = tmp_path / ".env"
    env_file.write_text("FORUMLIVE_PORT=9001\nFORUMLIVE_HOST=0.0.0.0\nFORUMLIVE_REDIS_URL=redis://localhost:6379/0\n")
    settings = load_settings(
        environ={"FORUMLIVE_PORT": "9002", "FORUMLIVE_DATA_DIR": str(tmp_path / "d")}, env_file=env_file
    )
    assert settings.port == 9002
    assert settings.host == "0.0.0.0"
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.data_dir == tmp_path / "d"


def test_allowed_origins_are_parsed_exactly(tmp_path: Path) -> None:
    """A comma-separated origin list becomes a tuple without trailing slashes."""
    settings = load_settings(
        environ={"FORUMLIVE_ALLOWED_ORIGINS": "https://forum.example.org/, https://b.example.org"},
        env_file=None,
        data_dir=tmp_path,
    )
    assert settings.effective_origins == ("https://forum.example.org", "https://b.example.org")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("FORUMLIVE_PORT", "eighty", "whole number"),
        ("FORUMLIVE_PORT", "70000", "between"),
        ("FORUMLIVE_SECURE_COOKIES", "maybe", "true or false"),
        ("FORUMLIVE_ALLOWED_ORIGINS", "forum.example.org", "http"),
        ("FORUMLIVE_STUN_URLS", "stun.example.org:3478", "stun:"),
        ("FORUMLIVE_TURN_URLS", "turn:turn.example.org", "TURN_SECRET"),
        ("FORUMLIVE_TURN_TTL_S", "5", "between"),
        ("FORUMLIVE_RECORD_AUDIO", "perhaps", "true or false"),
        ("FORUMLIVE_CAPTIONS_ENGINE", "whisper.cpp", "faster-whisper or openai-whisper"),
        ("FORUMLIVE_CAPTIONS_STEP_S", "0.05", "between"),
        ("FORUMLIVE_CAPTIONS_STEP_S", "soon", "number of seconds"),
        ("FORUMLIVE_CAPTIONS_BEAM", "0", "between"),
        ("FORUMLIVE_LOG_LEVEL", "loud", "expected one of"),
        ("FORUMLIVE_ACCESS_LOG", "sometimes", "true or false"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(tmp_path: Path, name: str, value: str, message: str) -> None:
    """A value that cannot be used raises SettingsError naming the variable."""
    with pytest.raises(SettingsError, match=message) as info:
        load_settings(environ={name: value}, env_file=None, data_dir=tmp_path)
    assert name in str(info.value)


def test_captions_engine_defaults_to_faster_whisper(tmp_path: Path) -> None:
    """FORUMLIVE_CAPTIONS_ENGINE picks openai-whisper (any case, spaces trimmed); unset or empty: faster-whisper."""
    assert load_settings(environ={}, env_file=None, data_dir=tmp_path).captions_engine == "faster-whisper"
    empty = load_settings(environ={"FORUMLIVE_CAPTIONS_ENGINE": ""}, env_file=None, data_dir=tmp_path)
    assert empty.captions_engine == "faster-whisper"
    chosen = load_settings(environ={"FORUMLIVE_CAPTIONS_ENGINE": " OpenAI-Whisper "}, env_file=None, data_dir=tmp_path)
    assert chosen.captions_engine == "openai-whisper"


def test_caption_steps_and_beam_reach_the_caption_service(tmp_path: Path) -> None:
    """FORUMLIVE_CAPTIONS_STEP_S and _BEAM become the streams' CaptionOptions (defaults 0.5 s and 3)."""
    from server.app import create_app

    default = load_settings(environ={}, env_file=None, data_dir=tmp_path)
    assert (default.captions_step_s, default.captions_beam) == (0.5, 3)
    chosen = load_settings(
        environ={"FORUMLIVE_CAPTIONS_STEP_S": "0.75", "FORUMLIVE_CAPTIONS_BEAM": "1"}, env_file=None, data_dir=tmp_path
    )
    options = create_app(chosen).state.captions.options
    assert (options.step_s, options.beam_size) == (0.75, 1)


def test_secret_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    """The first run stores a random key (mode 600); later runs read the same key."""
    first = load_settings(environ={}, env_file=None, data_dir=tmp_path)
    second = load_settings(environ={}, env_file=None, data_dir=tmp_path)
    key_file = tmp_path / "secret_key"
    assert len(first.secret_key) >= 40
    assert first.secret_key == second.secret_key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    other = load_settings(environ={}, env_file=None, data_dir=tmp_path / "other")
    assert other.secret_key != first.secret_key


def test_secret_key_from_environment_is_not_stored(tmp_path: Path) -> None:
    """A key given in the environment is used and nothing is written."""
    settings = load_settings(environ={"FORUMLIVE_SECRET_KEY": "k" * 40}, env_file=None, data_dir=tmp_path)
    assert settings.secret_key == "k" * 40
    assert not (tmp_path / "secret_key").exists()


def test_importing_the_settings_module_reads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing reads the environment at import time: reloading with a broken env still works."""
    import importlib

    import server.settings

    monkeypatch.setenv("FORUMLIVE_PORT", "not-a-number")
    importlib.reload(server.settings)


def test_media_settings_are_read(tmp_path: Path) -> None:
    settings = load_settings(
        environ={
            "FORUMLIVE_STUN_URLS": "stun:stun.example.org:3478",
            "FORUMLIVE_TURN_URLS": "turn:turn.example.org:3478?transport=udp, turns:turn.example.org:5349",
            "FORUMLIVE_TURN_SECRET": "shared",
            "FORUMLIVE_ICE_HOST_ADDRESSES": "10.0.0.5",
            "FORUMLIVE_LIVE_CAPTIONS": "false",
        },
        env_file=None,
        data_dir=tmp_path,
    )
    assert settings.stun_urls == ("stun:stun.example.org:3478",)
    assert settings.turn_urls == ("turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349")
    assert settings.ice_host_addresses == ("10.0.0.5",)
    assert settings.live_captions is False and settings.record_audio is False


def test_every_setting_is_documented() -> None:
    """docs/configuration.md has a row for each settings field that is read from the environment."""
    from dataclasses import fields

    from server.settings import Settings

    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    missing = [f.name for f in fields(Settings) if f"FORUMLIVE_{f.name.upper()}" not in doc]
    assert missing == []
