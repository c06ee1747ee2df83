"""``--bootstrap``: install what the pipeline needs on a host, with the host's own package manager.

What the pipeline needs on a server or load-generator host: python3 with psutil (the tracer),
pytest (the conformance suite), a C compiler with its headers, GNU make and BSD make, and an
unprivileged service user ``papaya`` to run servers as.

- Debian, Ubuntu, Kali: ``apt-get``; packages already installed (``dpkg-query``) are skipped,
  and when nothing is missing ``apt-get`` is not run at all (no ``apt-get update`` either).
- FreeBSD: ``pkg``; cc (clang) and BSD make are in base, GNU make is ``gmake``; the Python
  packages' flavour (``py311-``...) follows the host's python3, or the repository's default.

Installed packages are read first, so a prepared host is left untouched. Without root, commands
run through ``sudo -n``; a user without passwordless sudo gets a clear error before anything is
looked at or changed. Every command run is returned, for the provider's state file.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.hosts import CommandResult, Host, HostError

SERVICE_USER = "papaya"
APT_PACKAGES = ("python3", "python3-psutil", "python3-pytest", "gcc", "libc6-dev", "make",
                "bmake")
DEBIAN_FAMILY = ("debian", "ubuntu", "kali")
_TIMEOUT_S = 1800  # a package install on a slow mirror
_TAIL_LINES = 15


class BootstrapError(HostError):
    """Bootstrap cannot go on; the message names the host and what to do."""


@dataclass
class Bootstrap:
    """One host's bootstrap: the commands it ran, in order, with their outcome."""

    host: Host
    name: str
    facts: dict[str, Any]
    dry_run: bool = False
    sudo: bool | None = None  # inventory's choice; None: sudo when not root
    log: list[dict[str, Any]] = field(default_factory=list)
    _prefix: list[str] | None = None

    # ------------------------------------------------------------------ running

    def query(self, argv: Sequence[str]) -> CommandResult:
        """A read-only command: always run, also in a dry run, logged with its exit code."""
        result = self._run(list(argv))
        self.log.append({"cmd": shlex.join(argv), "returncode": result.returncode,
                         "kind": "query"})
        return result

    def change(self, argv: Sequence[str]) -> CommandResult | None:
        """A command that changes the host: run as root (or via sudo), skipped in a dry run."""
        full = self.privileged() + list(argv)
        entry: dict[str, Any] = {"cmd": shlex.join(full), "kind": "change"}
        self.log.append(entry)
        if self.dry_run:
            entry["skipped"] = "dry run"
            return None
        result = self._run(full)
        entry["returncode"] = result.returncode
        entry["output_tail"] = _tail(result.stdout + result.stderr)
        if result.returncode != 0:
            raise BootstrapError(
                f"host {self.name}: bootstrap: {shlex.join(full)} exited with "
                f"{result.returncode}:\n{_tail(result.stderr or result.stdout)}")
        return result

    def note(self, text: str) -> None:
        self.log.append({"note": text})

    def _run(self, argv: list[str]) -> CommandResult:
        try:
            return self.host.run(argv, check=False, timeout=_TIMEOUT_S)
        except HostError as error:
            if "not found" in str(error):  # LocalHost: the program is missing
                return CommandResult(127, "", str(error))
            raise BootstrapError(f"host {self.name}: bootstrap: {error}") from error

    def privileged(self) -> list[str]:
        """``[]`` as root, ``["sudo", "-n"]`` otherwise; checks sudo once, before any change."""
        if self._prefix is not None:
            return self._prefix
        user = self.facts.get("user") or "?"
        if self.facts.get("is_root"):
            self._prefix = []
            return self._prefix
        if self.sudo is False:
            raise BootstrapError(
                f"host {self.name}: bootstrap: user {user} is not root and the inventory says "
                "sudo = false: log in as root or allow sudo")
        check = self._run(["sudo", "-n", "true"])
        self.log.append({"cmd": "sudo -n true", "returncode": check.returncode,
                         "kind": "query"})
        if check.returncode != 0:
            reason = (check.stderr or check.stdout).strip().splitlines()
            raise BootstrapError(
                f"host {self.name}: bootstrap: user {user} has no passwordless sudo "
                f"(sudo -n true: {reason[-1] if reason else f'exit {check.returncode}'}); "
                "log in as root, or allow this user NOPASSWD in sudoers")
        self._prefix = ["sudo", "-n"]
        return self._prefix


def _tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-_TAIL_LINES:])


# ---------------------------------------------------------------------- parsers


def installed_from_dpkg_query(text: str) -> set[str]:
    """Package names whose status is ``install ok installed`` in ``dpkg-query -W`` output."""
    installed = set()
    for line in text.splitlines():
        name, _, status = line.partition("\t")
        if status.strip() == "install ok installed":
            installed.add(name.split(":")[0].strip())  # strip an :arch qualifier
    return installed


def installed_from_pkg_info(text: str) -> set[str]:
    """Package names from FreeBSD ``pkg info``: ``python311-3.11.6   Interpreted ...``."""
    names = set()
    for line in text.splitlines():
        if not line.strip():
            continue
        name_version = line.split()[0]
        name, sep, _version = name_version.rpartition("-")
        if sep and name:
            names.add(name)
    return names


def python_flavour(version: str | None) -> str | None:
    """``3.11.6`` -> ``py311``: the prefix of FreeBSD's Python packages for that interpreter."""
    match = re.match(r"(\d+)\.(\d+)", version or "")
    return f"py{match.group(1)}{match.group(2)}" if match else None


def flavour_from_rquery(text: str) -> str | None:
    """The ``pythonXY`` the repository's ``python3`` meta-package depends on, as ``pyXY``."""
    for line in text.splitlines():
        match = re.fullmatch(r"python(\d)(\d+)", line.strip())
        if match:
            return f"py{match.group(1)}{match.group(2)}"
    return None


# ---------------------------------------------------------------------- families


def package_family(facts: dict[str, Any]) -> str:
    if facts.get("os") == "FreeBSD":
        return "freebsd"
    ids = {facts.get("os_id") or "", *(facts.get("os_like") or [])}
    if facts.get("os") == "Linux" and ids & set(DEBIAN_FAMILY):
        return "debian"
    return "unsupported"


def bootstrap(host: Host, name: str, facts: dict[str, Any], *, dry_run: bool = False,
              sudo: bool | None = None) -> list[dict[str, Any]]:
    """Install what the pipeline needs on ``host``; returns the log of commands run."""
    run = Bootstrap(host, name, facts, dry_run=dry_run, sudo=sudo)
    family = package_family(facts)
    if family == "unsupported":
        raise BootstrapError(
            f"host {name}: bootstrap: no package manager known for {facts.get('os_release')} "
            f"({facts.get('os')}); supported: Debian/Ubuntu/Kali (apt-get), FreeBSD (pkg). "
            "Install python3 + psutil, a C compiler and make by hand and provision without "
            "--bootstrap")
    # Root or passwordless sudo first: failing later would leave a half-bootstrapped host.
    run.privileged()
    if family == "debian":
        _debian(run)
    else:
        _freebsd(run)
    _service_user(run, family)
    return run.log


def _debian(run: Bootstrap) -> None:
    listing = run.query(["dpkg-query", "-W", "-f", "${Package}\\t${Status}\\n",
                         *APT_PACKAGES])
    installed = installed_from_dpkg_query(listing.stdout)
    missing = [package for package in APT_PACKAGES if package not in installed]
    if not missing:
        run.note(f"apt: all of {', '.join(APT_PACKAGES)} already installed")
        return
    run.note(f"apt: missing {', '.join(missing)}")
    run.change(["apt-get", "update"])
    run.change(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y",
                "--no-install-recommends", *missing])


def _freebsd(run: Bootstrap) -> None:
    # pkg(7) is a stub until pkg(8) is bootstrapped; `pkg -N` tells without bootstrapping.
    if run.query(["pkg", "-N"]).returncode != 0:
        run.change(["pkg", "bootstrap", "-y"])
        installed: set[str] = set()
    else:
        installed = installed_from_pkg_info(run.query(["pkg", "info"]).stdout)
    flavour = python_flavour(run.facts.get("python")) if "python3" in installed else None
    if flavour is None:
        # No python3 yet: take the flavour the repository's python3 meta-package pulls in.
        deps = run.privileged() + ["pkg", "rquery", "%dn", "python3"]
        result = run.query(deps)
        flavour = flavour_from_rquery(result.stdout)
        if flavour is None and run.dry_run:
            run.note("pkg: Python flavour unknown until pkg is bootstrapped (dry run)")
            flavour = "py3XY"
        if flavour is None:
            raise BootstrapError(
                f"host {run.name}: bootstrap: cannot tell which Python the package repository "
                f"offers ({shlex.join(deps)} printed no pythonXY):\n"
                f"{_tail(result.stderr or result.stdout)}")
    wanted = ["python3", f"{flavour}-psutil", f"{flavour}-pytest", "gmake"]
    missing = [package for package in wanted if package not in installed]
    if not missing:
        run.note(f"pkg: all of {', '.join(wanted)} already installed")
        return
    run.note(f"pkg: missing {', '.join(missing)} (cc and make are in base)")
    run.change(["pkg", "install", "-y", *missing])


def _service_user(run: Bootstrap, family: str) -> None:
    if run.query(["id", SERVICE_USER]).returncode == 0:
        run.note(f"user {SERVICE_USER} exists")
        return
    if family == "freebsd":
        run.change(["pw", "useradd", "-n", SERVICE_USER, "-c", "papaya-bench service",
                    "-d", "/nonexistent", "-s", "/usr/sbin/nologin"])
    else:
        run.change(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                    "--shell", "/usr/sbin/nologin", SERVICE_USER])
