"""Loading, validating and locating the TOML configuration."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from chorus_presence.config import (
    Config,
    ConfigError,
    check_files,
    load_config,
    resolve_config_path,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chorus.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"Config {path}: ")
    assert "\n" not in message
    return message.removeprefix(f"Config {path}: ")


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.domain == "localhost"
    assert (config.c2s.host, config.c2s.port) == ("127.0.0.1", 5222)
    assert config.tls.required is True
    assert config.registration.open is False
    assert config.auth.scram_iterations == 10000
    assert config.auth.max_failures == 3
    limits = config.limits
    assert (limits.max_stanza_bytes, limits.max_stanza_bytes_preauth) == (262144, 16384)
    assert (limits.max_depth, limits.max_attributes) == (32, 64)
    assert (limits.header_timeout, limits.auth_timeout) == (10.0, 60.0)
    assert config.logging.level == "info"
    assert config.source == tmp_path / "chorus.toml"


def test_defaults_match_an_empty_file(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, ""))
    assert Config.defaults(tmp_path) == dataclasses.replace(loaded, source=None)


def test_shipped_file_lists_the_defaults() -> None:
    path = REPO_ROOT / "config" / "chorus.toml"
    loaded = load_config(path)
    assert dataclasses.replace(loaded, source=None) == Config.defaults(path.parent)
    assert loaded.storage.database == REPO_ROOT / "data" / "chorus.db"


def test_relative_paths_resolve_against_the_config_directory(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            '[storage]\ndatabase = "db/x.db"\n[tls]\ncert = "../certs/c.pem"\nkey = "/abs/k.pem"\n',
        )
    )
    assert config.storage.database == tmp_path / "db" / "x.db"
    assert config.tls.cert == tmp_path.parent / "certs" / "c.pem"
    assert config.tls.key == Path("/abs/k.pem")
    assert config.storage.database.is_absolute()


def test_values_are_read(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            'domain = "Example.ORG"\n'
            "[c2s]\nport = 0\n"
            "[tls]\nrequired = false\n"
            "[limits]\nheader_timeout = 3\n"
            '[logging]\nlevel = "debug"\n',
        )
    )
    assert config.domain == "example.org"
    assert config.c2s.port == 0
    assert config.tls.required is False
    assert config.limits.header_timeout == 3.0
    assert isinstance(config.limits.header_timeout, float)
    assert config.logging.level == "debug"


def test_configs_are_easy_to_vary(tmp_path: Path) -> None:
    config = Config.defaults(tmp_path)
    changed = dataclasses.replace(config, c2s=dataclasses.replace(config.c2s, port=0))
    assert changed.c2s.port == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.c2s.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[c2s]\nprt = 1\n", "unknown key 'c2s.prt'"),
        ("colour = 1\n", "unknown key 'colour'"),
        ("[bogus]\nx = 1\n", "unknown table 'bogus'"),
        ("[c2s.extra]\nx = 1\n", "unknown table 'c2s.extra'"),
        ('[c2s]\nport = "5222"\n', "'c2s.port' must be an integer"),
        ("[c2s]\nport = true\n", "'c2s.port' must be an integer"),
        ("[c2s]\nport = 5222.0\n", "'c2s.port' must be an integer"),
        ("[c2s]\nport = 70000\n", "'c2s.port' must be between 0 and 65535"),
        ("[c2s]\nhost = 1\n", "'c2s.host' must be a string"),
        ('[tls]\nrequired = "yes"\n', "'tls.required' must be a boolean"),
        ("[tls]\nrequired = 1\n", "'tls.required' must be a boolean"),
        ("[storage]\ndatabase = 3\n", "'storage.database' must be a string"),
        ("c2s = 5\n", "'c2s' must be a table"),
        ("[auth]\nscram_iterations = 4095\n", "'auth.scram_iterations' must be between 4096"),
        ("[auth]\nmax_failures = 0\n", "'auth.max_failures' must be at least 1"),
        ("[limits]\nmax_depth = false\n", "'limits.max_depth' must be an integer"),
        ("[limits]\nauth_timeout = 0\n", "'limits.auth_timeout' must be a positive number"),
        ("[limits]\nauth_timeout = true\n", "'limits.auth_timeout' must be a number"),
        ("[limits]\nauth_timeout = nan\n", "'limits.auth_timeout' must be a positive number"),
        (
            "[limits]\nmax_stanza_bytes = 100\n",
            "'limits.max_stanza_bytes_preauth' must not exceed 'limits.max_stanza_bytes'",
        ),
        ('[logging]\nlevel = "loud"\n', "'logging.level' must be one of debug, info"),
        ('domain = "bad domain"\n', "'domain' must be a valid domain name"),
        ('domain = "-x.example"\n', "'domain' must be a valid domain name"),
        ('domain = ""\n', "'domain' must not be empty"),
    ],
)
def test_invalid_values_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    assert error_for(tmp_path, text).startswith(expected)


def test_bad_toml_is_one_line(tmp_path: Path) -> None:
    assert error_for(tmp_path, "[c2s\nport = 1\n").startswith("invalid TOML: ")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"^Config .*nope\.toml: file not found$"):
        load_config(path)


def test_config_path_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHORUS_CONFIG", raising=False)
    assert resolve_config_path(None) == Path("config/chorus.toml")
    monkeypatch.setenv("CHORUS_CONFIG", "/etc/chorus/env.toml")
    assert resolve_config_path(None) == Path("/etc/chorus/env.toml")
    assert resolve_config_path("/srv/cli.toml") == Path("/srv/cli.toml")


def test_check_files_names_the_missing_key(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[tls]\ncert = "c.pem"\nkey = "k.pem"\n'))
    with pytest.raises(ConfigError, match=r"'tls\.cert' file not found"):
        check_files(config)
    (tmp_path / "c.pem").write_text("cert")
    with pytest.raises(ConfigError, match=r"'tls\.key' file not found"):
        check_files(config)
    (tmp_path / "k.pem").write_text("key")
    check_files(config)
