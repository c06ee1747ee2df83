"""The chat section of the report, from a run written in the data/README.md format."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from analysis import chat
from analysis.rawdata import load_run
from experiments.tracer import COLUMNS


def write_chat_run(raw: Path) -> str:
    run_id = "20261123-000000-chat-test"
    run = raw / run_id
    run.mkdir(parents=True)
    cells = []
    for server, p50 in (("chat-c", 0.0004), ("chat-go", 0.0002)):
        for connections in (4, 16):
            for rep in (1, 2):
                cell_id = f"{server}-chat-c{connections:04d}-cpu1-r{rep}-abc123"
                factors = {"server": server, "workload": "chat", "connections": connections,
                           "bandwidth_bps": None, "message": None, "message_rate": 10.0,
                           "message_size": 64, "history": 7, "cpus": 1, "output": "n/a",
                           "read_buffer": "n/a", "gogc": "n/a", "gomaxprocs": "n/a",
                           "repetition": rep}
                cells.append({"id": cell_id, "order": len(cells), "factors": factors,
                              "status": "ok", "reason": None})
                directory = run / cell_id
                directory.mkdir()
                (directory / "status.json").write_text(json.dumps({
                    "id": cell_id, "factors": factors, "status": "ok", "warmup_s": 1,
                    "measure_s": 2, "sample_interval_s": 0.5,
                    "tracer": {"method": "psutil", "cpu_seconds": 0.01, "samples": 6}}))
                sent = 20 * connections
                (directory / "loadgen.json").write_text(json.dumps({
                    "tool": "papaya-loadgen", "connections": {"requested": connections,
                                                              "opened": connections,
                                                              "failed": 0},
                    "duration_s": 3.0, "bytes_sent": sent * 64, "errors": [],
                    "lines_sent": sent, "lines_expected": sent * connections,
                    "lines_received": sent * connections - (rep - 1),  # rep 2 loses one
                    "latency_s": {"p50": p50 * rep, "p90": 0.001, "p99": 0.002,
                                  "p999": 0.003, "max": 0.004}}))
                rows = [",".join(["0"] * len(COLUMNS))]
                for k in range(1, 7):
                    values = dict.fromkeys(COLUMNS, "0")
                    values.update(t_rel_s=str(k * 0.5), warmup=str(int(k <= 2)),
                                  cpu_pct=str(99 if k <= 2 else connections))
                    rows.append(",".join(values[c] for c in COLUMNS))
                (directory / "trace.csv").write_text(",".join(COLUMNS) + "\n"
                                                     + "\n".join(rows[1:]) + "\n")
    (run / "manifest.json").write_text(json.dumps({
        "schema": 1, "run_id": run_id, "source": "measured", "config_name": "chat",
        "hosts": {"local": {}}, "cells": cells}))
    return run_id


def test_chat_summary_latency_loss_and_cpu(tmp_path):
    run_id = write_chat_run(tmp_path / "raw")
    summary = chat.summarize(load_run(tmp_path, run_id))
    row = summary[(summary["server"] == "chat-c") & (summary["connections"] == 16)].iloc[0]
    assert row["repetitions"] == 2
    assert row["p50_ms"] == pytest.approx((0.4 + 0.8) / 2)  # mean over repetitions, in ms
    assert row["lines_sent"] == 2 * 320 and row["lines_expected"] == 2 * 320 * 16
    assert row["lines_undelivered"] == 1
    assert row["cpu_pct"] == pytest.approx(16)  # warm-up samples (99%) left out
    table = chat.table(summary)
    assert len(table.rows) == 4 and table.breaks == [2]
    section = chat.section(summary, lambda t: "TABLE\n")
    assert "\\texttt{chat-go} delivered lines with a median latency of 0.30~ms" in section
    assert "1 of 10240 deliveries had not arrived" in section


def test_figure_and_empty_run(tmp_path):
    run_id = write_chat_run(tmp_path / "raw")
    paths = chat.figure(chat.summarize(load_run(tmp_path, run_id)), tmp_path / "fig")
    assert sorted(p.suffix for p in paths) == [".pdf", ".png"]
    assert all(p.stat().st_size > 5000 for p in paths)
    assert chat.figure(pd.DataFrame(), tmp_path / "none") == []
    assert "no chat cells" in chat.section(pd.DataFrame(), str)
