"""Cloud API credentials: from environment variables or a file only the user can read.

The secret lives in a ``Credentials`` object whose repr never shows it, and ``scrub`` removes
it from any text (a libcloud error message, say) before that text reaches a log, a state
file or a traceback.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from infra.cloud.config import CloudConfig

# The generic variables first, then each driver's usual ones.
GENERIC_KEY, GENERIC_SECRET = "PAPAYA_CLOUD_KEY", "PAPAYA_CLOUD_SECRET"
DRIVER_ENV: dict[str, tuple[str, str | None]] = {
    "vultr": ("VULTR_API_KEY", None),
    "digitalocean": ("DIGITALOCEAN_ACCESS_TOKEN", None),
    "linode": ("LINODE_TOKEN", None),
    "ec2": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    "dummy": ("PAPAYA_DUMMY_KEY", None),
}
NEEDS_SECRET = {"ec2"}
MASK = "***"


class CredentialsError(ValueError):
    """No usable credentials; says where they were looked for (never what they are)."""


@dataclass(frozen=True)
class Credentials:
    key: str = field(repr=False)
    secret: str | None = field(default=None, repr=False)
    source: str = ""  # where they came from: "environment PAPAYA_CLOUD_KEY", a file path

    def __repr__(self) -> str:
        return f"Credentials(key={MASK}, secret={MASK if self.secret else None}, " \
               f"source={self.source!r})"

    __str__ = __repr__

    def values(self) -> list[str]:
        return [v for v in (self.key, self.secret) if v]

    def scrub(self, text: str) -> str:
        """``text`` with every credential replaced by ``***``."""
        for value in sorted(self.values(), key=len, reverse=True):
            if len(value) >= 4:  # a 1-3 character "secret" would mangle every message
                text = text.replace(value, MASK)
        return text


def load_credentials(config: CloudConfig,
                     environ: Mapping[str, str] = os.environ) -> Credentials:
    if environ.get(GENERIC_KEY):
        return _checked(config, Credentials(environ[GENERIC_KEY], environ.get(GENERIC_SECRET)
                                            or None, f"environment {GENERIC_KEY}"))
    key_var, secret_var = DRIVER_ENV[config.driver]
    if environ.get(key_var):
        secret = environ.get(secret_var) if secret_var else None
        return _checked(config, Credentials(environ[key_var], secret or None,
                                            f"environment {key_var}"))
    if config.credentials_file is not None:
        return _checked(config, read_credentials_file(config.credentials_file))
    if config.driver == "dummy":
        # The dummy driver talks to nobody; it still gets a "key" so the code path is the same.
        return Credentials("dummy-key", None, "dummy driver (no credentials needed)")
    names = [GENERIC_KEY, key_var] + ([secret_var] if secret_var else [])
    raise CredentialsError(
        f"no credentials for driver {config.driver!r}: set {' or '.join(names[:2])}"
        + (f" (and {secret_var})" if secret_var else "")
        + f", or credentials_file in [cloud] of {config.path} (a TOML file with key = \"...\""
        + (" and secret = \"...\"" if config.driver in NEEDS_SECRET else "")
        + ", mode 0600)")


def _checked(config: CloudConfig, credentials: Credentials) -> Credentials:
    if config.driver in NEEDS_SECRET and not credentials.secret:
        raise CredentialsError(f"driver {config.driver!r} needs a key and a secret; "
                               f"{credentials.source} gave only the key")
    return credentials


def read_credentials_file(path: Path) -> Credentials:
    """``key`` (and ``secret``) from a TOML file owned by the user with mode 0600 (or 0400)."""
    path = Path(path).expanduser()
    try:
        # lstat: a symlink elsewhere would make the permission check meaningless.
        info = path.lstat()
    except OSError as error:
        raise CredentialsError(f"credentials file {path}: cannot read ({error.strerror})"
                               ) from None
    if not stat.S_ISREG(info.st_mode):
        raise CredentialsError(f"credentials file {path}: not a regular file")
    if info.st_uid != os.getuid():
        raise CredentialsError(f"credentials file {path}: owned by uid {info.st_uid}, not by "
                               f"you (uid {os.getuid()}); refusing it")
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise CredentialsError(f"credentials file {path}: mode {stat.S_IMODE(info.st_mode):04o}"
                               f" lets others read it; chmod 600 {path}")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        # The decoder's message quotes the offending line, which may hold the secret.
        raise CredentialsError(f"credentials file {path}: not valid TOML (expected "
                               "key = \"...\" and optionally secret = \"...\")") from None
    unknown = set(data) - {"key", "secret"}
    if unknown:
        raise CredentialsError(f"credentials file {path}: unknown key(s) {sorted(unknown)} "
                               "(known: key, secret)")
    key, secret = data.get("key"), data.get("secret")
    if not isinstance(key, str) or not key:
        raise CredentialsError(f"credentials file {path}: missing key = \"...\"")
    if secret is not None and (not isinstance(secret, str) or not secret):
        raise CredentialsError(f"credentials file {path}: secret must be a non-empty string")
    return Credentials(key, secret, f"file {path}")
