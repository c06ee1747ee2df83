"""The full-screen client: messages above, a status bar, the input line below.

The main thread runs curses and sleeps in a selector on two descriptors: the terminal and a
pipe the network threads write a byte to whenever they queue an event (and the SIGWINCH
handler, on a resize). So the screen reacts at once to keys, to lines from the server and to
resizes, and never waits on the network.
"""

from __future__ import annotations

import contextlib
import curses
import os
import queue
import selectors
import signal
import sys
import time
import zlib
from collections import deque
from dataclasses import dataclass, field

from .config import ClientConfig, line_bytes
from .net import EXIT_CODES, Accepted, Connection, Failed, Line, Progress
from .protocol import MAX_LINE
from .text import char_width, decode, fit_input, sanitize, wrap

HISTORY_LIMIT = 10_000  # lines kept for scrolling back
PROMPT = "> "
HELP = "Enter sends · /quit or Ctrl-D leaves · PgUp/PgDn scroll · ↑/↓ recall · //text sends /text"

CTRL_A, CTRL_D, CTRL_E, CTRL_K, CTRL_L, CTRL_U, CTRL_W = (
    "\x01", "\x04", "\x05", "\x0b", "\x0c", "\x15", "\x17")
BACKSPACES = {"\x7f", "\x08", curses.KEY_BACKSPACE}
ENTERS = {"\n", "\r", curses.KEY_ENTER}
# Keys as common terminals send them, for when the terminfo entry lacks them (e.g. vt100).
ESCAPE_KEYS = {
    "[A": curses.KEY_UP, "[B": curses.KEY_DOWN, "[C": curses.KEY_RIGHT, "[D": curses.KEY_LEFT,
    "OA": curses.KEY_UP, "OB": curses.KEY_DOWN, "OC": curses.KEY_RIGHT, "OD": curses.KEY_LEFT,
    "[H": curses.KEY_HOME, "[F": curses.KEY_END, "OH": curses.KEY_HOME, "OF": curses.KEY_END,
    "[1~": curses.KEY_HOME, "[7~": curses.KEY_HOME, "[4~": curses.KEY_END,
    "[8~": curses.KEY_END, "[3~": curses.KEY_DC, "[5~": curses.KEY_PPAGE,
    "[6~": curses.KEY_NPAGE,
}


@dataclass
class Outcome:
    code: int
    message: str | None = None


@dataclass
class Entry:
    """One line in the message area, with its wrapping cached for one width."""

    text: str
    notice: bool = False
    name: str = ""  # the "name" of "name: text", coloured
    _width: int = 0
    _rows: list[str] = field(default_factory=list)

    def rows(self, width: int) -> list[str]:
        if width != self._width:
            self._rows = wrap(self.text, width)
            self._width = width
        return self._rows


def entry_for(text: str) -> Entry:
    name, sep, _ = text.partition(": ")
    return Entry(text, name=name if sep and 0 < len(name) <= 64 else "")


class ChatUI:
    def __init__(self, stdscr: curses.window, config: ClientConfig, conn: Connection,
                 wake_read: int, wake_write: int) -> None:
        self.scr = stdscr
        self.config = config
        self.conn = conn
        self.wake_fd = wake_read
        self.wake_write = wake_write
        self.entries: deque[Entry] = deque(maxlen=HISTORY_LIMIT)
        self.input = ""
        self.cursor = 0
        self.input_start = 0
        self.recall: list[str] = []
        self.recall_at = 0
        self.status = ""
        self.status_error = False
        self.scroll = 0  # rows scrolled back from the newest
        self.unseen = 0  # lines that arrived while scrolled back
        self.state = "connecting"  # then "open", or "lost"
        self.lost_message = ""
        self.outcome: Outcome | None = None
        self.resized = False
        self.name_attrs: list[int] = [curses.A_BOLD]

    # ------------------------------------------------------------------ main loop

    def run(self) -> Outcome:
        self._setup_terminal()
        previous = {signum: signal.signal(signum, handler) for signum, handler in (
            (signal.SIGWINCH, self._on_winch), (signal.SIGTERM, self._on_stop),
            (signal.SIGHUP, self._on_stop))}
        selector = selectors.DefaultSelector()
        selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "tty")
        selector.register(self.wake_fd, selectors.EVENT_READ, "wake")
        self.conn.start()
        idle_reads = 0
        try:
            while self.outcome is None:
                self._take_events()
                if self.outcome is not None:
                    break
                if self.resized:
                    self._resize()
                self._draw()
                # Lines still queued (a burst larger than one batch): look, but do not sleep.
                for key, _ in selector.select(0 if not self.conn.events.empty() else None):
                    if key.data == "wake":
                        with contextlib.suppress(BlockingIOError):
                            os.read(self.wake_fd, 4096)
                    elif self._read_keys():
                        idle_reads = 0
                    else:
                        # Readable but no key: the terminal is gone (or an escape sequence is
                        # still arriving). Do not spin; give up after 2 s of it.
                        idle_reads += 1
                        if idle_reads > 200:
                            self.outcome = Outcome(1, "the terminal went away")
                        time.sleep(0.01)
        finally:
            selector.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        return self.outcome

    def _setup_terminal(self) -> None:
        scr = self.scr
        scr.keypad(True)
        scr.nodelay(True)
        with contextlib.suppress(curses.error, AttributeError):
            curses.set_escdelay(25)
        with contextlib.suppress(curses.error):
            curses.curs_set(1)
        if curses.has_colors():
            with contextlib.suppress(curses.error):
                curses.use_default_colors()
            palette = [curses.COLOR_RED, curses.COLOR_GREEN, curses.COLOR_YELLOW,
                       curses.COLOR_BLUE, curses.COLOR_MAGENTA, curses.COLOR_CYAN]
            self.name_attrs = []
            for number, colour in enumerate(palette, start=1):
                try:
                    curses.init_pair(number, colour, -1)
                    self.name_attrs.append(curses.color_pair(number) | curses.A_BOLD)
                except curses.error:
                    self.name_attrs = [curses.A_BOLD]
                    break

    def _on_winch(self, signum, frame) -> None:
        self.resized = True
        with contextlib.suppress(OSError):
            os.write(self.wake_write, b"w")

    def _on_stop(self, signum, frame) -> None:
        # SIGTERM or SIGHUP: leave the screen as it was found, like a normal exit.
        self.outcome = Outcome(128 + signum)
        with contextlib.suppress(OSError):
            os.write(self.wake_write, b"s")

    def _resize(self) -> None:
        self.resized = False
        try:
            size = os.get_terminal_size(sys.stdout.fileno())
        except OSError:
            return
        with contextlib.suppress(curses.error):
            curses.resizeterm(size.lines, size.columns)
        self.scr.clear()

    # ------------------------------------------------------------------ network events

    def _take_events(self, batch: int = 2000) -> None:
        """Handle the queued network events, at most ``batch`` before the screen is drawn."""
        for _ in range(batch):
            if self.outcome is not None:
                return
            try:
                event = self.conn.events.get_nowait()
            except queue.Empty:
                return
            if isinstance(event, Line):
                self._add(entry_for(decode(event.data)))
            elif isinstance(event, Progress):
                self._set_status(event.text)
            elif isinstance(event, Accepted):
                self.state = "open"
                self._set_status(f"{self.config.address} as {self.config.username} · {HELP}")
            elif isinstance(event, Failed):
                if self.state == "lost":
                    continue
                if self.state != "open":
                    # Never got in (unreachable, key rejected): nothing to look at; leave.
                    self.outcome = Outcome(EXIT_CODES[event.kind], event.message)
                    return
                self.state = "lost"
                self.lost_message = event.message
                self._add(Entry(f"*** {event.message}", notice=True))
                self._set_status(f"press any key to leave · {event.message}", error=True)

    def _add(self, entry: Entry) -> None:
        self.entries.append(entry)
        if self.scroll > 0:
            # Keep the view where it is while the user reads back.
            _, width = self.scr.getmaxyx()
            self.scroll += len(entry.rows(max(width, 2)))
            self.unseen += 1

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status = text
        self.status_error = error

    # ------------------------------------------------------------------ keys

    def _read_keys(self) -> bool:
        got = False
        while self.outcome is None:
            try:
                key = self.scr.get_wch()
            except curses.error:
                return got
            got = True
            if key == "\x1b":
                key = self._escape_sequence()
                if key is None:
                    continue
            self._on_key(key)
        return got

    def _escape_sequence(self) -> int | None:
        """A key curses did not decode (terminfo without it): ESC [ ... or ESC O x, read
        here so that it is never typed into the input line. None: a bare ESC or unknown."""
        chars = ""
        while len(chars) < 16:
            try:
                ch = self.scr.get_wch()
            except curses.error:
                break
            if not isinstance(ch, str):
                break
            chars += ch
            if len(chars) >= 2 and (chars[0] == "O" or 0x40 <= ord(ch) <= 0x7E):
                break
            if chars[0] not in "[O":
                break
        return ESCAPE_KEYS.get(chars)

    def _on_key(self, key: str | int) -> None:
        if self.state == "lost":
            self.outcome = Outcome(EXIT_CODES["lost"], self.lost_message)
            return
        if key == curses.KEY_RESIZE:
            self.resized = True
        elif key == CTRL_D:
            self.outcome = Outcome(0)
        elif key in ENTERS:
            self._submit()
        elif key in BACKSPACES:
            if self.cursor > 0:
                self.input = self.input[:self.cursor - 1] + self.input[self.cursor:]
                self.cursor -= 1
        elif key == curses.KEY_DC:
            self.input = self.input[:self.cursor] + self.input[self.cursor + 1:]
        elif key == curses.KEY_LEFT:
            self.cursor = max(0, self.cursor - 1)
        elif key == curses.KEY_RIGHT:
            self.cursor = min(len(self.input), self.cursor + 1)
        elif key in (curses.KEY_HOME, CTRL_A):
            self.cursor = 0
        elif key in (curses.KEY_END, CTRL_E):
            self.cursor = len(self.input)
        elif key == CTRL_U:
            self.input, self.cursor = self.input[self.cursor:], 0
        elif key == CTRL_K:
            self.input = self.input[:self.cursor]
        elif key == CTRL_W:
            head = self.input[:self.cursor].rstrip(" ")
            head = head[:head.rfind(" ") + 1]
            self.input, self.cursor = head + self.input[self.cursor:], len(head)
        elif key == CTRL_L:
            self.scr.clear()
        elif key == curses.KEY_PPAGE:
            self.scroll += max(1, self._message_height() - 1)
        elif key == curses.KEY_NPAGE:
            self.scroll = max(0, self.scroll - max(1, self._message_height() - 1))
            if self.scroll == 0:
                self.unseen = 0
        elif key == curses.KEY_UP:
            if self.recall_at > 0:
                self.recall_at -= 1
                self._set_input(self.recall[self.recall_at])
        elif key == curses.KEY_DOWN:
            if self.recall_at < len(self.recall):
                self.recall_at += 1
                self._set_input(self.recall[self.recall_at]
                                if self.recall_at < len(self.recall) else "")
        elif isinstance(key, str):
            self._insert(key)

    def _set_input(self, text: str) -> None:
        self.input, self.cursor = text, len(text)

    def _insert(self, key: str) -> None:
        text = sanitize(key)  # a pasted tab becomes a space; other control keys do nothing
        if text != key and key != "\t":
            return
        new = self.input[:self.cursor] + text + self.input[self.cursor:]
        if len(line_bytes(self.config.username, new)) > MAX_LINE:
            curses.beep()
            self._set_status(f"a message is at most {MAX_LINE} bytes with 'name: ' and the "
                             f"newline", error=True)
            return
        self.input = new
        self.cursor += len(text)

    def _submit(self) -> None:
        text = self.input
        command = text.strip()
        if not command:
            return
        if command in ("/quit", "/exit"):
            self.outcome = Outcome(0)
            return
        if command == "/help":
            self._set_status(HELP)
            self._set_input("")
            return
        if text.startswith("//"):
            text = text[1:]
        elif text.startswith("/"):
            self._set_status(f"unknown command {command.split()[0]} (/quit, /help; start with "
                             f"// to send a line beginning with /)", error=True)
            return
        line = line_bytes(self.config.username, text)
        if len(line) > MAX_LINE:
            self._set_status(f"too long: {len(line)} bytes; a message is at most {MAX_LINE}",
                             error=True)
            return
        self.conn.send(line)
        self.recall.append(self.input)
        self.recall_at = len(self.recall)
        self._set_input("")
        self.scroll = 0
        self.unseen = 0
        if self.status_error:
            self._set_status(f"{self.config.address} as {self.config.username} · {HELP}")

    # ------------------------------------------------------------------ drawing

    def _message_height(self) -> int:
        height, _ = self.scr.getmaxyx()
        return max(height - 2, 0)

    def _put(self, y: int, x: int, text: str, attr: int = 0) -> None:
        # Writing the bottom-right cell moves the cursor off the screen: curses reports an
        # error after it has drawn the text; nothing is lost.
        with contextlib.suppress(curses.error):
            self.scr.addstr(y, x, text, attr)

    def _draw(self) -> None:
        scr = self.scr
        height, width = scr.getmaxyx()
        scr.erase()
        if height < 3 or width < 12:
            self._put(0, 0, "terminal too small"[:max(width - 1, 0)])
            scr.refresh()
            return
        message_height = height - 2
        rows = self._visible_rows(message_height, width)
        top = message_height - len(rows)
        for offset, (text, name_width, attr) in enumerate(rows):
            y = top + offset
            if name_width:
                self._put(y, 0, text[:name_width], attr)
                self._put(y, _columns(text[:name_width]), text[name_width:])
            else:
                self._put(y, 0, text, attr)
        self._draw_status(height - 2, width)
        shown, cursor_x, self.input_start = fit_input(
            self.input, self.cursor, width - len(PROMPT), self.input_start)
        self._put(height - 1, 0, PROMPT, curses.A_BOLD)
        self._put(height - 1, len(PROMPT), shown)
        with contextlib.suppress(curses.error):
            scr.move(height - 1, min(len(PROMPT) + cursor_x, width - 1))
        scr.refresh()

    def _draw_status(self, y: int, width: int) -> None:
        text = self.status
        if self.scroll > 0:
            more = f"{self.unseen} new below" if self.unseen else "scrolled back"
            text = f"[{more} · PgDn] {text}"
        text = " " + ("! " if self.status_error else "") + text
        fitted = ""
        used = 0
        for ch in text:
            w = char_width(ch)
            if used + w > width:
                break
            fitted += ch
            used += w
        attr = curses.A_REVERSE | (curses.A_BOLD if self.status_error else 0)
        self._put(y, 0, fitted + " " * (width - used), attr)

    def _visible_rows(self, height: int, width: int) -> list[tuple[str, int, int]]:
        """The rows of the message area, oldest first: (text, columns of the name, attr)."""
        wanted = height + self.scroll
        rows: list[tuple[str, int, int]] = []
        for entry in reversed(self.entries):
            entry_rows = entry.rows(width)
            attr = curses.A_DIM if entry.notice else 0
            name_len = 0
            if entry.name and not entry.notice:
                name_len = min(len(entry.name) + 1, len(entry_rows[0]))
                attr = self._name_attr(entry.name)
            for index in range(len(entry_rows) - 1, -1, -1):
                rows.append((entry_rows[index], name_len if index == 0 else 0,
                             attr if (index == 0 or entry.notice) else 0))
            if len(rows) >= wanted:
                break
        rows.reverse()
        if len(rows) < wanted:  # scrolled back past the oldest line
            self.scroll = max(0, len(rows) - height)
        end = len(rows) - self.scroll
        return rows[max(0, end - height):end]

    def _name_attr(self, name: str) -> int:
        attr = self.name_attrs[zlib.crc32(name.encode()) % len(self.name_attrs)]
        if name == self.config.username:
            attr |= curses.A_UNDERLINE
        return attr


def _columns(text: str) -> int:
    return sum(char_width(ch) for ch in text)
