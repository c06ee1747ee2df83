"""Replaying (and recording) what real commands printed on a real host.

A recording is a TOML manifest next to the output files::

    [[command]]
    argv = ["uname", "-a"]
    stdout = "uname-a.txt"        # a file in the manifest's folder (or stdout_text = "...")
    stderr_text = ""              # or stderr = "file.txt"
    returncode = 0

The same argv may appear several times: the entries are replayed in order (a host's answer
changes after an install) and the last one keeps answering. ``RecordedHost`` fails loudly on a
command nobody recorded: the code under test asked something the recording cannot answer.
``RecordingHost`` wraps a real Host and writes such a manifest.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from infra.hosts import CommandResult, Host, HostError


class UnrecordedCommand(AssertionError):
    """Not a HostError on purpose: code under test must not swallow it as "tool missing"."""


class RecordedHost:
    """Replays one or more manifests; a later manifest's answers to an argv replace earlier ones
    (a base recording of a host, then what changed for one scenario)."""

    def __init__(self, *manifests: Path, name: str = "recorded") -> None:
        self.name = name
        self.manifests = [Path(m) for m in manifests]
        self.calls: list[list[str]] = []
        self._answers: dict[tuple[str, ...], list[CommandResult]] = {}
        for manifest in self.manifests:
            layer: dict[tuple[str, ...], list[CommandResult]] = {}
            for entry in tomllib.loads(manifest.read_text()).get("command", []):
                key = tuple(entry["argv"])
                layer.setdefault(key, []).append(self._result(manifest.parent, entry))
            self._answers.update(layer)

    @property
    def manifest(self) -> str:
        return " + ".join(str(m) for m in self.manifests)

    @staticmethod
    def _text(folder: Path, entry: dict[str, Any], stream: str) -> str:
        if stream in entry:
            return (folder / entry[stream]).read_text()
        return entry.get(f"{stream}_text", "")

    def _result(self, folder: Path, entry: dict[str, Any]) -> CommandResult:
        return CommandResult(int(entry.get("returncode", 0)), self._text(folder, entry, "stdout"),
                             self._text(folder, entry, "stderr"))

    def run(self, cmd: Sequence[str], *, cwd: Path | None = None,
            env: Mapping[str, str] | None = None, check: bool = True,
            timeout: float | None = None) -> CommandResult:
        argv = [str(part) for part in cmd]
        self.calls.append(argv)
        answers = self._answers.get(tuple(argv))
        if not answers:
            raise UnrecordedCommand(f"{self.manifest}: no recording of {argv!r}")
        result = answers.pop(0) if len(answers) > 1 else answers[0]
        if check and result.returncode != 0:
            raise HostError(f"{self.name}: {' '.join(argv)} exited with {result.returncode}:\n"
                            f"{result.stderr.strip()}")
        return result

    def which(self, program: str) -> str | None:
        raise UnrecordedCommand(f"{self.manifest}: which({program!r}) is not recorded; "
                                "the code under test should run the program and look at "
                                "the exit code")


class RecordingHost:
    """Runs commands on a real host and keeps every answer, to save as a recording."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.name = host.name
        self.entries: list[tuple[list[str], CommandResult]] = []

    def run(self, cmd: Sequence[str], *, cwd: Path | None = None,
            env: Mapping[str, str] | None = None, check: bool = True,
            timeout: float | None = None) -> CommandResult:
        try:
            result = self.host.run(cmd, cwd=cwd, env=env, check=False, timeout=timeout)
        except HostError as error:
            if "not found" not in str(error):
                raise
            # LocalHost raises for a missing program; a shell would say 127.
            result = CommandResult(127, "", f"sh: 1: {cmd[0]}: not found\n")
        self.entries.append(([str(c) for c in cmd], result))
        if check and result.returncode != 0:
            raise HostError(f"{self.name}: {' '.join(cmd)} exited with {result.returncode}")
        return result

    def which(self, program: str) -> str | None:
        return self.host.which(program)

    def save(self, directory: Path, manifest: str = "commands.toml") -> Path:
        """Write each output to its own file and the manifest naming them."""
        directory.mkdir(parents=True, exist_ok=True)
        lines = ["# Recorded by tests/recorded_host.py RecordingHost; see README.md.", ""]
        used: set[str] = set()
        for argv, result in self.entries:
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(argv))[:60].strip("_-") or "cmd"
            stem = f"{Path(manifest).stem}.{stem}"  # several manifests share one folder
            name, n = f"{stem}.txt", 1
            while name in used:
                n += 1
                name = f"{stem}.{n}.txt"
            used.add(name)
            lines.append("[[command]]")
            lines.append(f"argv = {_toml_list(argv)}")
            if result.stdout:
                (directory / name).write_text(result.stdout)
                lines.append(f'stdout = "{name}"')
            if result.stderr:
                lines.append(f"stderr_text = {_toml_str(result.stderr)}")
            lines.append(f"returncode = {result.returncode}")
            lines.append("")
        path = directory / manifest
        path.write_text("\n".join(lines))
        return path


def _toml_str(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    escaped = escaped.replace("\t", "\\t")
    return f'"{escaped}"'


def _toml_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(_toml_str(item) for item in items) + "]"
