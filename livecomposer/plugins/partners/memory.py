"""Session memory: the partner learns the player's licks during the set.

A Continuator-style variable-order Markov model over **intervals** (so a lick comes back
transposed), learnt online from every performer note-on of this session: after each note,
for every order k = 1..``order``, the k intervals before the newest one are a context and
the newest interval is counted under it.  One note costs ``order`` dictionary updates;
nothing is ever re-read.

Prediction takes the line as heard (both voices' note-ons, in time order: the call, then
the answer so far) and looks up its last k intervals for the longest k the performer has
played before (Pachet's Continuator also prefers the longest match); the counts of what
followed, placed on absolute pitches from the line's last note, are the memory's
distribution over the next pitch.  With no match it knows nothing (``None``) and the
network plays alone.  Partners mix it into the network's pitch distribution (see
``pitch_mix`` in :mod:`livecomposer.model.sampling`): p = (1 - m) p_net + m p_mem.

Owned by the **inference worker**: each partner's :class:`~.track.Track` holds one, feeds
it in ``Track.hear`` and reads it while sampling, both inside worker jobs.
"""

from __future__ import annotations

from collections import deque
from typing import Sequence

import numpy as np

MAX_INTERVAL = 24  # a jump wider than two octaves starts a new line of thought (not learnt)


class SessionMemory:
    """Interval continuations of the performer's playing, orders 1..``order``."""

    def __init__(self, order: int = 4) -> None:
        self.order = order
        self._tables: list[dict[tuple[int, ...], dict[int, int]]] = [{} for _ in range(order + 1)]
        self._intervals: deque[int] = deque(maxlen=order + 1)
        self._last: int | None = None
        self.notes = 0  # performer note-ons learnt

    def learn(self, pitch: int) -> None:
        """One performer note-on (worker thread)."""
        self.notes += 1
        last, self._last = self._last, pitch
        if last is None:
            return
        iv = pitch - last
        if abs(iv) > MAX_INTERVAL:
            self._intervals.clear()
            return
        before = tuple(self._intervals)
        for k in range(1, min(self.order, len(before)) + 1):
            counts = self._tables[k].setdefault(before[-k:], {})
            counts[iv] = counts.get(iv, 0) + 1
        self._intervals.append(iv)

    def continuations(self, line: Sequence[int]) -> dict[int, int] | None:
        """Interval counts after the longest context ending the line that the player has
        played (``line``: recent note-on pitches, oldest first)."""
        n = len(line)
        if n < 2:
            return None
        ivs = [line[i + 1] - line[i] for i in range(max(0, n - 1 - self.order), n - 1)]
        for k in range(min(self.order, len(ivs)), 0, -1):
            counts = self._tables[k].get(tuple(ivs[-k:]))
            if counts:
                return counts
        return None

    def predict(self, line: Sequence[int]) -> np.ndarray | None:
        """The memory's distribution over the next pitch (128 probabilities), or ``None``."""
        counts = self.continuations(line)
        if counts is None:
            return None
        q = np.zeros(128)
        last = line[-1]
        for iv, c in counts.items():
            if 0 <= last + iv < 128:
                q[last + iv] += c
        total = q.sum()
        return q / total if total > 0 else None
