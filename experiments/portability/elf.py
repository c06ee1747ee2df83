"""Just enough of an ELF reader to say what a binary is built for: class, byte order,
machine, OS ABI, interpreter and note owners (FreeBSD binaries carry ELFOSABI_FREEBSD or a
``.note.tag`` owned by "FreeBSD"; Linux ones often an ABI note owned by "GNU")."""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MACHINES = {3: "x86", 62: "x86-64", 183: "aarch64", 40: "arm", 8: "mips", 20: "ppc",
            21: "ppc64", 243: "riscv"}
OSABIS = {0: "none (System V)", 3: "Linux", 9: "FreeBSD", 12: "OpenBSD", 2: "NetBSD"}
ELF_TYPES = {1: "relocatable", 2: "executable", 3: "shared object (PIE or library)", 4: "core"}
PT_INTERP, PT_NOTE = 3, 4
# Limits so that a corrupt or hostile header cannot make the reader loop or allocate a lot.
_MAX_PHDRS = 256
_MAX_NOTE_BYTES = 1 << 16


class ElfError(ValueError):
    """Not an ELF file, or one whose headers do not hold together."""


@dataclass(frozen=True)
class ElfInfo:
    bits: int  # 32 or 64
    endianness: str  # "little" or "big"
    machine: str
    osabi: str
    type: str
    interpreter: str | None
    notes: list[str] = field(default_factory=list)  # note owners, e.g. ["FreeBSD", "GNU"]

    @property
    def is_freebsd(self) -> bool:
        return self.osabi == "FreeBSD" or "FreeBSD" in self.notes

    def describe(self) -> str:
        """One line, like file(1): ``ELF 64-bit LSB x86-64, OS/ABI FreeBSD, static``."""
        order = "LSB" if self.endianness == "little" else "MSB"
        linking = f"interpreter {self.interpreter}" if self.interpreter else "static"
        abi = "FreeBSD" if self.is_freebsd else self.osabi
        return f"ELF {self.bits}-bit {order} {self.machine}, OS/ABI {abi}, {linking}"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["is_freebsd"] = self.is_freebsd
        data["describe"] = self.describe()
        return data


def read_elf(path: Path) -> ElfInfo:
    data = Path(path).read_bytes()
    return parse_elf(data, str(path))


def parse_elf(data: bytes, name: str = "binary") -> ElfInfo:
    if len(data) < 52 or data[:4] != b"\x7fELF":
        raise ElfError(f"{name}: not an ELF file")
    ei_class, ei_data, osabi = data[4], data[5], data[7]
    if ei_class not in (1, 2) or ei_data not in (1, 2):
        raise ElfError(f"{name}: bad ELF class {ei_class} or data encoding {ei_data}")
    bits = 32 if ei_class == 1 else 64
    order = "<" if ei_data == 1 else ">"
    e_type, e_machine = struct.unpack_from(order + "HH", data, 16)
    if bits == 32:
        e_phoff, = struct.unpack_from(order + "I", data, 28)
        e_phentsize, e_phnum = struct.unpack_from(order + "HH", data, 42)
    else:
        e_phoff, = struct.unpack_from(order + "Q", data, 32)
        e_phentsize, e_phnum = struct.unpack_from(order + "HH", data, 54)
    interpreter, notes = None, []
    for index in range(min(e_phnum, _MAX_PHDRS)):
        base = e_phoff + index * e_phentsize
        if base + e_phentsize > len(data):
            raise ElfError(f"{name}: program header {index} lies outside the file")
        if bits == 32:
            p_type, p_offset, _, _, p_filesz = struct.unpack_from(order + "IIIII", data, base)
        else:
            p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(order + "IIQQQQ", data, base)
        segment = data[p_offset:p_offset + min(p_filesz, _MAX_NOTE_BYTES)]
        if p_type == PT_INTERP:
            interpreter = segment.split(b"\0", 1)[0].decode(errors="replace")
        elif p_type == PT_NOTE:
            notes += _note_owners(segment, order)
    return ElfInfo(
        bits=bits,
        endianness="little" if ei_data == 1 else "big",
        machine=MACHINES.get(e_machine, f"machine {e_machine}"),
        osabi=OSABIS.get(osabi, f"osabi {osabi}"),
        type=ELF_TYPES.get(e_type, f"type {e_type}"),
        interpreter=interpreter,
        notes=sorted(set(notes)),
    )


def _note_owners(segment: bytes, order: str) -> list[str]:
    """Owner names of the notes in a PT_NOTE segment (entries are 4-byte aligned)."""
    owners, pos = [], 0
    while pos + 12 <= len(segment):
        namesz, descsz, _ = struct.unpack_from(order + "III", segment, pos)
        pos += 12
        name = segment[pos:pos + namesz].split(b"\0", 1)[0]
        owners.append(name.decode(errors="replace"))
        pos += (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return owners
