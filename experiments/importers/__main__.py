"""``python -m experiments.importers`` (from the project root): `invoke import-top` taking the
logs as positional arguments, which invoke cannot (it needs ``--file`` per log)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.importers.top_import import TopImportError, import_top
from experiments.rawdata import RAW_DIR, RunDirError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.importers",
                                     description=__doc__)
    parser.add_argument("files", nargs="+", metavar="FILE", help="top batch logs")
    parser.add_argument("--server", required=True)
    parser.add_argument("--connections", required=True, type=int)
    parser.add_argument("--cpus", required=True, type=int)
    parser.add_argument("--run-id")
    parser.add_argument("--command", help="COMMAND name in top (often server.bin)")
    parser.add_argument("--paper-compatible", action="store_true")
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--warmup", type=float, default=0.0)
    parser.add_argument("--raw-dir", type=Path, default=RAW_DIR)
    args = parser.parse_args(argv)
    try:
        result = import_top(args.files, server=args.server, connections=args.connections,
                            cpus=args.cpus, run_id=args.run_id, command=args.command,
                            paper_compatible=args.paper_compatible, interval_s=args.interval,
                            warmup_s=args.warmup, raw_dir=args.raw_dir, base_dirs=[Path.cwd()])
    except (TopImportError, RunDirError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(result.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
