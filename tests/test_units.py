import pytest

from experiments.units import UnitError, format_bandwidth, parse_bandwidth, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("8s", 8.0), ("1m", 60.0), ("2h", 7200.0), ("1.5s", 1.5), ("3", 3.0),
     (0.25, 0.25), ("0s", 0.0)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5 parsecs", "s", "-1s", "1d", True, "1.2.3s"])
def test_bad_durations(text):
    with pytest.raises(UnitError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "bps"),
    [("1Mbps", 1e6), ("100kbps", 1e5), ("100Kbps", 1e5), ("1kBps", 8e3), ("2MBps", 16e6),
     ("1Gbps", 1e9), ("1.5Mbps", 1.5e6), (64000, 64000.0)],
)
def test_bandwidths(text, bps):
    assert parse_bandwidth(text) == pytest.approx(bps)


@pytest.mark.parametrize("text", ["1Mb", "1 mbps", "fast", "1Tbps", "-1Mbps", False])
def test_bad_bandwidths(text):
    with pytest.raises(UnitError):
        parse_bandwidth(text)


def test_format_round_trips():
    for text in ("1Mbps", "100kbps", "2Gbps", "1234567.5bps"):
        assert format_bandwidth(parse_bandwidth(text)) == text
