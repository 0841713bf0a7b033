"""What a test run leaves in /dev/shm, told apart from what other programs hold there now.

JACK keeps a semaphore file per client (``jack_sem.UID_SERVER_CLIENT``), a socket per
server (``jack_SERVER_N_N``) and shared-memory segments (``jack-UID-N``) in /dev/shm.  The
server removes a client's semaphore when the client closes, but not for clients still open
when the server itself stops, and a killed server removes nothing: files that then stay
until the machine reboots.  Python's multiprocessing names (``sem.mp-*``, ``psm_*``) are
removed by its resource tracker when the processes end, so they are not counted.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

SHM = Path("/dev/shm")
PYTHON_OWNED = ("sem.mp-", "psm_")
CLIENT_SEM = re.compile(r"^jack_sem\.\d+_([^_]+)_.+$")
SERVER_SOCKET = re.compile(r"^jack_([^_]+)_\d+_\d+$")
SEGMENT = re.compile(r"^jack-\d+-\d+$")


def entries() -> set[str]:
    try:
        return set(os.listdir(SHM))
    except OSError:
        return set()


def jackd_pids() -> set[int]:
    pids = set()
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "jackd":
                pids.add(int(comm.parent.name))
        except (OSError, ValueError):
            continue
    return pids


def left_behind(before: set[str], jackd_before: set[int], our_servers: set[str]) -> list[str]:
    """The /dev/shm entries that appeared since ``before`` and are this run's leftovers.

    A JACK file counts when it names one of ``our_servers`` (the session's server, those
    the tests started); other servers' files belong to whoever else runs JACK on this
    machine.  New shared-memory segments count unless a jackd someone else started runs.
    """
    foreign_jackd = bool(jackd_pids() - jackd_before)
    found = []
    for entry in sorted(entries() - before):
        if entry.startswith(PYTHON_OWNED) or entry.startswith("jack_db-"):
            continue
        match = CLIENT_SEM.match(entry) or SERVER_SOCKET.match(entry)
        if match and match.group(1) not in our_servers:
            continue
        if SEGMENT.match(entry) and foreign_jackd:
            continue
        found.append(entry)
    return found
