import re
import textwrap
from pathlib import Path

import pytest

from experiments.cells import plan_cells
from experiments.config import ConfigError, load_config
from experiments.server_registry import discover_servers

VALID = """
[experiment]
name = "t"
seed = 7
repetitions = 2
warmup = "1s"
duration = "2s"
sample_interval = "250ms"
port = 50123

[load]
message = "message\\n"
bandwidth = "1Mbps"

[matrix]
servers = ["c-fork", "go-goroutine"]
connections = [1, 4]
cpus = [1]
"""

SERVERS = {"c-fork", "go-goroutine"}


def write(tmp_path, text):
    path = tmp_path / "exp.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_valid_config_parses(tmp_path):
    config = load_config(write(tmp_path, VALID), SERVERS)
    assert config.warmup_s == 1.0 and config.measure_s == 2.0
    assert config.sample_interval_s == 0.25
    assert config.bandwidth_bps == 1e6
    assert config.message == "message\n"
    assert config.connections == (1, 4)
    assert config.port == 50123
    assert config.load_duration_s == 3.0


def test_profiles_are_valid():
    known = set(discover_servers())
    for profile in ("quick", "paper"):
        config = load_config(profile, known)
        assert set(config.servers) == {"c-fork", "go-goroutine"}
    quick = load_config("quick", known)
    assert quick.connections == (1, 4, 16, 64) and quick.repetitions == 2
    assert (quick.warmup_s, quick.measure_s) == (2.0, 8.0)
    paper = load_config("paper", known)
    assert paper.connections == (1, 2, 4, 8, 16, 32, 64) and paper.measure_s == 60.0


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("connections = [1, 4]", "connections = [0, 4]", "matrix.connections = [0, 4]"),
        ('duration = "2s"', 'duration = "-2s"', "experiment.duration = '-2s'"),
        ('duration = "2s"', 'duration = "0s"', "experiment.duration = '0s'"),
        ('servers = ["c-fork", "go-goroutine"]', 'servers = ["c-fork", "rust-async"]',
         "matrix.servers = 'rust-async': expected a known server"),
        ("repetitions = 2", 'repetitions = "two"', "experiment.repetitions = 'two'"),
        ("seed = 7", "seed = 7\nthreads = 3", "unknown key experiment.threads = 3"),
        ('bandwidth = "1Mbps"', 'bandwidth = "1 megabit"', "load.bandwidth = '1 megabit'"),
        ("port = 50123", "port = 70000", "experiment.port = 70000"),
        ("[load]", "[loads]", "unknown section [loads]"),
    ],
)
def test_errors_name_file_key_value_and_expectation(tmp_path, old, new, expected):
    path = write(tmp_path, VALID.replace(old, new))
    with pytest.raises(ConfigError) as error:
        load_config(path, SERVERS)
    message = str(error.value)
    assert str(path) in message
    assert expected in message
    assert "expected" in message


def test_missing_key_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="experiment.duration is missing"):
        load_config(write(tmp_path, VALID.replace('duration = "2s"\n', "")), SERVERS)
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[experiment\n"), SERVERS)


def test_unknown_profile_lists_profiles():
    with pytest.raises(ConfigError, match="profiles: .*quick"):
        load_config("nonexistent-profile")


def test_cells_are_stable_and_seeded(tmp_path):
    config = load_config(write(tmp_path, VALID), SERVERS)
    first, second = plan_cells(config), plan_cells(config)
    assert [c.id for c in first] == [c.id for c in second]
    assert len(first) == 2 * 2 * 2
    assert len({c.id for c in first}) == len(first)
    in_grid_order = sorted(first, key=lambda c: (c.factors["repetition"], c.server,
                                                 c.connections))
    assert [c.id for c in first] != [c.id for c in in_grid_order]  # shuffled
    other_seed = load_config(write(tmp_path, VALID.replace("seed = 7", "seed = 8")), SERVERS)
    assert [c.id for c in plan_cells(other_seed)] != [c.id for c in first]
    assert {c.id for c in plan_cells(other_seed)} == {c.id for c in first}  # ids from factors


def test_loadgen_choice(tmp_path):
    text = VALID.replace("[load]", '[load]\nloadgen = "tcpkali"')
    assert load_config(write(tmp_path, text), SERVERS).generator == "tcpkali"
    with pytest.raises(ConfigError, match=r"load.loadgen = 'wrk': expected one of native, tcpkali"):
        load_config(write(tmp_path, VALID.replace("[load]", '[load]\nloadgen = "wrk"')), SERVERS)


ABLATION = VALID.replace("cpus = [1]", """cpus = [1]
output = ["paper", "discard"]
read_buffer = [1024, "default"]
gogc = ["default", "off"]
gomaxprocs = ["cpus", "1"]""")


def test_ablation_factors_cross_only_where_a_server_takes_them(tmp_path):
    config = load_config(write(tmp_path, ABLATION), SERVERS)
    assert config.read_buffer == (1024, None) and config.output == ("paper", "discard")
    takes = {name: server.factors for name, server in discover_servers().items()}
    cells = plan_cells(config, takes)
    c_cells = [c for c in cells if c.server == "c-fork"]
    go_cells = [c for c in cells if c.server == "go-goroutine"]
    # 2 connection levels × 2 repetitions × output 2 × buffer 2, and × gogc 2 × gomaxprocs 2 for Go
    assert len(c_cells) == 2 * 2 * 2 * 2
    assert len(go_cells) == 2 * 2 * 2 * 2 * 2 * 2
    assert {c.factors["gogc"] for c in c_cells} == {"n/a"}
    assert {c.factors["gomaxprocs"] for c in go_cells} == {"cpus", "1"}
    assert len({c.id for c in cells}) == len(cells)
    tagged = [c.id for c in go_cells if c.factors["gogc"] == "off"
              and c.factors["output"] == "discard" and c.factors["read_buffer"] == 1024]
    assert tagged and all("-out-discard-buf1024-gogc-off" in i for i in tagged)


@pytest.mark.parametrize(
    ("line", "expected"),
    [('output = ["loud"]', "matrix.output = ['loud']"),
     ("read_buffer = [0]", "matrix.read_buffer = [0]"),
     ('gogc = ["on"]', "matrix.gogc = ['on']"),
     ("gomaxprocs = [1]", "matrix.gomaxprocs = [1]")],
)
def test_bad_ablation_values(tmp_path, line, expected):
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_config(write(tmp_path, VALID.replace("cpus = [1]", f"cpus = [1]\n{line}")), SERVERS)


def test_factor_values_become_server_args_and_env():
    servers = discover_servers()
    factors = {"output": "same", "read_buffer": 4096, "gogc": "off", "gomaxprocs": "cpus",
               "cpus": 2}
    go = servers["go-goroutine"]
    assert go.start_argv(Path("/b"), 7, factors)[1:] == [
        "--port", "7", "--output", "same", "--buffer-size", "4096"]
    env = go.start_env(factors)
    assert env["GOGC"] == "off" and env["GOMEMLIMIT"] and env["GOMAXPROCS"] == "2"
    paper = {"output": "paper", "read_buffer": None, "gogc": "default", "gomaxprocs": "1",
             "cpus": 1}
    assert go.start_argv(Path("/b"), 7, paper)[1:] == ["--port", "7"]  # the original's run
    assert go.start_env(paper)["GOGC"] == ""  # the runner's own GOGC never leaks in
    assert servers["c-fork"].start_env(factors) == {}


CHAT = VALID + """
[chat]
servers = ["chat-c", "chat-go"]
connections = [4, 16]
message_rate = 10
repetitions = 1
"""


def test_chat_sweep_adds_chat_cells_with_their_own_repetitions(tmp_path):
    config = load_config(write(tmp_path, CHAT), SERVERS, {"chat-c", "chat-go"})
    assert config.chat.message_size == 64 and config.chat.history == 7
    cells = plan_cells(config)
    chat = [c for c in cells if c.factors["workload"] == "chat"]
    assert len(chat) == 2 * 2 * 1 and len(cells) == 8 + 4
    assert {c.factors["message_rate"] for c in chat} == {10.0}
    assert all(c.factors["gogc"] == "n/a" and c.factors["bandwidth_bps"] is None for c in chat)


def test_chat_errors_and_chat_only_profiles(tmp_path):
    with pytest.raises(ConfigError, match=r"chat.servers = 'chat-rust': expected a known chat"):
        load_config(write(tmp_path, CHAT.replace('"chat-go"', '"chat-rust"')), SERVERS,
                    {"chat-c", "chat-go"})
    with pytest.raises(ConfigError, match=r"chat.message_rate = 0"):
        load_config(write(tmp_path, CHAT.replace("message_rate = 10", "message_rate = 0")),
                    SERVERS, {"chat-c", "chat-go"})
    chat_only = load_config("chat", set(SERVERS), {"chat-c", "chat-go"})
    assert chat_only.servers == () and chat_only.chat.connections[-1] == 256
    with pytest.raises(ConfigError, match="matrix.servers = \\[\\]"):
        load_config(write(tmp_path, VALID.replace('["c-fork", "go-goroutine"]', "[]")), SERVERS)
