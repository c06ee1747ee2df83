"""Load and validate experiment configs (TOML) before anything runs.

Every error names the file, the key, the value and what was expected, so a typo in a
60-minute run's config is caught in the first second rather than after the first cell.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.units import UnitError, parse_bandwidth, parse_duration

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
# Sections read by a provider, not by the experiment: [lab] and [cloud] list their hosts.
PROVIDER_SECTIONS = ("lab", "cloud")
LOAD_GENERATORS = ("native", "tcpkali")
# tcpkali's default is 100/s; a faster ramp keeps the connection set complete well inside
# the warm-up, so the measured window sees every connection.
DEFAULT_CONNECT_RATE = 1000


class ConfigError(ValueError):
    """A config that cannot be run; the message names file, key, value and expectation."""


@dataclass(frozen=True)
class ChatSweep:
    """The chat workload: connections that authenticate, then send lines at a fixed rate."""

    servers: tuple[str, ...]
    connections: tuple[int, ...]
    message_rate: float
    message_size: int
    history: int
    repetitions: int


@dataclass(frozen=True)
class ExperimentConfig:
    path: Path
    name: str
    raw: dict[str, Any]
    sha256: str
    seed: int
    repetitions: int
    warmup_s: float
    measure_s: float
    sample_interval_s: float
    port: int
    generator: str
    message: str
    bandwidth_bps: float
    connect_rate: int
    servers: tuple[str, ...]
    connections: tuple[int, ...]
    cpus: tuple[int, ...]
    # Ablations: each is crossed with the rest; the first default is the paper's setting.
    output: tuple[str, ...] = ("paper",)
    read_buffer: tuple[int | None, ...] = (None,)
    gogc: tuple[str, ...] = ("default",)
    gomaxprocs: tuple[str, ...] = ("cpus",)
    chat: ChatSweep | None = None


    @property
    def load_duration_s(self) -> float:
        return self.warmup_s + self.measure_s


# key -> (section, expected description); drives the unknown-key check
_SCHEMA: dict[str, dict[str, str]] = {
    "experiment": {
        "name": "a string",
        "seed": "an integer",
        "repetitions": "an integer >= 1",
        "warmup": "a duration such as 2s (>= 0)",
        "duration": "a duration such as 8s (> 0)",
        "sample_interval": "a duration such as 500ms (> 0)",
        "port": "an integer port 1-65535",
    },
    "load": {
        "loadgen": f"one of {', '.join(LOAD_GENERATORS)}",
        "message": "a non-empty string",
        "bandwidth": "a bandwidth such as 1Mbps (> 0)",
        "connect_rate": "an integer >= 1 (new connections per second)",
    },
    "matrix": {
        "servers": "a list of server names (empty only with a [chat] section)",
        "connections": "a non-empty list of integers >= 1",
        "cpus": "a non-empty list of integers >= 1",
        "output": "a non-empty list of: paper, discard, same",
        "read_buffer": 'a non-empty list of integers 1-1048576 or "default"',
        "gogc": "a non-empty list of: default, off",
        "gomaxprocs": 'a non-empty list of: cpus, "1"',
    },
    "chat": {
        "servers": "a non-empty list of chat server names",
        "connections": "a non-empty list of integers >= 1",
        "message_rate": "a number > 0 (lines per second per connection)",
        "message_size": "an integer 64-4096 (bytes per line, newline included)",
        "history": "an integer >= 0 (lines a client gets on connecting)",
        "repetitions": "an integer >= 1 (default: experiment.repetitions)",
    },
}


def resolve_config_path(config: str | Path) -> Path:
    """A profile name (``quick``) or a path to a TOML file."""
    candidate = Path(config)
    if candidate.suffix == ".toml" or candidate.is_file():
        path = candidate
    else:
        path = CONFIG_DIR / f"{config}.toml"
    if not path.is_file():
        profiles = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.toml")))
        raise ConfigError(f"{config}: no such config file or profile (profiles: {profiles})")
    return path


class _Checker:
    def __init__(self, path: Path, data: dict[str, Any]):
        self.path = path
        self.data = data

    def fail(self, key: str, value: Any, expected: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key} = {value!r}: expected {expected}")

    def get(self, section: str, key: str, default: Any = None, required: bool = True) -> Any:
        table = self.data.get(section, {})
        if key not in table:
            if required:
                raise ConfigError(
                    f"{self.path}: {section}.{key} is missing: expected {_SCHEMA[section][key]}"
                )
            return default
        return table[key]

    def integer(self, section: str, key: str, minimum: int, maximum: int | None = None,
                default: int | None = None) -> int:
        value = self.get(section, key, default, required=default is None)
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
        if ok and maximum is not None:
            ok = value <= maximum
        if not ok:
            raise self.fail(f"{section}.{key}", value, _SCHEMA[section][key])
        return value

    def duration(self, section: str, key: str, positive: bool) -> float:
        value = self.get(section, key)
        try:
            seconds = parse_duration(value)
        except UnitError as error:
            raise self.fail(f"{section}.{key}", value, _SCHEMA[section][key]) from error
        if positive and seconds <= 0:
            raise self.fail(f"{section}.{key}", value, _SCHEMA[section][key])
        return seconds

    def choice_list(self, key: str, choices: tuple[str, ...], default: tuple[str, ...]
                    ) -> tuple[str, ...]:
        value = self.get("matrix", key, default=list(default), required=False)
        if (not isinstance(value, list) or not value
                or any(not isinstance(v, str) or v not in choices for v in value)):
            raise self.fail(f"matrix.{key}", value, _SCHEMA["matrix"][key])
        return tuple(dict.fromkeys(value))

    def buffer_list(self) -> tuple[int | None, ...]:
        value = self.get("matrix", "read_buffer", default=["default"], required=False)
        ok = isinstance(value, list) and bool(value) and all(
            v == "default" or (isinstance(v, int) and not isinstance(v, bool)
                               and 1 <= v <= 1048576) for v in value)
        if not ok:
            raise self.fail("matrix.read_buffer", value, _SCHEMA["matrix"]["read_buffer"])
        return tuple(dict.fromkeys(None if v == "default" else v for v in value))

    def int_list(self, section: str, key: str) -> tuple[int, ...]:
        value = self.get(section, key)
        if (
            not isinstance(value, list)
            or not value
            or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in value)
        ):
            raise self.fail(f"{section}.{key}", value, _SCHEMA[section][key])
        return tuple(value)


def load_config(config: str | Path, known_servers: set[str] | None = None,
                known_chat_servers: set[str] | None = None) -> ExperimentConfig:
    """Parse and validate; the known server sets (from the registry) check server names."""
    path = resolve_config_path(config)
    content = path.read_bytes()
    try:
        data = tomllib.loads(content.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error

    for section, table in data.items():
        if section in PROVIDER_SECTIONS:
            continue  # the provider validates its own section (infra/providers/lab.py)
        if section not in _SCHEMA:
            raise ConfigError(
                f"{path}: unknown section [{section}]: expected one of {', '.join(_SCHEMA)}"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {section} = {table!r}: expected a [{section}] table")
        for key in table:
            if key not in _SCHEMA[section]:
                allowed = ", ".join(_SCHEMA[section])
                raise ConfigError(
                    f"{path}: unknown key {section}.{key} = {table[key]!r}: "
                    f"expected one of {allowed}"
                )

    check = _Checker(path, data)
    name = check.get("experiment", "name", default=path.stem, required=False)
    if not isinstance(name, str) or not name.strip():
        raise check.fail("experiment.name", name, _SCHEMA["experiment"]["name"])

    generator = check.get("load", "loadgen", default="native", required=False)
    if generator not in LOAD_GENERATORS:
        raise check.fail("load.loadgen", generator, _SCHEMA["load"]["loadgen"])
    message = check.get("load", "message")
    if not isinstance(message, str) or not message:
        raise check.fail("load.message", message, _SCHEMA["load"]["message"])
    bandwidth = check.get("load", "bandwidth")
    try:
        bandwidth_bps = parse_bandwidth(bandwidth)
    except UnitError as error:
        raise check.fail("load.bandwidth", bandwidth, _SCHEMA["load"]["bandwidth"]) from error
    if bandwidth_bps <= 0:
        raise check.fail("load.bandwidth", bandwidth, _SCHEMA["load"]["bandwidth"])

    servers = check.get("matrix", "servers")
    # A chat-only profile runs no sink cell; otherwise there must be something to run.
    if (not isinstance(servers, list) or not all(isinstance(s, str) for s in servers)
            or (not servers and "chat" not in data)):
        raise check.fail("matrix.servers", servers, _SCHEMA["matrix"]["servers"])
    if known_servers is not None:
        for server in servers:
            if server not in known_servers:
                raise check.fail(
                    "matrix.servers", server, f"a known server ({', '.join(sorted(known_servers))})"
                )

    return ExperimentConfig(
        chat=_chat_sweep(check, known_chat_servers) if "chat" in data else None,
        path=path,
        name=name,
        raw=data,
        sha256=hashlib.sha256(content).hexdigest(),
        seed=check.integer("experiment", "seed", minimum=0, default=0),
        repetitions=check.integer("experiment", "repetitions", minimum=1),
        warmup_s=check.duration("experiment", "warmup", positive=False),
        measure_s=check.duration("experiment", "duration", positive=True),
        sample_interval_s=check.duration("experiment", "sample_interval", positive=True),
        port=check.integer("experiment", "port", minimum=1, maximum=65535, default=50000),
        generator=generator,
        message=message,
        bandwidth_bps=bandwidth_bps,
        connect_rate=check.integer("load", "connect_rate", minimum=1,
                                   default=DEFAULT_CONNECT_RATE),
        servers=tuple(servers),
        connections=check.int_list("matrix", "connections"),
        cpus=check.int_list("matrix", "cpus"),
        output=check.choice_list("output", ("paper", "discard", "same"), ("paper",)),
        read_buffer=check.buffer_list(),
        gogc=check.choice_list("gogc", ("default", "off"), ("default",)),
        gomaxprocs=check.choice_list("gomaxprocs", ("cpus", "1"), ("cpus",)),
    )


def _chat_sweep(check: _Checker, known: set[str] | None) -> ChatSweep:
    servers = check.get("chat", "servers")
    if not isinstance(servers, list) or not servers or not all(isinstance(s, str) for s in servers):
        raise check.fail("chat.servers", servers, _SCHEMA["chat"]["servers"])
    for server in servers:
        if known is not None and server not in known:
            raise check.fail("chat.servers", server,
                             f"a known chat server ({', '.join(sorted(known))})")
    rate = check.get("chat", "message_rate")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0:
        raise check.fail("chat.message_rate", rate, _SCHEMA["chat"]["message_rate"])
    size = check.integer("chat", "message_size", minimum=64, maximum=4096, default=64)
    return ChatSweep(
        servers=tuple(servers),
        connections=check.int_list("chat", "connections"),
        message_rate=float(rate),
        message_size=size,
        history=check.integer("chat", "history", minimum=0, default=7),
        repetitions=check.integer("chat", "repetitions", minimum=1,
                                  default=check.integer("experiment", "repetitions", minimum=1)),
    )
