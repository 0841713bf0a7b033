"""Port names: finding a port again by name, and knowing which ports are our own.

A device or program that comes back often comes back under a slightly different name (ALSA
numbers, JACK's ``-01`` suffix): :func:`find` looks for the exact name first, then for one
that differs only there.  The ports this process made are kept in :data:`OWN`, so that
"all inputs" never includes our own output (a feedback loop) or a probe.
"""

from __future__ import annotations

import re
import threading
from typing import Iterable, Sequence

from .backends import DEFAULT_CLIENT


def stable(name: str) -> str:
    """A port name without the parts that change when a device or program comes back.

    ALSA appends ``client:port`` numbers; JACK renames a client ``name-01`` when its old
    name is still taken.
    """
    name = re.sub(r"\s+\d+:\d+$", "", name)
    return re.sub(r"^([^:]*?)-\d\d:", r"\1:", name)


def find(ports: Sequence[str], name: str) -> int | None:
    """Index of ``name`` in ``ports``: exact first, then ignoring ALSA's numbers."""
    if name in ports:
        return ports.index(name)
    wanted = stable(name)
    for i, candidate in enumerate(ports):
        if stable(candidate) == wanted:
            return i
    return None


def describe(ports: Iterable[str]) -> str:
    """``'a', 'b'`` or ``none``: the ports that exist, for an error message."""
    ports = list(ports)
    return ", ".join(repr(p) for p in ports) if ports else "none"


def is_own_client(port: str) -> bool:
    """JACK: ports of our probe/listing clients (named ``livecomposer-...``) are never inputs."""
    return bool(re.match(rf"{DEFAULT_CLIENT}-(probe|list)(-\d+)?:", port))


class OwnPorts:
    """The ports this process created, and the client names of our open outputs.

    A port's full name is known once it is open; an output's client name is known before,
    so a hot-plug watch never takes one of our outputs for a keyboard, even while the output
    is being reopened (its port name briefly unknown).  Any thread.
    """

    def __init__(self) -> None:
        self._ports: set[str] = set()
        self._clients: set[str] = set()
        self._lock = threading.Lock()

    def add(self, port: str) -> None:
        with self._lock:
            self._ports.add(port)

    def discard(self, port: str) -> None:
        with self._lock:
            self._ports.discard(port)

    def add_client(self, client: str) -> None:
        with self._lock:
            self._clients.add(client)

    def discard_client(self, client: str) -> None:
        with self._lock:
            self._clients.discard(client)

    def ports(self) -> set[str]:
        """A copy of our ports' full names."""
        with self._lock:
            return set(self._ports)

    def includes(self, name: str) -> bool:
        """Whether port ``name`` is ours: one of our ports, or any port of an output's client."""
        with self._lock:
            return name in self._ports or any(stable(name).split(":")[0] == client for client in self._clients)


#: This process's own ports.
OWN = OwnPorts()
