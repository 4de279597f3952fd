"""Server configuration: finding the TOML file, reading it and validating every key.

Everything the rest of the server knows about its settings comes from the frozen `Config`
built here. Any problem is reported as a `ConfigError` whose message is one line naming the
file and the offending key, so the command line can print it as it is and exit.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chorus_presence.xmpp.jid import JID, JIDError, nameprep, nodeprep

ENV_VAR = "CHORUS_CONFIG"
DEFAULT_PATH = Path("config/chorus.toml")
LOG_LEVELS = ("debug", "info", "warning", "error")
OFFLINE_POLICIES = ("bounce", "store")
STORAGE_BACKENDS = ("sqlite", "postgresql")
# What `storage.url` may start with: the schemes libpq and asyncpg read.
POSTGRESQL_SCHEMES = ("postgresql", "postgres")
# What `cluster.redis` may start with: the schemes redis-py's `from_url` reads.
REDIS_SCHEMES = ("redis", "rediss", "unix")
# A node's name goes into Redis keys and channel names, so it stays a plain token.
_NODE_NAME = re.compile(r"[A-Za-z0-9._-]+")
_URL_PASSWORD_PARAMETER = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)
MIN_SCRAM_ITERATIONS = 4096
# scramp refuses more than this, so a larger value would only fail at the first login.
MAX_SCRAM_ITERATIONS = 10_000_000


class ConfigError(Exception):
    """A configuration problem; the message is a single line fit to show to the operator."""


@dataclass(frozen=True)
class C2SConfig:
    host: str
    port: int


@dataclass(frozen=True)
class StorageConfig:
    # The SQLite file, used by the "sqlite" backend.
    database: Path
    # Which implementation of the storage interfaces to open; one of STORAGE_BACKENDS.
    backend: str = "sqlite"
    # The PostgreSQL connection URL (postgresql://user[:password]@host[:port]/database), used
    # by the "postgresql" backend; required with it.
    url: str | None = None


@dataclass(frozen=True)
class TLSConfig:
    required: bool
    cert: Path
    key: Path


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Names an operator or a mail system would expect to be the server's own.
DEFAULT_RESERVED = ("admin", "root", "postmaster", "abuse", "support")
# Loopback, as Prosody's registration_whitelist: local tools (and the tests) register many.
DEFAULT_EXEMPT: tuple[str, ...] = ()


@dataclass(frozen=True)
class RegistrationConfig:
    open: bool
    # Localparts never registrable in-band, nodeprep-normalised; admins' names are too.
    reserved: tuple[str, ...] = DEFAULT_RESERVED
    # In-band registration attempts allowed from one address in any hour.
    per_address_per_hour: int = 5
    # Addresses and networks the per-address limit does not apply to.
    exempt_addresses: tuple[IPNetwork, ...] = tuple(
        ipaddress.ip_network(text) for text in DEFAULT_EXEMPT
    )


@dataclass(frozen=True)
class AuthConfig:
    scram_iterations: int
    max_failures: int
    # Seconds a sign-in's token stays good after it is issued (each use issues the next).
    sign_in_lifetime: float = 2592000.0


@dataclass(frozen=True)
class LimitsConfig:
    max_stanza_bytes: int
    max_stanza_bytes_preauth: int
    max_depth: int
    max_attributes: int
    header_timeout: float
    auth_timeout: float
    bytes_per_second: int
    burst_bytes: int
    connections_per_address: int
    connection_rate: float
    auth_failures: int
    auth_failure_window: float
    subscriptions_per_minute: int
    # Failed logins one account may have within auth_failure_window, from all addresses: a
    # ceiling above auth_failures (per address), so that one address cannot lock it.
    auth_account_failures: int = 50
    # After the n-th failure in a row for one (account, address), that pair waits
    # auth_backoff_base * 2**(n - 1) seconds before its next attempt, at most auth_backoff_max.
    auth_backoff_base: float = 1.0
    auth_backoff_max: float = 300.0
    # Resources one account may have bound at once; one more bind gets resource-constraint.
    resources_per_account: int = 50
    # Client connections open at once on the whole server; `serve` lowers it to fit the
    # process's descriptor limit.
    max_connections: int = 10000


@dataclass(frozen=True)
class WebConfig:
    enabled: bool
    host: str
    port: int
    # Treat WebSocket sessions as encrypted: true when a TLS proxy sits in front, or on loopback.
    consider_secure: bool


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool
    host: str
    port: int


@dataclass(frozen=True)
class LivenessConfig:
    ping_after: float
    ping_timeout: float
    send_buffer: int
    resume_timeout: float
    resume_grace: float
    max_unacked: int


@dataclass(frozen=True)
class MessagesConfig:
    # "bounce": service-unavailable to a sender who may see the user's presence, nothing to
    # anyone else; "store": kept until the next login (XEP-0160).
    offline: str
    max_offline: int
    # The most bytes of stored messages one user may have waiting, whoever sent them.
    max_offline_bytes: int


@dataclass(frozen=True)
class LoggingConfig:
    level: str


@dataclass(frozen=True)
class AdminConfig:
    # The Unix socket the admin command line talks to the running server over.
    socket: Path


@dataclass(frozen=True)
class ClusterConfig:
    # Off: one node, its live state in memory. On: nodes share the PostgreSQL database and
    # keep who is where in Redis.
    enabled: bool = False
    # The Redis every node of the cluster uses (redis://, rediss:// or unix://).
    redis: str = "redis://127.0.0.1:6379/0"
    # This node's name, unique in the cluster; required when enabled.
    node: str = ""
    # Seconds between this node's heartbeats.
    heartbeat: float = 1.0
    # Seconds of silence after which the other nodes declare a node dead; above heartbeat.
    node_timeout: float = 5.0


@dataclass(frozen=True)
class Config:
    domain: str
    # Bare JIDs of the accounts allowed to administer the server over XMPP.
    admins: tuple[str, ...]
    c2s: C2SConfig
    storage: StorageConfig
    tls: TLSConfig
    registration: RegistrationConfig
    auth: AuthConfig
    limits: LimitsConfig
    liveness: LivenessConfig
    metrics: MetricsConfig
    web: WebConfig
    messages: MessagesConfig
    logging: LoggingConfig
    admin: AdminConfig
    cluster: ClusterConfig = ClusterConfig()
    # The file the settings came from, for error messages; None when built from defaults.
    source: Path | None = None

    @classmethod
    def defaults(cls, base_dir: Path) -> Config:
        """Every setting at its default, with relative paths resolved against `base_dir`."""
        return _build({}, base_dir.resolve(), None)


def resolve_config_path(cli_value: str | None) -> Path:
    """The `--config` value, else `$CHORUS_CONFIG`, else `config/chorus.toml` here."""
    chosen = cli_value or os.environ.get(ENV_VAR)
    return Path(chosen).expanduser() if chosen else DEFAULT_PATH


def load_config(path: Path) -> Config:
    """Read and validate the TOML file at `path`."""
    path = path.absolute()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"Config {path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"Config {path}: cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"Config {path}: not valid UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Config {path}: invalid TOML: {exc}") from None
    return _build(data, path.resolve().parent, path)


def check_files(config: Config) -> None:
    """Fail early, naming the key, when the TLS certificate or key file is missing."""
    for key, file in (("tls.cert", config.tls.cert), ("tls.key", config.tls.key)):
        if not file.is_file():
            raise ConfigError(f"{_prefix(config.source)}: '{key}' file not found: {file}")


def _prefix(source: Path | None) -> str:
    return f"Config {source}" if source else "Config"


class _Table:
    """Typed access to one TOML table; keys are consumed so leftovers can be reported."""

    def __init__(self, data: dict[str, Any], name: str, reader: _Reader) -> None:
        self._data = dict(data)
        self._name = name
        self._reader = reader

    def _key(self, key: str) -> str:
        return f"{self._name}.{key}" if self._name else key

    def _fail(self, key: str, problem: str) -> ConfigError:
        return self._reader.error(f"'{self._key(key)}' {problem}")

    def table(self, key: str) -> _Table:
        value = self._data.pop(key, {})
        if not isinstance(value, dict):
            raise self._fail(key, "must be a table")
        return _Table(value, self._key(key), self._reader)

    def string(self, key: str, default: str) -> str:
        value = self._data.pop(key, default)
        if not isinstance(value, str):
            raise self._fail(key, "must be a string")
        if not value:
            raise self._fail(key, "must not be empty")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._data.pop(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "must be a boolean")
        return value

    def integer(self, key: str, default: int, minimum: int, maximum: int | None = None) -> int:
        value = self._data.pop(key, default)
        # bool is a subclass of int, but `port = true` is a mistake, not 1.
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._fail(key, "must be an integer")
        if maximum is not None and not minimum <= value <= maximum:
            raise self._fail(key, f"must be between {minimum} and {maximum}")
        if value < minimum:
            raise self._fail(key, f"must be at least {minimum}")
        return value

    def seconds(self, key: str, default: float) -> float:
        value = self._data.pop(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self._fail(key, "must be a number")
        if not math.isfinite(value) or value <= 0:
            raise self._fail(key, "must be a positive number of seconds")
        return float(value)

    def path(self, key: str, default: str) -> Path:
        value = Path(self.string(key, default)).expanduser()
        return (self._reader.base_dir / value).resolve()

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(key, default).lower()
        if value not in choices:
            raise self._fail(key, f"must be one of {', '.join(choices)}")
        return value

    def jid_list(self, key: str) -> tuple[str, ...]:
        """A list of bare JIDs, normalised."""
        value = self._data.pop(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "must be a list of strings")
        jids = []
        for text in value:
            try:
                jid = JID.parse(text)
            except JIDError:
                jid = None
            if jid is None or jid.local is None or jid.resource is not None:
                raise self._fail(key, f"must hold bare JIDs such as user@domain, not {text!r}")
            jids.append(str(jid))
        return tuple(jids)

    def finish(self) -> None:
        """Reject whatever was not read: a misspelt key must not silently become a default."""
        for key, value in self._data.items():
            kind = "table" if isinstance(value, dict) else "key"
            raise self._reader.error(f"unknown {kind} '{self._key(key)}'")


class _Reader:
    def __init__(self, base_dir: Path, source: Path | None) -> None:
        self.base_dir = base_dir
        self.source = source

    def error(self, problem: str) -> ConfigError:
        return ConfigError(f"{_prefix(self.source)}: {problem}")


def _build(data: dict[str, Any], base_dir: Path, source: Path | None) -> Config:
    reader = _Reader(base_dir, source)
    root = _Table(data, "", reader)
    domain = _domain(root, reader)
    admins = root.jid_list("admins")

    with _section(root, "c2s") as t:
        c2s = C2SConfig(
            host=t.string("host", "127.0.0.1"),
            port=t.integer("port", 5222, minimum=0, maximum=65535),
        )
    with _section(root, "storage") as t:
        backend = t.choice("backend", "sqlite", STORAGE_BACKENDS)
        storage = StorageConfig(
            database=t.path("database", "../data/chorus.db"),
            backend=backend,
            url=_storage_url(t, backend),
        )
    with _section(root, "tls") as t:
        tls = TLSConfig(
            required=t.boolean("required", True),
            cert=t.path("cert", "../data/tls/cert.pem"),
            key=t.path("key", "../data/tls/key.pem"),
        )
    with _section(root, "registration") as t:
        registration = RegistrationConfig(
            open=t.boolean("open", False),
            reserved=_localparts(t, "reserved", DEFAULT_RESERVED),
            per_address_per_hour=t.integer("per_address_per_hour", 5, minimum=1),
            exempt_addresses=_networks(t, "exempt_addresses", DEFAULT_EXEMPT),
        )
    with _section(root, "auth") as t:
        auth = AuthConfig(
            scram_iterations=t.integer(
                "scram_iterations",
                10000,
                minimum=MIN_SCRAM_ITERATIONS,
                maximum=MAX_SCRAM_ITERATIONS,
            ),
            max_failures=t.integer("max_failures", 3, minimum=1),
            sign_in_lifetime=t.seconds("sign_in_lifetime", 2592000.0),
        )
    with _section(root, "limits") as t:
        limits = LimitsConfig(
            max_stanza_bytes=t.integer("max_stanza_bytes", 262144, minimum=1),
            max_stanza_bytes_preauth=t.integer("max_stanza_bytes_preauth", 16384, minimum=1),
            max_depth=t.integer("max_depth", 32, minimum=1),
            max_attributes=t.integer("max_attributes", 64, minimum=1),
            header_timeout=t.seconds("header_timeout", 10.0),
            auth_timeout=t.seconds("auth_timeout", 60.0),
            bytes_per_second=t.integer("bytes_per_second", 102400, minimum=1024),
            burst_bytes=t.integer("burst_bytes", 524288, minimum=1024),
            connections_per_address=t.integer("connections_per_address", 100, minimum=1),
            connection_rate=t.seconds("connection_rate", 20.0),
            auth_failures=t.integer("auth_failures", 10, minimum=1),
            auth_failure_window=t.seconds("auth_failure_window", 300.0),
            auth_account_failures=t.integer("auth_account_failures", 50, minimum=1),
            auth_backoff_base=t.seconds("auth_backoff_base", 1.0),
            auth_backoff_max=t.seconds("auth_backoff_max", 300.0),
            subscriptions_per_minute=t.integer("subscriptions_per_minute", 60, minimum=1),
            resources_per_account=t.integer("resources_per_account", 50, minimum=1),
            max_connections=t.integer("max_connections", 10000, minimum=1),
        )
    if limits.max_stanza_bytes_preauth > limits.max_stanza_bytes:
        raise reader.error(
            "'limits.max_stanza_bytes_preauth' must not exceed 'limits.max_stanza_bytes'"
        )
    if limits.auth_backoff_max < limits.auth_backoff_base:
        raise reader.error(
            "'limits.auth_backoff_max' must not be less than 'limits.auth_backoff_base'"
        )
    with _section(root, "liveness") as t:
        liveness = LivenessConfig(
            ping_after=t.seconds("ping_after", 60.0),
            ping_timeout=t.seconds("ping_timeout", 30.0),
            send_buffer=t.integer("send_buffer", 1048576, minimum=1024),
            resume_timeout=t.seconds("resume_timeout", 300.0),
            resume_grace=t.seconds("resume_grace", 10.0),
            max_unacked=t.integer("max_unacked", 1000, minimum=1),
        )
    with _section(root, "metrics") as t:
        metrics = MetricsConfig(
            enabled=t.boolean("enabled", False),
            host=t.string("host", "127.0.0.1"),
            port=t.integer("port", 9105, minimum=0, maximum=65535),
        )
    with _section(root, "web") as t:
        web = WebConfig(
            enabled=t.boolean("enabled", False),
            host=t.string("host", "127.0.0.1"),
            port=t.integer("port", 5280, minimum=0, maximum=65535),
            consider_secure=t.boolean("consider_secure", True),
        )
    with _section(root, "messages") as t:
        messages = MessagesConfig(
            offline=t.choice("offline", "bounce", OFFLINE_POLICIES),
            max_offline=t.integer("max_offline", 1000, minimum=1),
            max_offline_bytes=t.integer("max_offline_bytes", 1048576, minimum=1),
        )
    with _section(root, "logging") as t:
        logging = LoggingConfig(level=t.choice("level", "info", LOG_LEVELS))
    with _section(root, "admin") as t:
        admin = AdminConfig(socket=t.path("socket", "../data/admin.sock"))
    with _section(root, "cluster") as t:
        cluster = _cluster(t, storage)
    root.finish()

    return Config(
        domain=domain,
        admins=admins,
        c2s=c2s,
        storage=storage,
        tls=tls,
        registration=registration,
        auth=auth,
        limits=limits,
        liveness=liveness,
        metrics=metrics,
        web=web,
        messages=messages,
        logging=logging,
        admin=admin,
        cluster=cluster,
        source=source,
    )


@contextmanager
def _section(root: _Table, name: str) -> Iterator[_Table]:
    table = root.table(name)
    yield table
    table.finish()


def _domain(root: _Table, reader: _Reader) -> str:
    domain = root.string("domain", "localhost")
    # The same preparation as every JID's domainpart, so routing compares like with like.
    try:
        return nameprep(domain)
    except JIDError:
        raise reader.error(f"'domain' must be a valid domain name, not {domain!r}") from None


def _storage_url(table: _Table, backend: str) -> str | None:
    """`storage.url`: a postgresql:// URL, required by the postgresql backend. Only its form is
    checked here; whether the database answers is known when storage opens."""
    if "url" not in table._data:
        if backend == "postgresql":
            raise table._fail("url", 'is required with backend = "postgresql"')
        return None
    url = table.string("url", "")
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in POSTGRESQL_SCHEMES or not rest or any(c.isspace() for c in url):
        raise table._fail(
            "url",
            f"must be a URL such as postgresql://user@host:5432/database, not {display_url(url)!r}",
        )
    return url


def _cluster(table: _Table, storage: StorageConfig) -> ClusterConfig:
    enabled = table.boolean("enabled", False)
    node = table.string("node", ClusterConfig.node) if "node" in table._data else ""
    if node and not _NODE_NAME.fullmatch(node):
        raise table._fail("node", f"must hold only letters, digits, '-', '_' and '.', not {node!r}")
    redis = table.string("redis", ClusterConfig.redis)
    scheme, _, rest = redis.partition("://")
    if scheme.lower() not in REDIS_SCHEMES or not rest or any(c.isspace() for c in redis):
        raise table._fail(
            "redis",
            "must be a URL such as redis://host:6379/0 (or rediss://, unix://), "
            f"not {display_url(redis)!r}",
        )
    heartbeat = table.seconds("heartbeat", ClusterConfig.heartbeat)
    node_timeout = table.seconds("node_timeout", ClusterConfig.node_timeout)
    if node_timeout <= heartbeat:
        raise table._fail("node_timeout", "must be greater than 'cluster.heartbeat'")
    if enabled and not node:
        raise table._fail(
            "node", "is required with enabled = true: a name unique to this node, such as node-a"
        )
    if enabled and storage.backend != "postgresql":
        raise table._fail(
            "enabled",
            'requires storage.backend = "postgresql": every node must share one database',
        )
    return ClusterConfig(enabled, redis, node, heartbeat, node_timeout)


def display_url(url: str) -> str:
    """The URL with any password (before the host, or as a `password` parameter) hidden, fit
    for messages and logs."""
    url = _URL_PASSWORD_PARAMETER.sub(r"\1***", url)
    scheme, separator, rest = url.partition("://")
    authority, slash, tail = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not separator or not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}{separator}{user}:***{at}{host}{slash}{tail}"


def _string_list(table: _Table, key: str, default: tuple[str, ...]) -> list[str]:
    value = table._data.pop(key, list(default))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise table._fail(key, "must be a list of strings")
    return value


def _localparts(table: _Table, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A list of usernames, normalised as accounts' are, so 'Admin' reserves 'admin'."""
    names = []
    for text in _string_list(table, key, default):
        try:
            names.append(nodeprep(text))
        except JIDError:
            raise table._fail(key, f"must hold usernames (JID localparts), not {text!r}") from None
    return tuple(dict.fromkeys(names))


def _networks(table: _Table, key: str, default: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """A list of IP addresses or networks (CIDR, such as 10.0.0.0/8)."""
    networks = []
    for text in _string_list(table, key, default):
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise table._fail(key, f"must hold IP addresses or networks, not {text!r}") from None
    return tuple(networks)
