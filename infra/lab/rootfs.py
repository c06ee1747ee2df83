"""Lab hosts' root filesystems: built once with debootstrap, cached as tarballs, unpacked per host.

A tarball's name carries the suite, the architecture and a hash of the package list, so a
changed list builds a new one. Builds write ``.tmp`` files and rename them, so a killed build
never leaves a cache entry that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from infra.lab.mounts import unmount_under

Say = Callable[[str], None]
BUILD_TIMEOUT_S = 1800.0


class RootfsError(RuntimeError):
    """A root filesystem could not be built or unpacked; says which and why."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "papaya-bench" / "rootfs"


def tarball_name(suite: str, arch: str, packages: tuple[str, ...]) -> str:
    digest = hashlib.sha256(",".join(sorted(packages)).encode()).hexdigest()[:12]
    return f"{suite}-{arch}-{digest}.tar"


def _clear_stale_builds(directory: Path) -> None:
    """Build trees of killed runs: their pid is gone. Unmount, then remove."""
    for entry in directory.glob(".build-*"):
        pid = entry.name.rsplit("-", 1)[-1]
        if pid.isdigit() and Path(f"/proc/{pid}").exists():
            continue  # a build running right now in another process
        unmount_under(entry)
        shutil.rmtree(entry, ignore_errors=True)
    for tmp in directory.glob("*.tar.tmp.*"):
        pid = tmp.name.rsplit(".", 1)[-1]
        if not (pid.isdigit() and Path(f"/proc/{pid}").exists()):
            tmp.unlink(missing_ok=True)


def _strip_for_cache(root: Path) -> None:
    """Drop what every host must not share (host keys) or never uses (downloaded .debs)."""
    for key in (root / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    for deb in (root / "var" / "cache" / "apt" / "archives").glob("*.deb"):
        deb.unlink()
    lists = root / "var" / "lib" / "apt" / "lists"
    for entry in lists.glob("*"):
        if entry.is_file():
            entry.unlink()
    # Hosts reach nothing beyond the lab network: no mirror to update from.
    (root / "etc" / "hostname").write_text("lab\n")


def build_rootfs(suite: str, arch: str, packages: tuple[str, ...], mirror: str,
                 say: Say, directory: Path | None = None) -> Path:
    """The cached tarball for (suite, arch, packages), building it first if missing."""
    directory = directory or cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / tarball_name(suite, arch, packages)
    if target.is_file():
        return target
    if shutil.which("debootstrap") is None:
        raise RootfsError("debootstrap is not installed (apt-get install debootstrap)")
    _clear_stale_builds(directory)
    say(f"building rootfs {suite}/{arch} (first time only, ~1 min): {', '.join(packages)}")
    tree = directory / f".build-{target.stem}-{os.getpid()}"
    log = directory / f"{target.stem}.build.log"
    started = time.monotonic()
    # A private mount and PID namespace: debootstrap's mounts and anything a package script
    # starts vanish with it, even when this build is killed.
    cmd = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
           "debootstrap", "--variant=minbase", f"--arch={arch}",
           f"--include={','.join(packages)}", suite, str(tree), mirror]
    try:
        with open(log, "wb") as out:
            result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT,
                                    timeout=BUILD_TIMEOUT_S, check=False)
        if result.returncode != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-8:]
            raise RootfsError(
                f"debootstrap {suite}/{arch} from {mirror} failed (exit {result.returncode}); "
                f"log {log}:\n" + "\n".join(tail)
            )
        _strip_for_cache(tree)
        tmp = directory / f"{target.name}.tmp.{os.getpid()}"
        subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", str(tree), "-cf", str(tmp),
                        "."], check=True, capture_output=True, timeout=BUILD_TIMEOUT_S)
        os.replace(tmp, target)
    except subprocess.TimeoutExpired as error:
        raise RootfsError(f"debootstrap {suite}/{arch} took over {BUILD_TIMEOUT_S:.0f}s; "
                          f"log {log}") from error
    except subprocess.CalledProcessError as error:
        raise RootfsError(f"packing rootfs {suite}/{arch}: tar failed: "
                          f"{error.stderr.decode(errors='replace').strip()}") from error
    finally:
        unmount_under(tree)
        shutil.rmtree(tree, ignore_errors=True)
    say(f"rootfs {suite}/{arch} built in {time.monotonic() - started:.0f}s: {target}")
    return target


def unpack_rootfs(tarball: Path, root: Path) -> None:
    """A fresh copy of the tarball at ``root`` (replacing a partial one from a killed run)."""
    if root.exists():
        unmount_under(root)
        shutil.rmtree(root)
    partial = root.with_name(root.name + ".partial")
    if partial.exists():
        unmount_under(partial)
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    result = subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", str(partial), "-xf",
                             str(tarball)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise RootfsError(f"unpacking {tarball} into {root}: {result.stderr.strip()}")
    os.replace(partial, root)
