"""What /proc says about a running server: its worker processes and which of its TCP sockets each holds.
Shared by the serving tests (tests/safety/test_serving.py) and the benchmark's sampler (bench/run.py)."""

from __future__ import annotations

import os
from pathlib import Path

ESTABLISHED, LISTENING = "01", "0A"  # TCP states as /proc/net/tcp writes them


def children(parent: int) -> list[int]:
    """The processes whose parent is `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def workers(parent: int) -> list[int]:
    """The worker processes of `parent` (multiprocessing's spawned children, not its resource tracker)."""
    found = []
    for pid in children(parent):
        try:
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return sorted(found)


def sockets(port: int, state: str, peer_port: int | None = None) -> set[int]:
    """Socket inodes of the TCP sockets on local `port` in `state` (and from `peer_port`, if given)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, peer = (int(address.rsplit(":", 1)[1], 16) for address in fields[1:3])
            if local == port and fields[3] == state and peer_port in (None, peer):
                inodes.add(int(fields[9]))
    return inodes


def held(pid: int, inodes: set[int]) -> int:
    """How many of the sockets `inodes` process `pid` has open."""
    count = 0
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return 0
    for fd in descriptors:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and int(target[8:-1]) in inodes:
            count += 1
    return count
