"""papaya-chat: the terminal client of the papaya chat service.

    papaya-chat                         # full-screen client, settings from client.toml
    papaya-chat --host h --port 7000 --user alice --key-file ~/chat.key
    papaya-chat --send "hello"          # for scripts: send, wait until it is in the log
    papaya-chat --listen                # for scripts: print the history and every new line
"""

from __future__ import annotations

import argparse
import contextlib
import curses
import locale
import os
import sys

from .batch import BatchError, message_lines, run_batch
from .config import (
    DEFAULT_AUTH_WAIT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_HOST,
    DEFAULT_PORT,
    ConfigError,
    build_config,
    default_config_path,
    default_key_file,
    read_key,
)

EPILOG = f"""\
settings come from {default_config_path()} (or --config), keys: host, port, username,
key_file, connect_timeout, auth_wait; the options override them. Defaults: host {DEFAULT_HOST},
port {DEFAULT_PORT}, your login name, key file {default_key_file()}.

in the client: Enter sends, /quit or Ctrl-D leaves, PgUp/PgDn scroll back, Up/Down recall.

exit status: 0 left normally; 1 other failure (e.g. --send timed out); 2 bad option, config
or key file; 3 server unreachable; 4 key rejected; 5 connection lost."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="papaya-chat", description="Terminal client of the papaya chat service.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", metavar="PATH",
                        help=f"settings file (default {default_config_path()}; "
                             f"a missing default file is fine)")
    parser.add_argument("--host", help="server host name or address")
    parser.add_argument("--port", type=int, help="server TCP port")
    parser.add_argument("--user", "--username", dest="username", metavar="NAME",
                        help="your name in the chat")
    parser.add_argument("--key-file", metavar="PATH",
                        help="file with the shared 128-character key (mode 600)")
    parser.add_argument("--connect-timeout", type=float, metavar="SECONDS",
                        help=f"give up connecting after this long "
                             f"(default {DEFAULT_CONNECT_TIMEOUT:g})")
    parser.add_argument("--auth-wait", type=float, metavar="SECONDS",
                        help=f"how long a silent open connection after the key must stay open "
                             f"to count as accepted (default {DEFAULT_AUTH_WAIT:g}; the "
                             f"server's authentication timeout is 1 s)")
    scripts = parser.add_argument_group("non-interactive use")
    scripts.add_argument("--send", action="append", metavar="TEXT",
                         help="send TEXT as one message ('-': each line of stdin) and exit "
                              "once it has come back from the server; repeatable")
    scripts.add_argument("--listen", action="store_true",
                         help="print the history and every new line until the connection "
                              "ends or Ctrl-C")
    scripts.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                         help="--send: fail if the lines have not come back within this "
                              "long (default 10)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = build_config(
            config_path=args.config, host=args.host, port=args.port, username=args.username,
            key_file=args.key_file, connect_timeout=args.connect_timeout,
            auth_wait=args.auth_wait)
        key = read_key(config.key_file)
        texts = []
        for text in args.send or []:
            texts.append(sys.stdin.read() if text == "-" else text)
        lines = message_lines(config.username, texts)
        if args.send is not None and not lines and not args.listen:
            raise BatchError("nothing to send: --send got only empty text")
    except (ConfigError, BatchError) as error:
        print(f"papaya-chat: {error}", file=sys.stderr)
        return 2
    if args.send is not None or args.listen:
        return run_batch(config, key, lines, listen=args.listen, timeout=args.timeout)
    return run_interactive(config, key)


def run_interactive(config, key: bytes) -> int:
    from .net import Connection
    from .ui import ChatUI, Outcome

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("papaya-chat: the chat window needs a terminal; for scripts use --send TEXT or "
              "--listen", file=sys.stderr)
        return 2
    with contextlib.suppress(locale.Error):  # an unknown LANG: curses still works in ASCII
        locale.setlocale(locale.LC_ALL, "")
    try:
        curses.setupterm(os.environ.get("TERM", "unknown"), sys.stdout.fileno())
    except curses.error:
        print(f"papaya-chat: this terminal type ({os.environ.get('TERM', 'unset')!r}, from "
              f"TERM) is unknown here; try TERM=xterm-256color", file=sys.stderr)
        return 2
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)

    def notify() -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(wake_write, b"!")

    conn = Connection(config, key, notify)
    outcomes: list[Outcome] = []
    try:
        curses.wrapper(lambda screen: outcomes.append(
            ChatUI(screen, config, conn, wake_read, wake_write).run()))
    except KeyboardInterrupt:
        outcomes.append(Outcome(130))
    except curses.error:
        # Restoring a terminal that is gone (after SIGHUP) fails; the outcome stands.
        if not outcomes:
            raise
    finally:
        conn.close()
        os.close(wake_read)
        os.close(wake_write)
    outcome = outcomes[0]
    if outcome.message:
        with contextlib.suppress(OSError):
            print(f"papaya-chat: {outcome.message}", file=sys.stderr)
    return outcome.code


if __name__ == "__main__":
    sys.exit(main())
