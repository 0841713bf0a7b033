"""Session memory: the partner learns the player's licks during the set.

A Continuator-style variable-order Markov model over **intervals** (so a lick comes back
transposed), learnt online from every performer note-on of this session: after each note,
for every order k = 0..``order``, the k intervals before the newest one are a context and
the newest interval is counted under it (order 0: the player's intervals, whatever came
before).  One note costs ``order + 1`` dictionary updates; nothing is ever re-read.

Prediction takes the line as heard (both voices' note-ons, in time order: the call, then
the answer so far) and looks up its last k intervals for the longest k the performer has
played before (Pachet's Continuator also prefers the longest match); the counts of what
followed, placed on absolute pitches from the line's last note, are the memory's
distribution over the next pitch.  Where even one interval is new to it (the machine's
own turn), it falls back to order 0, so the line steps back into the player's intervals
and the longer contexts match again: without that fallback, a partner developing the
call kept memory's share of a repeated lick at 2 % (order 0: 12 %).  Before the first
two performer notes it knows nothing (``None``) and the network plays alone.  Partners mix it into the network's pitch distribution (see
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
        for k in range(0, min(self.order, len(before)) + 1):
            counts = self._tables[k].setdefault(before[len(before) - k:], {})
            counts[iv] = counts.get(iv, 0) + 1
        self._intervals.append(iv)

    def continuations(self, line: Sequence[int]) -> dict[int, int] | None:
        """Interval counts after the longest context ending the line that the player has
        played (``line``: recent note-on pitches, oldest first)."""
        n = len(line)
        if n < 2:
            return None
        ivs = [line[i + 1] - line[i] for i in range(max(0, n - 1 - self.order), n - 1)]
        for k in range(min(self.order, len(ivs)), -1, -1):
            counts = self._tables[k].get(tuple(ivs[len(ivs) - k:]))
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
