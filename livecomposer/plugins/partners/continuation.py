"""Continuation: the machine plays on its own, and the performer steers it.

It keeps a short plan (``horizon`` seconds) sampled ahead and tops it up before it runs
out (``next_wakeup``).  Every performer note goes to the model as it arrives; then every
planned note that has not started yet is stale (it was sampled before the model heard
that note): it is cancelled and the plan is sampled again from the new state.  Notes
already sounding keep their planned end, so the line is steered without being chopped.
With ``while_playing: rest`` (the default) the machine starts notes only in the performer's
gaps (``gap`` seconds after their last note, none while they hold one): the folk model
learned melodies one voice at a time.  ``play`` lets it play over the performer.
Each planned note has its own tag, so cancelling the unplayed ones leaves the sounding
ones alone; any that were cut still get their note-offs from the engine.
"""

from __future__ import annotations

from typing import Any, Sequence

from ...kernel.events import NS_PER_S, Event
from ...kernel.theory import parse_note
from ...kernel.plugin import Param
from .common import LinePartner, Note, drop_unstarted
from .track import PlanSpec, Step, Track, hear_all

NS = NS_PER_S
RETRY_NS = NS // 2  # an empty plan (the model chose silence): ask again this much later


class Continuation(LinePartner):
    name = "continuation"
    summary = "play on continuously from what the performer plays; every new note re-steers the plan"
    channel = LinePartner.channel.with_default(3)
    low = LinePartner.low.with_default(parse_note("G3"))
    horizon = Param(default=1.5, min=0.2, max=10.0, doc="seconds of music kept planned ahead")
    autostart = Param(default=False, doc="start playing at once instead of at the performer's first note")
    stop_after = Param(default=0.0, min=0.0, max=600.0, doc="stop after this many seconds without the performer (0: never)")
    density = Param(default=1.0, min=0.25, max=4.0, doc="how busy the line is: scales the model's time gaps")
    polyphony = Param(default=1, min=1, max=8, doc="most notes the machine holds at once")
    max_note = Param(default=2.0, min=0.05, max=30.0, doc="longest note, in seconds")
    while_playing = Param(default="rest", choices=("rest", "play"), doc="rest: start notes only in the performer's gaps; play: play over them too")
    gap = Param(default=0.25, min=0.0, max=5.0, doc="(rest) seconds after the performer's last note before the machine's next")

    def __init__(self, id: str | None = None, **options: Any) -> None:
        super().__init__(id=id, **options)
        self.forget()

    def forget(self) -> None:
        self._started = False
        self._notes: list[Note] = []  # planned notes not yet over
        self._plan_end = 0
        self._requested = False
        self._last_input: int | None = None
        self._held: set[int] = set()  # performer notes sounding
        self._retry_at = 0  # after an empty plan (the model chose a long rest), ask again then
        self.replans = 0

    def _active(self, now: int) -> bool:
        if not self._started:
            return False
        stop = self.stop_after
        if stop > 0 and self._last_input is not None and now - self._last_input > stop * NS:
            self._started = False
            return False
        return True

    def _resting(self) -> bool:
        """Waiting for the performer to let go (``while_playing: rest``)."""
        return self.while_playing == "rest" and bool(self._held)

    def _spec(self, from_time: int, now: int) -> PlanSpec:
        stop = self.stop_after
        not_before = now
        if self.while_playing == "rest" and self._last_input is not None and self._last_input >= 0:
            not_before = max(now, self._last_input + int(self.gap * NS))
        from_time = max(from_time, not_before)
        return PlanSpec(
            self.constraints(max_polyphony=self.polyphony),
            horizon=from_time + int(self.horizon * NS),
            not_before=not_before,
            until=self._last_input + int(stop * NS) if stop > 0 and self._last_input is not None and self._last_input >= 0 else None,
            density=self.density,
            max_note_ns=int(self.max_note * NS),
        )

    def process(self, events: Sequence[Event], now: int) -> list[Event]:
        heard = self.hear_events(events)
        if heard:
            self._last_input = max(t for t, _, _ in heard)
            for _, pitch, velocity in heard:
                (self._held.add if velocity else self._held.discard)(pitch)
            self._started = True
            self._drop_stale(now)
            spec = self._spec(now, now)
            feed = hear_all(heard)
            resting = self._resting()

            def work(track: Track) -> list[Step]:
                feed(track)
                track.cut(now, keep_sounding=True)
                return [] if resting else track.plan(spec)

            self._request(work, now)
        elif not self._started and self.autostart and self._last_input is None:
            self._started = True
            spec = self._spec(now, now)
            self._request(lambda track: track.plan(spec), now)
        elif not self._requested and not self._resting() and self._active(now) and self._refill_time() <= now:
            spec = self._spec(max(now, self._plan_end), now)
            self._request(lambda track: track.plan(spec), now)
        return self.take_pending()

    def _drop_stale(self, now: int) -> None:
        """Cancel planned notes that have not started; forget finished ones."""
        kept = drop_unstarted(self._notes, now, self.cancel)
        self._notes = kept
        self._plan_end = max([now] + [n.off for n in kept])
        self._gen += 1  # a plan still being sampled is stale too
        self.replans += 1

    def _request(self, work, now: int) -> None:
        self._requested = True

        def done(steps: list[Step]) -> None:
            self._requested = False
            if not steps:
                self._retry_at = now + RETRY_NS
                return
            self._notes += self.queue_plan(steps)
            self._plan_end = max(self._plan_end, steps[-1].time)

        self.submit(work, done)

    def _refill_time(self) -> int:
        return max(self._retry_at, self._plan_end - int(self.horizon * NS / 2))

    def next_wakeup(self) -> int | None:
        if self._pending:
            return 0
        if not self._started:
            return 0 if self.autostart and self._last_input is None else None
        if self._requested or self._resting():
            return None
        return self._refill_time()

    def reset(self) -> None:
        super().reset()
        self._last_input = -1  # after a panic, autostart waits for the performer
