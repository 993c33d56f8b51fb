from pathlib import Path

import pytest

from cryolive.config import load_settings


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CRYOLIVE_WEB__PORT", "8123")
    monkeypatch.setenv("CRYOLIVE_DATA_ROOT", str(tmp_path))
    settings = load_settings()
    assert settings.web.port == 8123
    assert settings.database == f"sqlite:///{tmp_path.resolve() / 'cryolive.sqlite'}"
    assert settings.embedded_broker


def test_toml_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text(
        'broker_url = "amqp://guest:guest@127.0.0.1:5672//"\n[web]\nport = 9000\nhost = "0.0.0.0"\n'
    )
    monkeypatch.setenv("CRYOLIVE_WEB__PORT", "9001")
    settings = load_settings(config)
    assert settings.broker_url.startswith("amqp://")
    assert not settings.embedded_broker
    assert settings.web.host == "0.0.0.0"
    assert settings.web.port == 9001


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="config_file"):
        load_settings(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[web]\nport = 70000\n")
    with pytest.raises(ValueError, match="port"):
        load_settings(bad)
