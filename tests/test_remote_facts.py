"""Facts and bootstrap commands, on recordings of real hosts and on this machine.

FreeBSD has no host here: its answers are recordings of the real commands' output (see
tests/fixtures/freebsd/README.md); Debian recordings were captured with
tests/fixtures/debian/capture.py from this machine and from a debootstrap'ed i386 chroot.
"""

from __future__ import annotations

import json
import platform
import shlex
from pathlib import Path

import pytest

from infra.bootstrap import (
    APT_PACKAGES,
    BootstrapError,
    bootstrap,
    flavour_from_rquery,
    installed_from_dpkg_query,
    installed_from_pkg_info,
    package_family,
    python_flavour,
)
from infra.facts import local_facts
from infra.hosts import LocalHost
from infra.remote_facts import (
    cpus_allowed_from_status,
    cpus_from_cpuset_g,
    gather_facts,
    make_flavour,
    memory_from_meminfo,
    parse_cpu_list,
    parse_freebsd_hw,
    parse_uname_a,
)
from tests.recorded_host import RecordedHost, UnrecordedCommand

FIXTURES = Path(__file__).parent / "fixtures"
FREEBSD = FIXTURES / "freebsd"
DEBIAN = FIXTURES / "debian"
SHARED_KEYS = ("hostname", "os", "os_release", "kernel", "arch", "cpu_model", "cores",
               "usable_cpus", "memory_bytes", "cc", "make", "python")
EXTRA_KEYS = ("long_bit", "gcc", "clang", "bmake", "psutil", "user", "is_root")


def freebsd(*manifests: str) -> RecordedHost:
    return RecordedHost(*(FREEBSD / m for m in manifests), name="bsd13")


def changes(log: list[dict]) -> list[str]:
    return [step["cmd"] for step in log if step.get("kind") == "change"]


# ---------------------------------------------------------------------- parsers


def test_cpu_lists_in_linux_and_freebsd_notation():
    assert parse_cpu_list("0-3,6") == [0, 1, 2, 3, 6]
    assert parse_cpu_list("0, 1, 2") == [0, 1, 2]
    assert cpus_allowed_from_status("Name:\tcat\nCpus_allowed_list:\t1,3-4\n") == [1, 3, 4]
    freebsd_text = (FREEBSD / "cpuset-g.txt").read_text()
    # The domain-policy line ("... mask: 0") must not leak into the CPU list.
    assert cpus_from_cpuset_g(freebsd_text) == [0, 1]
    assert cpus_from_cpuset_g("pid -1 mask: 0, 1, 2, 3\n") == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        cpus_from_cpuset_g("cpuset: getaffinity: Operation not permitted\n")


def test_uname_hw_meminfo_and_make_parsers():
    fields = parse_uname_a((FREEBSD / "uname-a.txt").read_text())
    assert fields == {"sysname": "FreeBSD", "nodename": "fbsd13", "release": "13.2-RELEASE"}
    hw = parse_freebsd_hw((FREEBSD / "sysctl-hw.txt").read_text())
    assert hw == {"cpu_model": "Intel Core Processor (Skylake)", "cores": 2,
                  "memory_bytes": 4261941248}
    with pytest.raises(ValueError, match="sysctl"):
        parse_freebsd_hw("sysctl: unknown oid 'hw.physmem'\n")
    assert memory_from_meminfo("MemTotal:        2048 kB\nMemFree: 1 kB\n") == 2048 * 1024
    assert make_flavour("GNU Make 4.3", None) == "GNU Make 4.3"
    assert make_flavour(None, "20220208\n") == "bmake 20220208 (BSD make)"
    assert make_flavour(None, None) is None


def test_package_listing_parsers():
    installed = installed_from_pkg_info((FREEBSD / "pkg-info-prepared.txt").read_text())
    # Names with dashes and versions with commas/underscores: rpartition on the last dash.
    assert {"py311-psutil", "py311-pytest", "python3", "python311", "gettext-runtime",
            "ca_root_nss", "gmake"} <= installed
    assert "py311" not in installed and "python3-3_3" not in installed
    dpkg = "python3\tinstall ok installed\ngcc\tdeinstall ok config-files\nmake:amd64\t" \
           "install ok installed\n"
    assert installed_from_dpkg_query(dpkg) == {"python3", "make"}
    assert python_flavour("3.11.4") == "py311" and python_flavour(None) is None
    rquery = (FREEBSD / "pkg-rquery-python3-deps.txt").read_text()
    assert flavour_from_rquery(rquery) == "py311"
    assert flavour_from_rquery("All repositories are up to date.\n") is None


# ---------------------------------------------------------------------- FreeBSD facts


def test_freebsd_facts_from_recordings():
    host = freebsd("facts-fresh-root.toml")
    facts = gather_facts(host)
    assert set(SHARED_KEYS + EXTRA_KEYS) <= set(facts)
    assert facts["os"] == "FreeBSD" and facts["os_id"] == "freebsd"
    assert facts["os_release"] == "FreeBSD 13.2-RELEASE"
    assert facts["freebsd_version"] == "13.2-RELEASE"
    assert facts["kernel"] == "13.2-RELEASE" and facts["arch"] == "amd64"
    assert facts["long_bit"] == 64
    assert facts["cpu_model"] == "Intel Core Processor (Skylake)"
    assert facts["cores"] == 2 and facts["usable_cpus"] == [0, 1]
    assert facts["memory_bytes"] == 4261941248
    assert facts["cc"].startswith("FreeBSD clang version 14.0.5")
    assert facts["clang"] == facts["cc"] and facts["gcc"] is None
    # FreeBSD's make is bmake: `make --version` fails, .MAKE.VERSION answers.
    assert facts["make"] == "bmake 20220208 (BSD make)" == facts["bmake"]
    assert facts["gmake"] is None
    assert facts["python"] is None and facts["psutil"] is None
    assert facts["user"] == "root" and facts["is_root"] is True
    # Linux-only sources were never asked for.
    assert ["cat", "/proc/cpuinfo"] not in host.calls


def test_freebsd_facts_after_bootstrap_as_user():
    facts = gather_facts(freebsd("facts-fresh-root.toml", "facts-prepared-user.toml"))
    assert facts["python"] == "3.11.4" and facts["psutil"] == "5.9.5"
    assert facts["gmake"] == "GNU Make 4.3"
    assert facts["make"].startswith("bmake ")  # base make stays BSD make
    assert facts["user"] == "bench" and facts["is_root"] is False


def test_unrecorded_command_fails_loudly(tmp_path):
    # A recording without `cpuset -g`: the facts code must not paper over the gap.
    manifest = (FREEBSD / "facts-fresh-root.toml").read_text()
    trimmed = manifest.replace('[[command]]\nargv = ["cpuset", "-g"]\nstdout = "cpuset-g.txt"\n',
                               "")
    assert trimmed != manifest
    (tmp_path / "partial.toml").write_text(trimmed)
    for output in FREEBSD.glob("*.txt"):
        (tmp_path / output.name).write_text(output.read_text())
    with pytest.raises(UnrecordedCommand, match="cpuset"):
        gather_facts(RecordedHost(tmp_path / "partial.toml"))


# ---------------------------------------------------------------------- FreeBSD bootstrap


def test_freebsd_bootstrap_fresh_host_as_root():
    host = freebsd("facts-fresh-root.toml", "bootstrap-fresh-root.toml")
    facts = gather_facts(host)
    host.calls.clear()
    log = bootstrap(host, "bsd13", facts)
    assert host.calls == [
        ["pkg", "-N"],
        ["pkg", "info"],
        ["pkg", "rquery", "%dn", "python3"],  # which pythonXY the repository's python3 is
        ["pkg", "install", "-y", "python3", "py311-psutil", "py311-pytest", "gmake"],
        ["id", "papaya"],
        ["pw", "useradd", "-n", "papaya", "-c", "papaya-bench service", "-d", "/nonexistent",
         "-s", "/usr/sbin/nologin"],
    ]
    install = next(step for step in log if step.get("cmd", "").startswith("pkg install"))
    assert install["returncode"] == 0
    assert "Extracting py311-pytest" in install["output_tail"]
    assert not any(step.get("cmd", "").startswith("sudo") for step in log)  # root: no sudo


def test_freebsd_bootstrap_skips_installed_packages():
    host = freebsd("facts-fresh-root.toml", "facts-prepared-user.toml", "sudo-password.toml",
                   "bootstrap-prepared.toml")
    facts = gather_facts(host)
    facts["is_root"] = True  # as root: no sudo needed
    host.calls.clear()
    log = bootstrap(host, "bsd13", facts)
    assert host.calls == [["pkg", "-N"], ["pkg", "info"], ["id", "papaya"]]
    assert changes(log) == []
    assert any("already installed" in step.get("note", "") for step in log)


def test_freebsd_bootstrap_bootstraps_pkg_first():
    host = freebsd("facts-fresh-root.toml", "bootstrap-unbootstrapped-pkg.toml")
    facts = gather_facts(host)
    host.calls.clear()
    log = bootstrap(host, "bsd13", facts)
    assert host.calls[:3] == [["pkg", "-N"], ["pkg", "bootstrap", "-y"],
                              ["pkg", "rquery", "%dn", "python3"]]
    assert ["pkg", "info"] not in host.calls  # nothing can be installed before pkg exists
    assert changes(log)[0] == "pkg bootstrap -y"


@pytest.mark.parametrize("manifest, reason", [
    ("sudo-password.toml", "sudo: a password is required"),
    ("sudo-missing.toml", "sh: sudo: not found"),
])
def test_freebsd_bootstrap_without_sudo_is_refused_before_anything(manifest, reason):
    host = freebsd("facts-fresh-root.toml", "facts-prepared-user.toml", manifest,
                   "bootstrap-fresh-root.toml")
    facts = gather_facts(host)
    host.calls.clear()
    with pytest.raises(BootstrapError) as caught:
        bootstrap(host, "bsd13", facts)
    message = str(caught.value)
    assert message.startswith("host bsd13: bootstrap: user bench has no passwordless sudo")
    assert f"(sudo -n true: {reason})" in message
    assert host.calls == [["sudo", "-n", "true"]]  # nothing looked at, nothing changed


def test_freebsd_bootstrap_as_user_with_sudo_prefixes_changes(tmp_path):
    # The same recorded answers, with sudo granted: every change goes through `sudo -n`.
    lines = ["[[command]]", 'argv = ["sudo", "-n", "true"]', ""]
    for entry in ("pkg rquery %dn python3", "pkg install -y python3 py311-psutil py311-pytest "
                  "gmake", "pw useradd -n papaya -c 'papaya-bench service' -d /nonexistent "
                  "-s /usr/sbin/nologin"):
        argv = ["sudo", "-n", *shlex.split(entry)]
        lines += ["[[command]]", f"argv = {json.dumps(argv)}", ""]
    (tmp_path / "sudo-ok.toml").write_text("\n".join(lines))
    host = RecordedHost(FREEBSD / "facts-fresh-root.toml", FREEBSD / "facts-prepared-user.toml",
                        FREEBSD / "bootstrap-fresh-root.toml", tmp_path / "sudo-ok.toml")
    facts = gather_facts(host)
    facts["python"] = None  # python3 not installed yet: the flavour comes from the repository
    host.calls.clear()
    # The recorded rquery answer (python311) is replayed for the sudo'ed argv too.
    host._answers[("sudo", "-n", "pkg", "rquery", "%dn", "python3")] = \
        host._answers[("pkg", "rquery", "%dn", "python3")]
    log = bootstrap(host, "bsd13", facts)
    assert changes(log) == [
        "sudo -n pkg install -y python3 py311-psutil py311-pytest gmake",
        "sudo -n pw useradd -n papaya -c 'papaya-bench service' -d /nonexistent "
        "-s /usr/sbin/nologin",
    ]


def test_dry_run_runs_queries_only():
    host = freebsd("facts-fresh-root.toml", "bootstrap-fresh-root.toml")
    facts = gather_facts(host)
    host.calls.clear()
    log = bootstrap(host, "bsd13", facts, dry_run=True)
    assert ["pkg", "install", "-y", "python3", "py311-psutil", "py311-pytest", "gmake"] \
        not in host.calls
    assert all(step.get("skipped") == "dry run" for step in log if step.get("kind") == "change")
    assert changes(log)[0] == "pkg install -y python3 py311-psutil py311-pytest gmake"


def test_unsupported_os_is_a_clear_error():
    facts = {"os": "Linux", "os_id": "alpine", "os_like": [], "os_release": "Alpine Linux v3.19",
             "is_root": True, "user": "root"}
    assert package_family(facts) == "unsupported"
    with pytest.raises(BootstrapError, match="host a: bootstrap: no package manager known for "
                                             "Alpine"):
        bootstrap(RecordedHost(FREEBSD / "sudo-missing.toml"), "a", facts)


# ---------------------------------------------------------------------- Debian recordings


def debian(name: str, *manifests: str) -> RecordedHost:
    return RecordedHost(*(DEBIAN / name / m for m in manifests), name=name)


def test_debian_amd64_recording_replays_to_the_recorded_facts():
    recorded = json.loads((DEBIAN / "bookworm-amd64" / "facts.json").read_text())
    assert gather_facts(debian("bookworm-amd64", "facts.toml")) == recorded
    assert recorded["os_id"] == "debian" and recorded["long_bit"] == 64
    assert recorded["make"].startswith("GNU Make") and recorded["bmake"].startswith("bmake ")


def test_debian_amd64_dry_run_bootstrap_recording():
    host = debian("bookworm-amd64", "facts.toml", "bootstrap-dry-run.toml")
    facts = gather_facts(host)
    host.calls.clear()
    log = bootstrap(host, "local", facts, dry_run=True)
    assert host.calls[0][:3] == ["dpkg-query", "-W", "-f"]
    assert host.calls[0][4:] == list(APT_PACKAGES)
    assert all("skipped" in step for step in log if step.get("kind") == "change")


I386 = DEBIAN / "bookworm-i386"


@pytest.mark.skipif(not (I386 / "facts.toml").is_file(), reason="i386 recording not captured")
def test_debian_i386_recording_is_a_32_bit_host():
    facts = gather_facts(debian("bookworm-i386", "facts.toml"))
    assert facts["arch"] == "i686" and facts["long_bit"] == 32
    assert facts["os_release"].startswith("Debian GNU/Linux 12")
    assert facts["gcc"] is None and facts["python"] is None  # minbase: nothing yet
    after = gather_facts(debian("bookworm-i386", "facts-after.toml"))
    assert after["gcc"] and after["python"] and after["psutil"] and after["bmake"]
    assert after["long_bit"] == 32


@pytest.mark.skipif(not (I386 / "bootstrap.toml").is_file(), reason="i386 recording missing")
def test_debian_i386_bootstrap_recording_installs_the_missing_packages():
    host = debian("bookworm-i386", "facts.toml", "bootstrap.toml")
    facts = gather_facts(host)
    host.calls.clear()
    log = bootstrap(host, "kali-like", facts)
    commands = changes(log)
    assert commands[0] == "apt-get update"
    assert commands[1].startswith("env DEBIAN_FRONTEND=noninteractive apt-get install -y "
                                  "--no-install-recommends ")
    assert set(commands[1].split()[6:]) == set(APT_PACKAGES)  # minbase had none of them
    assert commands[2].startswith("useradd --system")
    install = next(step for step in log if "apt-get install" in step.get("cmd", ""))
    assert install["returncode"] == 0 and "Setting up" in install["output_tail"]


# ---------------------------------------------------------------------- this machine


def test_gather_facts_on_localhost_matches_local_facts():
    host = LocalHost()
    remote = gather_facts(host)
    local = local_facts(host)
    for key in SHARED_KEYS:
        assert remote[key] == local[key], key
    assert remote["long_bit"] == (64 if platform.architecture()[0] == "64bit" else 32)
    assert set(EXTRA_KEYS) <= set(remote)
