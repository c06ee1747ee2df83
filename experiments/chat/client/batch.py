"""The non-interactive modes for scripts: --send TEXT and --listen."""

from __future__ import annotations

import queue
import sys
import time

from .config import ClientConfig, line_bytes
from .net import EXIT_CODES, Connection, Failed, Line
from .protocol import MAX_LINE


class BatchError(Exception):
    pass


def message_lines(username: str, texts: list[str]) -> list[bytes]:
    """The protocol lines for ``texts`` (a text with newlines is several messages)."""
    lines = []
    for text in texts:
        for part in text.split("\n"):
            if not part.strip():
                continue
            line = line_bytes(username, part)
            if len(line) > MAX_LINE:
                raise BatchError(f"message too long: {len(line)} bytes as a line; at most "
                                 f"{MAX_LINE} with '{username}: ' and the newline")
            lines.append(line)
    return lines


def run_batch(config: ClientConfig, key: bytes, lines: list[bytes], *, listen: bool,
              timeout: float, err=None) -> int:
    """Send ``lines``, wait until each has come back from the server (so it is in the log),
    then, with ``listen``, print every line received until the connection ends.

    Returns the exit status; problems are printed on ``err`` (stderr)."""
    err = err or sys.stderr
    out = sys.stdout.buffer
    conn = Connection(config, key, notify=lambda: None)
    conn.start()
    for line in lines:
        conn.send(line)
    confirmed = 0
    deadline = time.monotonic() + timeout
    try:
        while True:
            if confirmed == len(lines) and not listen:
                return 0
            wait = None
            if confirmed < len(lines):
                wait = deadline - time.monotonic()
                if wait <= 0:
                    print(f"papaya-chat: timed out: {confirmed} of {len(lines)} line(s) came "
                          f"back from {config.address} within {timeout:g} s", file=err)
                    return 1
            try:
                event = conn.events.get(timeout=wait)
            except queue.Empty:
                continue
            if isinstance(event, Line):
                if listen:
                    out.write(event.data + b"\n")
                    out.flush()
                if confirmed < len(lines) and event.data + b"\n" == lines[confirmed]:
                    confirmed += 1
            elif isinstance(event, Failed):
                print(f"papaya-chat: {event.message}", file=err)
                return EXIT_CODES[event.kind]
    except KeyboardInterrupt:
        return 0 if listen and confirmed == len(lines) else 130
    except BrokenPipeError:  # stdout closed (e.g. piped into head): a normal end
        return 0
    finally:
        conn.close()
