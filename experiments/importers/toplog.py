"""Parse batch output of `top` into one sample per screen; no I/O beyond reading the text.

Two formats, told apart by how a screen starts:

- FreeBSD ``top -CIbtu -s 0.5``: a screen starts at ``last pid:``; the host line is
  ``CPU: 1.2% user, 0.0% nice, 2.0% system, 0.4% interrupt, 96.4% idle`` (one ``CPU N:`` line
  per CPU with ``-P``); the process column is ``CPU`` (raw, ``-C``) or ``WCPU`` (weighted),
  a percentage like ``1.37%``; ``THR`` is the thread count; ``RES`` carries a K/M/G suffix.
- Linux procps ``top -b -d 0.5``: a screen starts at ``top - ``; the host line is
  ``%Cpu(s): 1.2 us, 2.0 sy, 0.0 ni, 96.4 id, 0.0 wa, 0.0 hi, 0.4 si, 0.0 st`` (procps 3.2's
  ``Cpu(s): 1.2%us, ...`` and per-CPU ``%Cpu0 :`` lines too); the process column is ``%CPU``;
  ``RES`` is KiB unless it carries an m/g/t/p suffix; ``nTH`` (threads) only when configured.

Columns are found by name in each screen's table header (``PID ... COMMAND``), so extra or
reordered columns (``C`` on SMP FreeBSD, ``USERNAME`` instead of ``UID``, ``JID``) parse too;
COMMAND must be the last column because it is the only one that may contain spaces.

Per screen the sample is the exact (decimal) sum of the CPU column over the rows whose command
is the server's; a screen without such a row is kept and flagged (``matched == 0``). Every
problem is collected with its file and line number; the caller decides what to do with them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

FREEBSD = "freebsd"
PROCPS = "procps"
FORMATS = (FREEBSD, PROCPS)

SCREEN_START = {FREEBSD: re.compile(r"^last pid:"), PROCPS: re.compile(r"^top - ")}
FORMAT_HINT = {FREEBSD: "FreeBSD `top -b` ('last pid:')", PROCPS: "procps `top -b` ('top - ')"}
# The kernel truncates a process name to this many characters (Linux TASK_COMM_LEN - 1,
# FreeBSD MAXCOMLEN), and top shows the truncated name.
COMMAND_NAME_LIMIT = {FREEBSD: 19, PROCPS: 15}

CPU_LINE = {
    FREEBSD: re.compile(r"^CPU( \d+)?:"),
    PROCPS: re.compile(r"^%?Cpu(\(s\)|\d+)\s*:"),
}
_NUMBER = r"(\d+(?:[.,]\d+)?)"
CPU_FIELD = {
    FREEBSD: re.compile(_NUMBER + r"%\s+(user|nice|system|interrupt|idle)\b"),
    PROCPS: re.compile(_NUMBER + r"\s*%?\s*(us|sy|ni|id|wa|hi|si|st)\b"),
}
CPU_REQUIRED = {FREEBSD: ("user", "nice", "system", "interrupt", "idle"),
                PROCPS: ("us", "sy", "id")}
CPU_COLUMNS = {FREEBSD: ("CPU", "WCPU"), PROCPS: ("%CPU",)}
THREAD_COLUMNS = ("THR", "nTH")
CLOCK = {
    FREEBSD: re.compile(r"(?:^|\s)(\d{1,2}):(\d{2}):(\d{2})\s*$"),
    PROCPS: re.compile(r"^top - (\d{1,2}):(\d{2}):(\d{2})\b"),
}
PERCENT = re.compile(r"^" + _NUMBER + r"%?$")
MEMORY = re.compile(r"^" + _NUMBER + r"([BKMGTPbkmgtp]?)$")
MEMORY_FACTOR = {"": 1024, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4,
                 "p": 1024**5}
HOST_KEYS = ("host_user_pct", "host_system_pct", "host_softirq_pct", "host_idle_pct")


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None  # 1-based; None for a problem of the whole file
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else \
            f"{self.path}: {self.message}"


@dataclass(frozen=True)
class Screen:
    index: int  # 1-based: the screen ends index × interval after top started
    line: int  # line number of the screen's first line
    clock: str | None  # HH:MM:SS from the screen's first line, when shown
    cpu_pct: Decimal  # exact sum of the CPU column over the matching rows
    matched: int  # matching rows (processes)
    rss_bytes: int | None  # summed RES of the matching rows; None without a RES column
    n_threads: int | None  # summed THR/nTH of the matching rows; None without such a column
    host: dict[str, float | None]  # HOST_KEYS; None where the format has no such field


@dataclass
class TopLog:
    path: str
    format: str | None = None
    cpu_column: str | None = None
    screens: list[Screen] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def no_match(self) -> int:
        return sum(1 for s in self.screens if s.matched == 0)

    def clock_elapsed_s(self) -> float | None:
        """Seconds from the first screen's clock to the last one's (midnight wraps forward)."""
        seconds = [_clock_seconds(s.clock) for s in self.screens if s.clock]
        if len(seconds) < 2:
            return None
        total = 0
        for before, after in zip(seconds, seconds[1:], strict=False):
            total += (after - before) % 86400
        return float(total)


def _clock_seconds(clock: str) -> int:
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def _decimal(text: str) -> Decimal:
    return Decimal(text.replace(",", "."))


def parse_percent(text: str) -> Decimal | None:
    match = PERCENT.match(text)
    return _decimal(match.group(1)) if match else None


def parse_memory(text: str) -> int | None:
    """top's RES as bytes: K/M/G/T/P suffixes are binary; no suffix is KiB (both formats)."""
    match = MEMORY.match(text)
    if not match:
        return None
    return int(round(_decimal(match.group(1)) * MEMORY_FACTOR[match.group(2).lower()]))


def command_matches(command: str, name: str, fmt: str) -> bool:
    """The COMMAND cell names the server: exactly, or as the first word's basename (top -c/-a
    shows the command line), or as the kernel's truncation of a long name."""
    command = command.strip()
    first = command.split()[0] if command else ""
    candidates = {command, first, first.rsplit("/", 1)[-1]}
    limit = COMMAND_NAME_LIMIT[fmt]
    return name in candidates or (len(name) > limit and name[:limit] in candidates)


def detect_format(lines: list[str]) -> tuple[str | None, str | None]:
    """(format, None) or (None, why not)."""
    found = [fmt for fmt in FORMATS if any(SCREEN_START[fmt].match(line) for line in lines)]
    if len(found) == 1:
        return found[0], None
    if found:
        return None, ("mixes FreeBSD ('last pid:') and procps ('top - ') screens; "
                      "import each top's output as its own file")
    first = next((line.strip() for line in lines if line.strip()), "")
    return None, ("not batch output of top: no line starts with 'last pid:' (FreeBSD "
                  f"`top -b`) or 'top - ' (procps `top -b`); first line: {first[:80]!r}")


def parse_host_cpu(lines: list[str], fmt: str) -> dict[str, float | None] | None:
    """Host-wide CPU split from the CPU line(s); per-CPU lines are averaged (all CPUs weigh
    the same). None when no line has the fields the format requires."""
    blocks: list[dict[str, Decimal]] = []
    for line in lines:
        block: dict[str, Decimal] = {}
        for value, key in CPU_FIELD[fmt].findall(line):
            if key in block:  # procps can print two CPUs on one line
                blocks.append(block)
                block = {}
            block[key] = _decimal(value)
        blocks.append(block)
    if not blocks or any(not all(k in b for k in CPU_REQUIRED[fmt]) for b in blocks):
        return None

    def mean(values: list[Decimal | None]) -> float | None:
        if any(v is None for v in values):
            return None
        return round(float(sum(values) / len(values)), 3)  # type: ignore[arg-type]

    if fmt == FREEBSD:  # interrupt (hard and soft) is FreeBSD's nearest to Linux's softirq
        parts = {
            "host_user_pct": [b["user"] + b["nice"] for b in blocks],
            "host_system_pct": [b["system"] for b in blocks],
            "host_softirq_pct": [b["interrupt"] for b in blocks],
            "host_idle_pct": [b["idle"] for b in blocks],
        }
    else:  # as the tracer: user includes nice, idle includes iowait
        parts = {
            "host_user_pct": [b["us"] + b.get("ni", Decimal(0)) for b in blocks],
            "host_system_pct": [b["sy"] for b in blocks],
            "host_softirq_pct": [b.get("si") for b in blocks],
            "host_idle_pct": [b["id"] + b.get("wa", Decimal(0)) for b in blocks],
        }
    return {key: mean(values) for key, values in parts.items()}  # type: ignore[arg-type]


def _parse_screen(log: TopLog, lines: list[str], first: int, index: int, fmt: str,
                  command: str) -> None:
    """Parse ``lines`` (the screen, starting at 0-based line ``first``) into log.screens."""
    def problem(offset: int | None, message: str) -> None:
        line = first + 1 + (offset if offset is not None else 0)
        log.problems.append(Problem(log.path, line, f"screen {index}: {message}"))

    header_at = next((k for k, line in enumerate(lines)
                      if line.split()[:1] == ["PID"] and "COMMAND" in line.split()), None)
    if header_at is None:
        problem(None, "no process table header (a line 'PID ... COMMAND') before the next "
                      "screen or the end of the file (a truncated screen?)")
        return
    cpu_lines = [(k, line) for k, line in enumerate(lines[1:header_at], start=1)
                 if CPU_LINE[fmt].match(line)]
    host = parse_host_cpu([line for _, line in cpu_lines], fmt) if cpu_lines else None
    if not cpu_lines:
        problem(None, "no host CPU line ('CPU:' / '%Cpu(s):') in the screen's header")
    elif host is None:
        problem(cpu_lines[0][0], f"host CPU line not understood: {cpu_lines[0][1].strip()!r}")

    columns = lines[header_at].split()
    cpu_name = next((c for c in CPU_COLUMNS[fmt] if c in columns), None)
    if cpu_name is None or columns[-1] != "COMMAND":
        wanted = " or ".join(CPU_COLUMNS[fmt])
        problem(header_at, f"process table header needs a {wanted} column and COMMAND last: "
                           f"{lines[header_at].strip()!r}")
        return
    if log.cpu_column is None:
        log.cpu_column = cpu_name
    elif log.cpu_column != cpu_name:
        problem(header_at, f"CPU column {cpu_name} where earlier screens have {log.cpu_column}")
    cpu_at = columns.index(cpu_name)
    res_at = columns.index("RES") if "RES" in columns else None
    thr_at = next((columns.index(c) for c in THREAD_COLUMNS if c in columns), None)

    total, matched, rss, threads, bad = Decimal(0), 0, 0, 0, False
    for k in range(header_at + 1, len(lines)):
        row = lines[k]
        if not row.strip():
            continue
        fields = row.split(None, len(columns) - 1)
        if len(fields) < len(columns):
            problem(k, f"process row has {len(fields)} fields where the header has "
                       f"{len(columns)} columns: {row.strip()!r}")
            bad = True
            continue
        cpu = parse_percent(fields[cpu_at])
        res = parse_memory(fields[res_at]) if res_at is not None else None
        thr = fields[thr_at] if thr_at is not None else None
        errors = []
        if cpu is None:
            errors.append(f"{cpu_name} value {fields[cpu_at]!r} is not a percentage")
        if res_at is not None and res is None:
            errors.append(f"RES value {fields[res_at]!r} is not a size")
        if thr is not None and not thr.isdigit():
            errors.append(f"{columns[thr_at]} value {thr!r} is not a count")  # type: ignore[index]
        if errors:
            problem(k, f"{'; '.join(errors)}: {row.strip()!r}")
            bad = True
            continue
        if command_matches(fields[-1], command, fmt):
            total += cpu
            matched += 1
            rss += res or 0
            threads += int(thr) if thr is not None else 0
    if bad or host is None:
        return
    clock = CLOCK[fmt].search(lines[0])
    log.screens.append(Screen(
        index=index, line=first + 1,
        clock=f"{int(clock.group(1)):02d}:{clock.group(2)}:{clock.group(3)}" if clock else None,
        cpu_pct=total, matched=matched,
        rss_bytes=rss if res_at is not None else None,
        n_threads=threads if thr_at is not None else None,
        host=host,
    ))


def parse_top_text(text: str, command: str, path: str = "<text>") -> TopLog:
    """Every screen of one top log; ``log.problems`` lists whatever could not be parsed."""
    log = TopLog(path=path)
    if not text.strip():
        log.problems.append(Problem(path, None, "empty file: no top screens to import"))
        return log
    lines = text.splitlines()
    fmt, why = detect_format(lines)
    if fmt is None:
        log.problems.append(Problem(path, None, why or "unknown format"))
        return log
    log.format = fmt
    starts = [k for k, line in enumerate(lines) if SCREEN_START[fmt].match(line)]
    stray = next((k for k in range(starts[0]) if lines[k].strip()), None)
    if stray is not None:
        log.problems.append(Problem(path, stray + 1, (
            f"text before the first {FORMAT_HINT[fmt]} screen: {lines[stray].strip()[:80]!r} "
            f"(remove it; the first screen starts at line {starts[0] + 1})")))
    for index, (begin, end) in enumerate(zip(starts, [*starts[1:], len(lines)], strict=True),
                                         start=1):
        _parse_screen(log, lines[begin:end], begin, index, fmt, command)
    return log


def parse_top_file(path: Path, command: str, display: str | None = None) -> TopLog:
    return parse_top_text(path.read_bytes().decode("utf-8", errors="replace"), command,
                          display or str(path))
