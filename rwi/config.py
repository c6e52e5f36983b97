"""Service configuration: one TOML file, overridden by environment variables.

Read once at start-up by ``rwi.cli`` and handed to every part of the service. An unknown
key or a bad value stops start-up with a message naming the key and the file, so a typo
never silently falls back to a default.

Sections ``[sip]`` and ``[media]`` are kept as validated raw tables here; the SIP and
media layers own their own schemas.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rwi.domain.model import AgentPolicy, ContextPolicy, QueuePolicy
from rwi.errors import ConfigError

SCOPES = frozenset(
    {"call.control", "queue.control", "record.control", "supervisor.control", "media.stream"}
)
NO_ANSWER_ACTIONS = frozenset({"hangup", "transfer", "play_tone"})

#: Environment variables that override single settings (documented in the README).
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "RWI_LISTEN": ("rwi", "listen"),
    "RWI_DATABASE_URL": ("database", "url"),
    "RWI_DATA_DIR": ("storage", "data_dir"),
    "RWI_SOUNDS_DIR": ("storage", "sounds_dir"),
    "RWI_RECORDINGS_DIR": ("storage", "recordings_dir"),
    "RWI_LOG_LEVEL": ("log", "level"),
    "RWI_LOG_FORMAT": ("log", "format"),
}


@dataclass(frozen=True)
class TokenConfig:
    name: str
    token: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class RwiConfig:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    max_connections: int = 1000
    max_calls_per_connection: int = 200
    orphan_hold_secs: float = 30.0
    originate_rate_limit: float = 20.0
    command_rate_limit: float = 2000.0
    max_frame_bytes: int = 65536
    tokens: tuple[TokenConfig, ...] = ()
    contexts: tuple[ContextPolicy, ...] = ()

    def token(self, secret: str) -> TokenConfig | None:
        for token in self.tokens:
            if token.token == secret:
                return token
        return None

    def context(self, name: str) -> ContextPolicy:
        for context in self.contexts:
            if context.name == name:
                return context
        return ContextPolicy(name=name)


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = ""
    pool_size: int = 8


@dataclass(frozen=True)
class StorageConfig:
    data_dir: Path = Path("data")
    sounds_dir: Path = Path("data/sounds")
    recordings_dir: Path = Path("data/recordings")


@dataclass(frozen=True)
class LogConfig:
    level: str = "INFO"
    #: ``text`` lines, or ``json``: one JSON object per line (``rwi.logs``)
    format: str = "text"


@dataclass(frozen=True)
class Config:
    rwi: RwiConfig = field(default_factory=RwiConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    log: LogConfig = field(default_factory=LogConfig)
    sip: Mapping[str, Any] = field(default_factory=dict)
    media: Mapping[str, Any] = field(default_factory=dict)
    routes: tuple[Mapping[str, Any], ...] = ()
    queues: tuple[QueuePolicy, ...] = ()
    agents: tuple[AgentPolicy, ...] = ()
    source: str = "<defaults>"


class _Reader:
    """Pulls typed values out of one TOML table, remembering which keys were used."""

    def __init__(self, table: Mapping[str, Any], where: str, source: str) -> None:
        if not isinstance(table, Mapping):
            raise ConfigError(f"{source}: [{where}] must be a table")
        self.table = table
        self.where = where
        self.source = source
        self.used: set[str] = set()

    def fail(self, key: str, why: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.where}.{key} {why}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        self.used.add(key)
        if key not in self.table:
            return default
        value = self.table[key]
        if isinstance(value, bool) and kind is not bool:
            raise self.fail(key, f"must be {_kind_name(kind)}, got a boolean")
        if not isinstance(value, kind):
            raise self.fail(key, f"must be {_kind_name(kind)}, got {type(value).__name__}")
        return value

    def number(self, key: str, default: float, *, minimum: float = 0, integer: bool = False) -> Any:
        value = self.get(key, int if integer else (int, float), default)
        if value < minimum:
            raise self.fail(key, f"must be >= {minimum}, got {value}")
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.fail(unknown[0], "is not a known setting")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        bool: "true/false",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def sip_t1_secs(sip: Mapping[str, Any], source: str) -> float:
    """``[sip] t1_ms``: RFC 3261's T1 (the round-trip estimate every SIP transaction
    timer scales with; Timer F, a request's give-up time, is 64 x T1), in seconds."""
    value = sip.get("t1_ms", 500)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 10 <= value <= 5000:
        raise ConfigError(f"{source}: sip.t1_ms must be a number from 10 to 5000, got {value!r}")
    return float(value) / 1000


def _parse_listen(value: str, source: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{source}: rwi.listen must be host:port, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _tables(items: list[Any], where: str, source: str) -> Iterator[_Reader]:
    """One reader per table of an array of tables (``[[where]]``); each table must use
    every key it has (checked once the caller is done with it)."""
    for index, item in enumerate(items):
        reader = _Reader(item, f"{where}[{index}]", source)
        yield reader
        reader.finish()


def _unique(keys: list[str], where: str, what: str, source: str) -> None:
    if len(set(keys)) != len(keys):
        raise ConfigError(f"{source}: {where} has the same {what} twice")


def _tokens(items: list[Any], source: str) -> tuple[TokenConfig, ...]:
    tokens = []
    for index, reader in enumerate(_tables(items, "rwi.tokens", source)):
        secret = reader.get("token", str, "")
        if not secret:
            raise reader.fail("token", "must not be empty")
        scopes = reader.get("scopes", list, [])
        for scope in scopes:
            if scope not in SCOPES:
                raise reader.fail(
                    "scopes", f"has unknown scope {scope!r} (known: {', '.join(sorted(SCOPES))})"
                )
        name = reader.get("name", str, f"token{index}")
        tokens.append(TokenConfig(name=name, token=secret, scopes=frozenset(scopes)))
    _unique([t.token for t in tokens], "rwi.tokens", "token", source)
    return tuple(tokens)


def _uri(reader: _Reader, key: str, value: str) -> str:
    if value and not re.match(r"^(sips?|tel):[^\s<>]+$", value, re.IGNORECASE):
        raise reader.fail(key, f"must be a sip:, sips: or tel: URI, got {value!r}")
    return value


def _contexts(items: list[Any], source: str) -> tuple[ContextPolicy, ...]:
    contexts = []
    for reader in _tables(items, "rwi.contexts", source):
        name = reader.get("name", str, "")
        if not name:
            raise reader.fail("name", "must not be empty")
        action = reader.get("no_answer_action", str, "hangup")
        if action not in NO_ANSWER_ACTIONS:
            raise reader.fail(
                "no_answer_action",
                f"must be one of {', '.join(sorted(NO_ANSWER_ACTIONS))}, got {action!r}",
            )
        target = _uri(
            reader, "no_answer_transfer_target", reader.get("no_answer_transfer_target", str, "")
        )
        if action == "transfer" and not target:
            raise reader.fail(
                "no_answer_transfer_target", "is required when no_answer_action = 'transfer'"
            )
        tone_hz = float(reader.number("no_answer_tone_hz", 425.0, minimum=20))
        tone_secs = float(reader.number("no_answer_tone_secs", 3.0, minimum=0.1))
        if tone_hz > 4000 or tone_secs > 60:
            raise ConfigError(
                f"{reader.source}: {reader.where}: no_answer_tone_hz must be <= 4000 and "
                "no_answer_tone_secs <= 60"
            )
        contexts.append(
            ContextPolicy(
                name=name,
                no_answer_timeout_secs=float(reader.number("no_answer_timeout_secs", 30.0)),
                no_answer_action=action,
                no_answer_transfer_target=target,
                no_answer_tone_hz=tone_hz,
                no_answer_tone_secs=tone_secs,
            )
        )
    return tuple(contexts)


STRATEGIES = frozenset({"manual", "ring_all", "longest_idle", "round_robin", "fewest_calls"})


def _names(reader: _Reader, key: str) -> tuple[str, ...]:
    values = reader.get(key, list, [])
    if not all(isinstance(v, str) and v for v in values):
        raise reader.fail(key, "must be a list of non-empty strings")
    return tuple(values)


def _queues(items: list[Any], source: str) -> tuple[QueuePolicy, ...]:
    queues = []
    for reader in _tables(items, "queues", source):
        name = reader.get("name", str, "")
        if not name:
            raise reader.fail("name", "must not be empty")
        strategy = reader.get("strategy", str, "manual")
        if strategy not in STRATEGIES:
            raise reader.fail(
                "strategy", f"must be one of {', '.join(sorted(STRATEGIES))}, got {strategy!r}"
            )
        music = reader.get("music", str, "") or None
        if music is not None and (music.startswith("/") or ".." in music.split("/")):
            raise reader.fail(
                "music", f"must be a relative path inside the sounds directory, got {music!r}"
            )
        queues.append(
            QueuePolicy(
                name=name,
                strategy=strategy,
                members=_names(reader, "members"),
                music=music,
                agent_ring_secs=float(reader.number("agent_ring_secs", 15.0, minimum=1)),
                wrap_up_secs=float(reader.number("wrap_up_secs", 5.0)),
                max_wait_secs=float(reader.number("max_wait_secs", 0.0)),
                max_no_answer=reader.number("max_no_answer", 3, integer=True),
                retry_secs=float(reader.number("retry_secs", 5.0)),
            )
        )
    _unique([q.name for q in queues], "queues", "name", source)
    return tuple(queues)


def _agents(items: list[Any], source: str) -> tuple[AgentPolicy, ...]:
    agents = []
    for reader in _tables(items, "agents", source):
        agent_id = reader.get("id", str, "")
        if not agent_id:
            raise reader.fail("id", "must not be empty")
        destination = reader.get("destination", str, "") or f"sip:{agent_id}@local"
        agents.append(
            AgentPolicy(
                id=agent_id,
                destination=_uri(reader, "destination", destination),
                skills=_names(reader, "skills"),
            )
        )
    _unique([a.id for a in agents], "agents", "id", source)
    return tuple(agents)


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    for variable, (section, key) in ENV_OVERRIDES.items():
        if variable in env:
            raw.setdefault(section, {})[key] = env[variable]


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load ``path`` (or ``$RWI_CONFIG``, or ``rwi.toml`` if it exists) plus env overrides."""
    env = os.environ if env is None else env
    chosen = path or env.get("RWI_CONFIG")
    raw: dict[str, Any] = {}
    source = "<defaults>"
    if chosen is None and Path("rwi.toml").is_file():
        chosen = "rwi.toml"
    if chosen is not None:
        source = str(chosen)
        try:
            with open(chosen, "rb") as handle:
                raw = tomllib.load(handle)
        except FileNotFoundError as exc:
            raise ConfigError(f"{source}: config file not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    _apply_env(raw, env)
    return parse_config(raw, source)


def parse_config(raw: Mapping[str, Any], source: str = "<config>") -> Config:
    top = _Reader(raw, "<top>", source)
    rwi = _Reader(top.get("rwi", dict, {}), "rwi", source)
    host, port = _parse_listen(rwi.get("listen", str, "127.0.0.1:8080"), source)
    rwi_config = RwiConfig(
        listen_host=host,
        listen_port=port,
        max_connections=rwi.number("max_connections", 1000, minimum=1, integer=True),
        max_calls_per_connection=rwi.number(
            "max_calls_per_connection", 200, minimum=1, integer=True
        ),
        orphan_hold_secs=float(rwi.number("orphan_hold_secs", 30.0)),
        originate_rate_limit=float(rwi.number("originate_rate_limit", 20.0, minimum=0.001)),
        command_rate_limit=float(rwi.number("command_rate_limit", 2000.0, minimum=0.001)),
        max_frame_bytes=rwi.number("max_frame_bytes", 65536, minimum=1024, integer=True),
        tokens=_tokens(rwi.get("tokens", list, []), source),
        contexts=_contexts(rwi.get("contexts", list, []), source),
    )
    rwi.finish()

    database = _Reader(top.get("database", dict, {}), "database", source)
    database_config = DatabaseConfig(
        url=database.get("url", str, ""),
        pool_size=database.number("pool_size", 8, minimum=2, integer=True),
    )
    database.finish()
    if database_config.url and not database_config.url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"{source}: database.url must be a postgresql:// URL")

    storage = _Reader(top.get("storage", dict, {}), "storage", source)
    data_dir = Path(storage.get("data_dir", str, "data"))
    storage_config = StorageConfig(
        data_dir=data_dir,
        sounds_dir=Path(storage.get("sounds_dir", str, str(data_dir / "sounds"))),
        recordings_dir=Path(storage.get("recordings_dir", str, str(data_dir / "recordings"))),
    )
    storage.finish()

    log = _Reader(top.get("log", dict, {}), "log", source)
    level = log.get("level", str, "INFO").upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"{source}: log.level must be DEBUG, INFO, WARNING or ERROR")
    form = log.get("format", str, "text")
    if form not in {"text", "json"}:
        raise ConfigError(f"{source}: log.format must be text or json, got {form!r}")
    log.finish()

    sip = top.get("sip", dict, {})
    media = top.get("media", dict, {})
    routes = top.get("routes", list, [])
    queues = _queues(top.get("queues", list, []), source)
    agents = _agents(top.get("agents", list, []), source)
    top.finish()
    return Config(
        rwi=rwi_config,
        database=database_config,
        storage=storage_config,
        log=LogConfig(level=level, format=form),
        sip=sip,
        media=media,
        routes=tuple(routes),
        queues=queues,
        agents=agents,
        source=source,
    )
