"""The `[cluster]` section: its defaults, what it requires when enabled and every bad value
reported on one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from chorus_presence.config import ClusterConfig, ConfigError, load_config

POSTGRESQL = (
    '[storage]\nbackend = "postgresql"\nurl = "postgresql://chorus@127.0.0.1:5432/chorus"\n'
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chorus.toml"
    path.write_text(text, encoding="utf-8")
    return path


def cluster(tmp_path: Path, keys: str, storage: str = POSTGRESQL) -> ClusterConfig:
    return load_config(write(tmp_path, f"{storage}[cluster]\n{keys}\n")).cluster


def error_for(tmp_path: Path, keys: str, storage: str = POSTGRESQL) -> str:
    path = write(tmp_path, f"{storage}[cluster]\n{keys}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"Config {path}: ")
    assert "\n" not in message
    return message.removeprefix(f"Config {path}: ")


def test_cluster_is_off_by_default(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")).cluster == ClusterConfig(
        enabled=False,
        redis="redis://127.0.0.1:6379/0",
        node="",
        heartbeat=1.0,
        node_timeout=5.0,
    )


def test_every_key_is_read(tmp_path: Path) -> None:
    config = cluster(
        tmp_path,
        'enabled = true\nredis = "redis://10.0.0.5:6380/2"\nnode = "node-a"\n'
        "heartbeat = 0.2\nnode_timeout = 1",
    )
    assert config == ClusterConfig(True, "redis://10.0.0.5:6380/2", "node-a", 0.2, 1.0)


@pytest.mark.parametrize(
    "url",
    [
        "rediss://:secret@redis.example.test:6380/0",
        "unix:///run/redis/redis.sock?db=1",
        "REDIS://127.0.0.1",
    ],
)
def test_redis_url_schemes_accepted(tmp_path: Path, url: str) -> None:
    config = cluster(tmp_path, f'enabled = true\nnode = "n1"\nredis = "{url}"')
    assert config.redis == url


@pytest.mark.parametrize("node", ["node-a", "Node_2", "eu.west.1", "7"])
def test_node_names_accepted(tmp_path: Path, node: str) -> None:
    assert cluster(tmp_path, f'enabled = true\nnode = "{node}"').node == node


def test_a_disabled_cluster_needs_no_node_nor_postgresql(tmp_path: Path) -> None:
    config = cluster(tmp_path, "enabled = false\nheartbeat = 2.0\nnode_timeout = 3.0", storage="")
    assert config == ClusterConfig(False, "redis://127.0.0.1:6379/0", "", 2.0, 3.0)


def test_enabled_needs_postgresql(tmp_path: Path) -> None:
    message = error_for(tmp_path, 'enabled = true\nnode = "node-a"', storage="")
    assert message == (
        "'cluster.enabled' requires storage.backend = \"postgresql\": "
        "every node must share one database"
    )


def test_enabled_needs_a_node_name(tmp_path: Path) -> None:
    assert error_for(tmp_path, "enabled = true") == (
        "'cluster.node' is required with enabled = true: a name unique to this node, such as node-a"
    )


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ("enabled = 1", "'cluster.enabled' must be a boolean"),
        ('enabled = true\nnode = ""', "'cluster.node' must not be empty"),
        ("enabled = true\nnode = 3", "'cluster.node' must be a string"),
        (
            'enabled = true\nnode = "node a"',
            "'cluster.node' must hold only letters, digits, '-', '_' and '.', not 'node a'",
        ),
        (
            'enabled = true\nnode = "a/b"',
            "'cluster.node' must hold only letters, digits, '-', '_' and '.', not 'a/b'",
        ),
        (
            'node = "nœud"',
            "'cluster.node' must hold only letters, digits, '-', '_' and '.', not 'nœud'",
        ),
        (
            'redis = "http://127.0.0.1:6379"',
            "'cluster.redis' must be a URL such as redis://host:6379/0 "
            "(or rediss://, unix://), not 'http://127.0.0.1:6379'",
        ),
        (
            'redis = "127.0.0.1:6379"',
            "'cluster.redis' must be a URL such as redis://host:6379/0 "
            "(or rediss://, unix://), not '127.0.0.1:6379'",
        ),
        (
            'redis = "redis://"',
            "'cluster.redis' must be a URL such as redis://host:6379/0 "
            "(or rediss://, unix://), not 'redis://'",
        ),
        (
            'redis = "redis://:hunter2@exa mple:6379"',
            "'cluster.redis' must be a URL such as redis://host:6379/0 "
            "(or rediss://, unix://), not 'redis://:***@exa mple:6379'",
        ),
        ('redis = ""', "'cluster.redis' must not be empty"),
        ("heartbeat = 0", "'cluster.heartbeat' must be a positive number of seconds"),
        ("heartbeat = -1.0", "'cluster.heartbeat' must be a positive number of seconds"),
        ('heartbeat = "1s"', "'cluster.heartbeat' must be a number"),
        ("node_timeout = 0", "'cluster.node_timeout' must be a positive number of seconds"),
        (
            "heartbeat = 2.0\nnode_timeout = 2.0",
            "'cluster.node_timeout' must be greater than 'cluster.heartbeat'",
        ),
        (
            "node_timeout = 0.5",
            "'cluster.node_timeout' must be greater than 'cluster.heartbeat'",
        ),
        ("nodes = 2", "unknown key 'cluster.nodes'"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, keys: str, expected: str) -> None:
    assert error_for(tmp_path, keys) == expected


def test_cluster_must_be_a_table(tmp_path: Path) -> None:
    path = write(tmp_path, "cluster = true\n")
    with pytest.raises(ConfigError, match=r": 'cluster' must be a table$"):
        load_config(path)
