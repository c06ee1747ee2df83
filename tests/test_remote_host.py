"""RemoteHost over real SSH to a loopback sshd: commands, processes, files, and refusals."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from infra.hosts import HostError
from infra.remote import RemoteHost
from tests.ssh_util import SshdInfo, free_port, keygen, loopback_sshd, sshd_unavailable_reason

pytestmark = pytest.mark.skipif(sshd_unavailable_reason() is not None,
                                reason=sshd_unavailable_reason() or "")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdInfo]:
    with loopback_sshd(tmp_path_factory.mktemp("sshd")) as info:
        yield info


@pytest.fixture
def host(sshd: SshdInfo) -> Iterator[RemoteHost]:
    remote = RemoteHost("loopback", "127.0.0.1", port=sshd.port, user=sshd.user,
                        key_file=sshd.key_file, known_hosts=sshd.known_hosts)
    yield remote
    remote.close()


def test_run_quotes_arguments_and_passes_env_and_cwd(host: RemoteHost, tmp_path: Path) -> None:
    result = host.run(["sh", "-c", 'printf "%s|%s|%s" "$1" "$PAPAYA_X" "$(pwd)"', "sh",
                       "a b; rm -rf /nonexistent"], env={"PAPAYA_X": "it's"}, cwd=tmp_path)
    assert result.stdout == f"a b; rm -rf /nonexistent|it's|{tmp_path}"


def test_failing_command_names_host_and_command(host: RemoteHost) -> None:
    with pytest.raises(HostError, match=r"loopback: sh -c 'exit 3' exited with 3"):
        host.run(["sh", "-c", "exit 3"])
    assert host.run(["sh", "-c", "exit 3"], check=False).returncode == 3


def test_which_and_scratch(host: RemoteHost) -> None:
    assert host.which("sh")
    assert host.which("no-such-program-papaya") is None
    # Root's scratch is outside /root so that a server dropping privileges reaches its files.
    expected = "/var/lib/papaya-bench" if host.user == "root" else ".papaya-bench"
    assert str(host.scratch).endswith(expected)
    assert abs(host.clock_offset_s) < 1.0  # same machine


def test_start_wait_fetches_output_and_exit_code(host: RemoteHost, tmp_path: Path) -> None:
    out, err = tmp_path / "out", tmp_path / "err"
    process = host.start(["sh", "-c", "echo hello; echo oops >&2; exit 7"], stdout=out,
                         stderr=err)
    assert process.wait(10) == 7
    assert out.read_text() == "hello\n" and err.read_text() == "oops\n"


def test_start_pins_cpus_and_reports_the_commands_pid(host: RemoteHost, tmp_path: Path) -> None:
    cpu = sorted(psutil.Process().cpu_affinity())[-1]
    process = host.start(["sleep", "30"], cpus=[cpu], stdout=tmp_path / "o")
    try:
        proc = psutil.Process(process.pid)
        assert proc.name() == "sleep"
        assert proc.cpu_affinity() == [cpu]
        assert process.poll() is None
    finally:
        code = process.stop(grace_s=2)
    assert code is not None and code != 0
    assert not psutil.pid_exists(process.pid) or psutil.Process(process.pid).status() == "zombie"


def test_stop_kills_the_whole_tree(host: RemoteHost, tmp_path: Path) -> None:
    # A parent that ignores SIGTERM and a child: both must be gone after stop().
    process = host.start(["sh", "-c", "trap '' TERM; sleep 60 & echo $! > child; wait"],
                         cwd=tmp_path)
    deadline = time.monotonic() + 5
    while not (tmp_path / "child").is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int((tmp_path / "child").read_text())
    process.stop(grace_s=1)
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie"


def test_put_get_and_put_tree(host: RemoteHost, tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "a.c").write_text("int x;\n")
    (source / "build").mkdir()
    (source / "build" / "junk.o").write_text("junk")
    (source / "run.sh").write_text("#!/bin/sh\necho ran\n")
    (source / "run.sh").chmod(0o755)
    target = host.scratch / "test-tree"
    host.put_tree(source, target)
    listing = host.run(["sh", "-c", f"cd {target} && find . -type f | sort"]).stdout.split()
    assert listing == ["./run.sh", "./sub/a.c"]  # build/ is never uploaded
    assert host.run([str(target / "run.sh")]).stdout == "ran\n"
    host.get(target / "sub" / "a.c", tmp_path / "back.c")
    assert (tmp_path / "back.c").read_text() == "int x;\n"
    host.put(tmp_path / "back.c", target / "deep" / "copy.c")
    assert host.run(["cat", str(target / "deep" / "copy.c")]).stdout == "int x;\n"


def test_unknown_host_key_is_refused(sshd: SshdInfo, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    remote = RemoteHost("stranger", "127.0.0.1", port=sshd.port, key_file=sshd.key_file,
                        known_hosts=empty)
    with pytest.raises(HostError, match=r"stranger .*connect: host key not in .*ssh-keyscan"):
        remote.run(["true"])


def test_changed_host_key_is_refused(sshd: SshdInfo, tmp_path: Path) -> None:
    other = keygen(tmp_path / "other")
    public = Path(f"{other}.pub").read_text().split()
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{sshd.port} {public[0]} {public[1]}\n")
    remote = RemoteHost("impostor", "127.0.0.1", port=sshd.port, key_file=sshd.key_file,
                        known_hosts=wrong)
    with pytest.raises(HostError, match=r"impostor .*host key mismatch"):
        remote.run(["true"])


def test_wrong_client_key_is_refused(sshd: SshdInfo, tmp_path: Path) -> None:
    remote = RemoteHost("locked", "127.0.0.1", port=sshd.port, key_file=keygen(tmp_path / "k"),
                        known_hosts=sshd.known_hosts)
    with pytest.raises(HostError, match=r"locked .*connect: key .* refused"):
        remote.run(["true"])


def test_unreachable_host_is_a_clear_error(sshd: SshdInfo) -> None:
    remote = RemoteHost("nowhere", "127.0.0.1", port=free_port(), key_file=sshd.key_file,
                        known_hosts=sshd.known_hosts, connect_timeout=2)
    with pytest.raises(HostError, match=r"nowhere .*connect: cannot reach the host"):
        remote.run(["true"])
    assert not remote.is_reachable()


def test_dropped_connection_fails_the_command_with_the_reason(host: RemoteHost,
                                                             sshd: SshdInfo) -> None:
    host.run(["true"])
    # Kill every per-connection sshd process (the server side of this session) while a
    # command runs: the command fails naming the host; the next command reconnects.
    sessions = [p for p in psutil.Process(sshd.process.pid).children(recursive=True)
                if p.name() == "sshd"]
    assert sessions
    marker = host.start(["sleep", "30"])
    threading.Timer(0.5, lambda: [p.send_signal(signal.SIGKILL) for p in sessions]).start()
    with pytest.raises(HostError, match=r"loopback .*connection lost"):
        host.run(["sleep", "5"], timeout=10)
    assert host.run(["echo", "back"]).stdout == "back\n"
    # What was started before the drop is killed on reconnect, not left running.
    assert marker.wait(5) is not None
    assert not psutil.pid_exists(marker.pid) or psutil.Process(marker.pid).status() == "zombie"
