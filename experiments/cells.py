"""Cells: one measured run of one combination of factors.

A cell's id is derived from its factors alone, so the same config always yields the same
ids and ``--resume`` can match what is on disk to what is still to do.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from dataclasses import dataclass
from typing import Any

from experiments.config import ExperimentConfig
from experiments.server_registry import FACTOR_DEFAULTS, NOT_APPLICABLE

WORKLOAD_SINK = "sink"
WORKLOAD_CHAT = "chat"


@dataclass(frozen=True)
class Cell:
    id: str
    order: int
    factors: dict[str, Any]

    @property
    def server(self) -> str:
        return self.factors["server"]

    @property
    def connections(self) -> int:
        return self.factors["connections"]

    @property
    def cpus(self) -> int:
        return self.factors["cpus"]


# Short tags for ablation factors away from the paper's setting, so ids stay readable.
_TAGS = {"output": "out-{}", "read_buffer": "buf{}", "gogc": "gogc-{}", "gomaxprocs": "gmp{}"}


def cell_id(factors: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(factors, sort_keys=True).encode()).hexdigest()[:6]
    tags = "".join(
        "-" + template.format(factors[name])
        for name, template in _TAGS.items()
        if factors.get(name, FACTOR_DEFAULTS[name]) not in (FACTOR_DEFAULTS[name], NOT_APPLICABLE)
    )
    return (
        f"{factors['server']}-{factors['workload']}-c{factors['connections']:04d}"
        f"-cpu{factors['cpus']}{tags}-r{factors['repetition']}-{digest}"
    )


def plan_cells(config: ExperimentConfig, server_factors: dict[str, set[str]] | None = None
               ) -> list[Cell]:
    """Every cell of the config, in a random order fixed by the config's seed.

    ``server_factors`` says which ablation factors each server takes (from its descriptor);
    the others are "n/a" for it, so C is not run once per Go garbage-collector setting.
    Random order spreads slow drifts of the machine (thermal, background jobs) over all
    servers and levels instead of biasing whichever ran last.
    """
    ablations = {"output": config.output, "read_buffer": config.read_buffer,
                 "gogc": config.gogc, "gomaxprocs": config.gomaxprocs}
    factor_sets: list[dict[str, Any]] = []
    for repetition in range(1, config.repetitions + 1):
        for server in config.servers:
            takes = (server_factors or {}).get(server, set(ablations))
            choices = {name: values if name in takes else (NOT_APPLICABLE,)
                       for name, values in ablations.items()}
            for connections, cpus, *levels in itertools.product(
                    config.connections, config.cpus, *choices.values()):
                factors = {
                    "server": server,
                    "workload": WORKLOAD_SINK,
                    "connections": connections,
                    "bandwidth_bps": config.bandwidth_bps,
                    "message": config.message,
                    "cpus": cpus,
                    **dict(zip(choices, levels, strict=True)),
                    "repetition": repetition,
                }
                if factors not in factor_sets:
                    factor_sets.append(factors)
    if config.chat is not None:
        factor_sets += _chat_factor_sets(config)
    random.Random(config.seed).shuffle(factor_sets)
    return [Cell(cell_id(f), order, f) for order, f in enumerate(factor_sets)]


def _chat_factor_sets(config: ExperimentConfig) -> list[dict[str, Any]]:
    chat = config.chat
    assert chat is not None
    return [
        {
            "server": server,
            "workload": WORKLOAD_CHAT,
            "connections": connections,
            "bandwidth_bps": None,
            "message": None,
            "message_rate": chat.message_rate,
            "message_size": chat.message_size,
            "history": chat.history,
            "cpus": cpus,
            **{name: NOT_APPLICABLE for name in FACTOR_DEFAULTS},
            "repetition": repetition,
        }
        for repetition in range(1, chat.repetitions + 1)
        for server in chat.servers
        for connections in chat.connections
        for cpus in config.cpus
    ]
