"""The portability matrix (RQ3): native, Zig and Go builds, and the checks run on them."""

from experiments.portability.run import PARTS, run_portability

__all__ = ["PARTS", "run_portability"]
