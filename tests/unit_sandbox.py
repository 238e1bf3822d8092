"""Run a command under the seccomp filters systemd installs for a unit's SystemCallFilter=,
SystemCallErrorNumber= and MemoryDenyWriteExecute= (systemd 252, x86-64), through libseccomp:

    python unit_sandbox.py UNIT_FILE COMMAND [ARG...]

The filter sets (@system-service, ...) are expanded by `systemd-analyze syscall-filter`, so they are the
installed systemd's own."""
from __future__ import annotations

import ctypes
import errno
import os
import subprocess
import sys
from pathlib import Path

ALLOW, KILL_PROCESS, MASKED_EQ = 0x7FFF0000, 0x80000000, 7
PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000


def errno_action(number: int) -> int:
    return 0x00050000 | number


class ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


def unit_settings(unit: Path) -> dict[str, list[str]]:
    """Every `Key=value` of the [Service] section, values in order."""
    settings: dict[str, list[str]] = {}
    section = None
    for line in unit.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def filter_sets() -> dict[str, list[str]]:
    out = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True, text=True, check=True).stdout
    sets: dict[str, list[str]] = {}
    name = None
    for line in out.splitlines():
        if line.startswith("@"):
            name = line.split()[0]
            sets[name] = []
        elif name and line.strip() and not line.strip().startswith("#"):
            sets[name].append(line.strip())
    return sets


def expand(items: list[str], sets: dict[str, list[str]]) -> set[str]:
    names: set[str] = set()
    for item in items:
        names |= expand(sets[item], sets) if item.startswith("@") else {item}
    return names


def allowed_syscalls(lines: list[str]) -> set[str]:
    """SystemCallFilter= lines as systemd reads them when the first is an allow-list: each later `~` line
    takes its calls out of it."""
    sets = filter_sets()
    allowed: set[str] = set()
    for number, line in enumerate(lines):
        deny = line.startswith("~")
        items = line.lstrip("~").split()
        if number == 0 and deny:
            raise SystemExit("unit_sandbox: a deny-list SystemCallFilter is not emulated")
        if deny:
            allowed -= expand(items, sets)
        else:
            allowed |= expand(items, sets)
    return allowed


def load(unit: Path) -> None:
    settings = unit_settings(unit)
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(ArgCmp)]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]

    def number(name: str) -> int:
        return lib.seccomp_syscall_resolve_name(name.encode())

    # Write-and-execute memory first: once the allow-list is loaded, loading another filter may be refused.
    if settings.get("MemoryDenyWriteExecute", ["no"])[-1] == "yes":
        ctx = lib.seccomp_init(ALLOW)
        for call, mask in (("mmap", PROT_WRITE | PROT_EXEC), ("mprotect", PROT_EXEC),
                           ("pkey_mprotect", PROT_EXEC), ("shmat", SHM_EXEC)):
            check = ArgCmp(2, MASKED_EQ, mask, mask)
            assert lib.seccomp_rule_add_array(ctx, errno_action(errno.EPERM), number(call), 1,
                                              ctypes.byref(check)) == 0, call
        assert lib.seccomp_load(ctx) == 0, "MemoryDenyWriteExecute filter not loaded"
    if "SystemCallFilter" in settings:
        refuse = settings.get("SystemCallErrorNumber")
        ctx = lib.seccomp_init(errno_action(getattr(errno, refuse[-1])) if refuse else KILL_PROCESS)
        for call in sorted(allowed_syscalls(settings["SystemCallFilter"])):
            if number(call) >= 0:  # calls of other architectures resolve to negative pseudo numbers
                assert lib.seccomp_rule_add_array(ctx, ALLOW, number(call), 0, None) == 0, call
        assert lib.seccomp_load(ctx) == 0, "SystemCallFilter not loaded"


if __name__ == "__main__":
    load(Path(sys.argv[1]))
    os.execv(sys.argv[2], sys.argv[2:])
