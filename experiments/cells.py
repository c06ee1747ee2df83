"""Cells: one measured run of one combination of factors.

A cell's id is derived from its factors alone, so the same config always yields the same
ids and ``--resume`` can match what is on disk to what is still to do.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any

from experiments.config import ExperimentConfig

WORKLOAD_SINK = "sink"


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


def cell_id(factors: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(factors, sort_keys=True).encode()).hexdigest()[:6]
    return (
        f"{factors['server']}-{factors['workload']}-c{factors['connections']:04d}"
        f"-cpu{factors['cpus']}-r{factors['repetition']}-{digest}"
    )


def plan_cells(config: ExperimentConfig) -> list[Cell]:
    """Every cell of the config, in a random order fixed by the config's seed.

    Random order spreads slow drifts of the machine (thermal, background jobs) over all
    servers and levels instead of biasing whichever ran last.
    """
    factor_sets = [
        {
            "server": server,
            "workload": WORKLOAD_SINK,
            "connections": connections,
            "bandwidth_bps": config.bandwidth_bps,
            "message": config.message,
            "cpus": cpus,
            "repetition": repetition,
        }
        for repetition in range(1, config.repetitions + 1)
        for server in config.servers
        for connections in config.connections
        for cpus in config.cpus
    ]
    random.Random(config.seed).shuffle(factor_sets)
    return [Cell(cell_id(f), order, f) for order, f in enumerate(factor_sets)]
