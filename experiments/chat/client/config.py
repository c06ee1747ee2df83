"""The client's settings: ~/.config/papaya/client.toml, overridden by the command line.

Every problem is a ConfigError whose message is one line naming the file, the key or the value
and what is expected, so that the command line can print it as it is.
"""

from __future__ import annotations

import getpass
import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .protocol import KEY_LENGTH, MAX_LINE

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7000
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_AUTH_WAIT = 1.5
# Leave room for the text: "username: " may take at most this many bytes of the 4096.
MAX_USERNAME_BYTES = 64

KEYS = {
    "host": str,
    "port": int,
    "username": str,
    "key_file": str,
    "connect_timeout": (int, float),
    "auth_wait": (int, float),
}


class ConfigError(Exception):
    """A setting, the config file or the key file is unusable; the message says why."""


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "papaya"


def default_config_path() -> Path:
    return config_dir() / "client.toml"


def default_key_file() -> Path:
    return config_dir() / "chat.key"


@dataclass(frozen=True)
class ClientConfig:
    host: str
    port: int
    username: str
    key_file: Path
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    auth_wait: float = DEFAULT_AUTH_WAIT

    @property
    def address(self) -> str:
        """host:port as people write it ([v6]:port for an IPv6 literal)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def read_config_file(path: Path, *, required: bool) -> dict:
    """The settings in a client.toml; {} when it is absent and not required."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        if required:
            raise ConfigError(f"config file {path} does not exist") from None
        return {}
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    for key, value in data.items():
        if key not in KEYS:
            known = ", ".join(KEYS)
            raise ConfigError(f"{path}: unknown key {key!r} (known keys: {known})")
        expected = KEYS[key]
        if isinstance(value, bool) or not isinstance(value, expected):
            kind = "a number" if expected == (int, float) else (
                "an integer" if expected is int else "a string")
            raise ConfigError(f"{path}: {key} = {value!r} must be {kind}")
    if "key_file" in data:
        # A relative key file in the config is relative to the config file's folder.
        key_file = Path(os.path.expanduser(data["key_file"]))
        data["key_file"] = str(key_file if key_file.is_absolute() else path.parent / key_file)
    return data


def build_config(
    *,
    config_path: str | None = None,
    host: str | None = None,
    port: int | None = None,
    username: str | None = None,
    key_file: str | None = None,
    connect_timeout: float | None = None,
    auth_wait: float | None = None,
) -> ClientConfig:
    """The file's settings (the default path, or ``config_path`` which must then exist), each
    replaced by the matching argument when that is not None; defaults for the rest."""
    path = Path(os.path.expanduser(config_path)) if config_path else default_config_path()
    data = read_config_file(path, required=config_path is not None)
    where = f"{path}: " if data else ""

    def pick(name: str, given, default):
        return given if given is not None else data.get(name, default)

    try:
        default_user = getpass.getuser()
    except (KeyError, OSError):
        default_user = ""
    chosen_host = pick("host", host, DEFAULT_HOST).strip()
    chosen_port = pick("port", port, DEFAULT_PORT)
    chosen_user = pick("username", username, default_user).strip()
    chosen_key = Path(os.path.expanduser(pick("key_file", key_file, str(default_key_file()))))
    chosen_connect = float(pick("connect_timeout", connect_timeout, DEFAULT_CONNECT_TIMEOUT))
    chosen_auth = float(pick("auth_wait", auth_wait, DEFAULT_AUTH_WAIT))

    if not chosen_host:
        raise ConfigError(f"{where}host is empty; set host in the config or pass --host")
    if not 1 <= chosen_port <= 65535:
        raise ConfigError(f"{where}port = {chosen_port} must be between 1 and 65535")
    check_username(chosen_user)
    if chosen_connect <= 0:
        raise ConfigError(f"{where}connect_timeout = {chosen_connect:g} must be > 0 seconds")
    if chosen_auth <= 0:
        raise ConfigError(f"{where}auth_wait = {chosen_auth:g} must be > 0 seconds")
    return ClientConfig(chosen_host, chosen_port, chosen_user, chosen_key, chosen_connect,
                        chosen_auth)


def check_username(name: str) -> None:
    if not name:
        raise ConfigError("no username: set username in the config or pass --user")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise ConfigError(f"username {name!r} contains control characters")
    if ":" in name:
        raise ConfigError(f"username {name!r} contains ':' (lines are 'username: text')")
    if len(name.encode()) > MAX_USERNAME_BYTES:
        raise ConfigError(f"username {name!r} is longer than {MAX_USERNAME_BYTES} bytes")
    if len(line_bytes(name, "")) >= MAX_LINE:
        raise ConfigError(f"username {name!r} leaves no room for text")


def line_bytes(username: str, text: str) -> bytes:
    """The protocol line for one message: b"username: text\\n"."""
    return f"{username}: {text}\n".encode()


def read_key(path: Path) -> bytes:
    """The 128-byte shared key in ``path``, after the checks the servers make.

    The file holds exactly 128 printable ASCII characters (one trailing newline is allowed) and
    must not be readable, writable or executable by group or others (like an ssh private key).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ConfigError(
            f"key file {path} does not exist; ask the server's admin for the chat key and "
            f"save it there (chmod 600), or pass --key-file") from None
    except OSError as error:
        raise ConfigError(f"cannot read key file {path}: {error.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"key file {path} is not a regular file")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"key file {path} has mode {mode:04o}, which lets others read it; "
            f"run: chmod 600 {path}")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read key file {path}: {error.strerror}") from None
    key = data[:-1] if data.endswith(b"\n") else data
    if len(key) != KEY_LENGTH:
        raise ConfigError(
            f"key file {path} holds {len(key)} bytes; the key is exactly {KEY_LENGTH} printable "
            f"ASCII characters (e.g. a SHA-512 hex digest)")
    bad = [b for b in key if not 0x20 <= b <= 0x7E]
    if bad:
        raise ConfigError(
            f"key file {path} contains a non-printable byte 0x{bad[0]:02x}; the key is "
            f"exactly {KEY_LENGTH} printable ASCII characters")
    return key
