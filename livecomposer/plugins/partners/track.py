"""The worker half of a playing partner: its model history, and planning from it.

:class:`Track` lives on the **inference worker**.  It is this partner's view of the duet
as the model heard it: every performer event and every machine event that was scheduled
to sound, fed one network step each, in time order.  Machine events that are planned but
still in the future wait in ``future`` and are fed when time passes them, so when the
performer interrupts, the model's history holds exactly what sounded (never re-primed
from scratch).  Planning looks ahead from the committed state (feeds its own samples)
and restores the state afterwards.  Only jobs submitted through ``ModelPartner.submit``
touch it, and the worker runs jobs one at a time, in order.

Every note-on the track samples is steered the same way (:meth:`Track.steer`): the
session memory (:mod:`.memory`, learnt from the performer's note-ons as they are heard)
is mixed into the pitch distribution with weight ``memory``, the voice's last pitch pays
``repeat_penalty``, and a pitch the machine has just played ``max_run`` times in a row is
ruled out.  The partner sets these per job from its live parameters.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np

from ...kernel.events import NS_PER_S
from ...model.api import MACHINE_VOICE, PERFORMER_VOICE, ChordConstraints, Constraints, ModelEvent
from ...kernel.theory import degree_step
from .memory import SessionMemory

NS = NS_PER_S
LINE = 6  # note-ons kept as the memory's context (its order + 1, and then some)
_DIST = np.abs(np.arange(128)[:, None] - np.arange(128)[None, :]).astype(float)  # semitones between pitches


@dataclass(frozen=True, slots=True)
class Step:
    """A machine event the model planned: absolute time (ns), pitch, velocity (0: note-off)."""

    time: int
    pitch: int
    velocity: int


@dataclass(frozen=True)
class PlanSpec:
    """How far and how to sample a plan.

    ``start``: the first event is a note-on exactly then.  ``until``: nothing starts at or
    after it, and held notes end there.  ``horizon``: stop starting notes once the plan
    reaches it (held notes are still finished by the model; a note-on beyond it is left to
    a later plan, except the plan's first).  ``max_notes``: stop after
    this many note-ons.  ``density`` scales the model's time gaps (2: twice as busy).
    """

    constraints: Constraints
    start: int | None = None
    until: int | None = None
    horizon: int | None = None
    max_notes: int | None = None
    density: float = 1.0
    max_note_ns: int = 2 * NS
    max_events: int = 400
    pause_after: int | None = None  # stop right after this many note-ons, notes left open (a later plan goes on)
    not_before: int | None = None  # no event before this (the plan starts from an older event)


class Track:
    """One partner's model history (inference worker only; see the module docstring)."""

    def __init__(self, model: Any, rng: np.random.Generator) -> None:
        self.model = model
        self.rng = rng
        self.state: Any = None  # this history, saved when another track's job took the model
        self.t_last: int | None = None  # time of the last event fed into ``state``
        self.held: dict[int, int] = {}  # machine pitch -> note-on time, in ``state``
        self.future: deque[Step] = deque()  # planned machine events not yet fed (time order)
        self.fed = 0  # events fed into the committed state (for tests and status)
        self.paused = False  # the last plan stopped at ``pause_after`` with notes open
        self.memory = SessionMemory()
        self.line: deque[int] = deque(maxlen=LINE)  # note-on pitches fed, both voices (memory context)
        self.mine: deque[int] = deque(maxlen=LINE)  # the machine's note-on pitches fed (runs)
        self.chord: tuple[int, ...] = ()  # the machine's note-ons at its latest onset fed (comping)
        self._chord_t = -1
        # Steering, set by the partner at the start of each job from its live parameters.
        self.memory_weight = 0.0
        self.repeat_penalty = 0.0
        self.max_run: int | None = None

    # -- one job --------------------------------------------------------------------------
    def run(self, work: Callable[["Track"], Any]) -> Any:
        """Run ``work`` with the shared model holding this track's history.  The model keeps
        it after the job (``model.holder``): it is saved only when another track's job takes
        the model, so a partner's next job starts from it as it is (a copy after every job
        cost microseconds on the harmonizer's latency path)."""
        m = self.model
        holder = m.holder
        if holder is not self:
            if holder is not None:
                holder.state = m.get_state()
            if self.state is None:
                m.reset()
            else:
                m.set_state(self.state)
            m.holder = self
        return work(self)

    def _feed(self, t: int, pitch: int, velocity: int, voice: int,
              ask: Callable[[], ChordConstraints] | None = None) -> list[int]:
        """Feed one event.  With ``ask``, also the chord the model answers it with, drawn in
        the same call (``ask`` builds its constraints once the event is in this history)."""
        dt = 0.0 if self.t_last is None else max(0, t - self.t_last) / NS
        event = ModelEvent(dt, int(pitch), int(velocity), voice)
        self.t_last = t if self.t_last is None else max(self.t_last, t)
        self.fed += 1
        if velocity > 0:
            self.line.append(pitch)
            if voice == PERFORMER_VOICE:
                self.memory.learn(pitch)
            else:
                self.mine.append(pitch)
                self.chord = self.chord + (pitch,) if t == self._chord_t else (pitch,)
                self._chord_t = t
        if voice == MACHINE_VOICE:
            if velocity > 0:
                self.held[pitch] = t
            else:
                self.held.pop(pitch, None)
        if ask is not None:
            return self.model.feed_and_sample_chord(event, ask(), self.rng)
        self.model.feed(event)
        return []

    # -- history --------------------------------------------------------------------------
    def advance(self, t: int) -> None:
        """Feed the planned machine events that have sounded by ``t``."""
        future = self.future
        while future and future[0].time <= t:
            s = future.popleft()
            self._feed(s.time, s.pitch, s.velocity, MACHINE_VOICE)

    def hear(self, t: int, pitch: int, velocity: int) -> None:
        """A performer note-on (velocity > 0) or note-off at ``t``."""
        self.advance(t)
        self._feed(t, pitch, velocity, PERFORMER_VOICE)

    def hear_and_answer(self, t: int, pitch: int, velocity: int, ask: Callable[[], ChordConstraints]) -> list[int]:
        """A performer note-on, and the chord the model answers it with (under ``ask()``'s
        constraints, built once the note is in this history), drawn in the same compiled
        call as the step: a harmony's latency path.  The chord is not fed (:meth:`play`
        feeds each note when it sounds)."""
        self.advance(t)
        return self._feed(t, pitch, velocity, PERFORMER_VOICE, ask)

    def play(self, t: int, pitch: int, velocity: int) -> None:
        """A machine event that sounds now (harmonizer): straight into the history."""
        self.advance(t)
        self._feed(t, pitch, velocity, MACHINE_VOICE)

    def prime(self) -> None:
        """Compute now what the next feed can (see ``StreamingModel.prime``): for a job that
        ends where a latency-path job will start."""
        self.model.prime()

    def cut(self, t: int, keep_sounding: bool = False) -> None:
        """The plan after ``t`` is dropped.  Notes already sounding either keep their planned
        note-off (``keep_sounding``) or end at ``t`` (the engine sent their note-offs)."""
        self.advance(t)
        if keep_sounding:
            need = set(self.held)
            kept = deque()
            for s in self.future:
                if s.velocity == 0 and s.pitch in need:
                    kept.append(s)
                    need.discard(s.pitch)
            self.future = kept
            for pitch in sorted(need):
                self._feed(t, pitch, 0, MACHINE_VOICE)
        else:
            self.future = deque()
            for pitch in sorted(self.held):
                self._feed(t, pitch, 0, MACHINE_VOICE)

    def end_time(self) -> int | None:
        """When the last planned (or fed) event happens."""
        return self.future[-1].time if self.future else self.t_last

    # -- steering -------------------------------------------------------------------------
    def steer(self, c: Constraints, line: Sequence[int], mine: Sequence[int]) -> Constraints:
        """``c`` with the memory's mixture, the repetition penalty and the run limit, for a
        note-on that follows ``line`` (both voices' pitches) and ``mine`` (the machine's)."""
        if c.note_on is False or c.pitch is not None:
            return c
        changes: dict[str, Any] = {}
        if self.memory_weight > 0.0:
            q = self.memory.predict(line)
            if q is not None:
                changes["pitch_mix"] = (self.memory_weight, q)
        if self.repeat_penalty:
            changes["repeat_penalty"] = self.repeat_penalty
        run = self.max_run
        if run is not None and len(mine) >= run and len(set(list(mine)[-run:])) == 1:
            changes["exclude_pitches"] = c.exclude_pitches | {mine[-1]}
        return replace(c, **changes) if changes else c

    def sample(self, c: Constraints, line: Sequence[int], mine: Sequence[int]) -> ModelEvent:
        """One steered draw from the model's current state."""
        return self.model.sample(self.steer(c, line, mine), self.rng)

    # -- planning -------------------------------------------------------------------------
    def _lookahead(self) -> tuple[Any, int, dict[int, int]]:
        """Feed the planned future on top of the committed state; returns what to restore
        (``self._line``/``self._mine`` become the lines as they will be by then)."""
        m = self.model
        snapshot = m.get_state()
        t = self.t_last if self.t_last is not None else 0
        held = dict(self.held)
        line, mine = deque(self.line, maxlen=LINE), deque(self.mine, maxlen=LINE)
        for s in self.future:
            m.feed(ModelEvent(max(0, s.time - t) / NS, s.pitch, s.velocity, MACHINE_VOICE))
            t = max(t, s.time)
            if s.velocity > 0:
                held[s.pitch] = s.time
                line.append(s.pitch)
                mine.append(s.pitch)
            else:
                held.pop(s.pitch, None)
        self._line, self._mine = line, mine
        return snapshot, t, held

    def plan(self, spec: PlanSpec) -> list[Step]:
        """Sample machine events after everything heard and planned so far; they join the future."""
        m = self.model
        snapshot, t, held = self._lookahead()
        out: list[Step] = []
        c0 = spec.constraints
        rng = self.rng
        notes = 0
        first = spec.start is not None
        finishing = False
        paused = False

        line, mine = self._line, self._mine

        def emit(time: int, pitch: int, velocity: int) -> None:
            nonlocal t
            m.feed(ModelEvent(max(0, time - t) / NS, pitch, velocity, MACHINE_VOICE))
            t = max(t, time)
            out.append(Step(time, pitch, velocity))
            if velocity > 0:
                held[pitch] = time
                line.append(pitch)
                mine.append(pitch)
            else:
                held.pop(pitch, None)

        def close_all(time: int) -> None:
            for pitch in sorted(held, key=lambda p: held[p]):
                emit(max(time, t), pitch, 0)

        try:
            for _ in range(spec.max_events):
                if spec.max_notes is not None and notes >= spec.max_notes:
                    finishing = True
                if finishing and not held:
                    break
                fixed_dt: int | None = None
                if first:
                    fixed_dt = max(0, spec.start - t)  # type: ignore[operator]
                    c = replace(c0, note_on=True, dt=fixed_dt / NS)
                elif finishing:
                    c = replace(c0, note_on=False)
                else:
                    c = c0
                if spec.not_before is not None and t < spec.not_before and fixed_dt is None:
                    # Time has passed since the last event: only what can still happen.
                    c = replace(c, dt_range=(min(8.0, (spec.not_before - t) / NS * spec.density), 1e9))
                try:
                    ev = m.sample(self.steer(c, line, mine), rng)
                except ValueError:
                    if held:  # nothing fits (e.g. range moved): end what sounds, then try again
                        oldest = min(held, key=lambda p: held[p])
                        emit(t + NS // 10, oldest, 0)
                        continue
                    break
                tn = t + (fixed_dt if fixed_dt is not None else int(ev.dt * NS / spec.density))
                if spec.not_before is not None:
                    tn = max(tn, spec.not_before)
                pitch, velocity = ev.pitch, ev.velocity
                if held:  # a note held too long ends first
                    oldest = min(held, key=lambda p: held[p])
                    limit = held[oldest] + spec.max_note_ns
                    if limit < tn:
                        if spec.until is not None and limit >= spec.until:
                            close_all(spec.until)
                            break
                        emit(max(t, limit), oldest, 0)
                        continue
                if spec.until is not None and tn >= spec.until:
                    close_all(spec.until)
                    break
                if spec.horizon is not None and velocity > 0 and tn > spec.horizon and notes:
                    finishing = True  # a note beyond the horizon: left for a later plan to decide
                    continue
                emit(tn, pitch, velocity)
                if velocity > 0:
                    notes += 1
                    first = False
                    if spec.pause_after is not None and notes >= spec.pause_after and not finishing:
                        paused = True
                        break
                if spec.horizon is not None and tn >= spec.horizon:
                    finishing = True
            if not paused:
                close_all(t + NS // 4)  # out of steps: nothing may hang
        finally:
            m.set_state(snapshot)
        self.paused = paused
        self.future.extend(out)
        return out

    def _place(self, on: int, end: int, t: int, tries: Sequence[Constraints], out: list[Step]) -> int:
        """(Within a lookahead) one machine note from ``on`` to ``end``, the model asked under
        each of ``tries`` in turn until one fits (none fits: no note); fed, and added to
        ``out``.  The time of the last event fed."""
        for c in tries:
            try:
                ev = self.sample(replace(c, note_on=True, dt=(on - t) / NS), self._line, self._mine)
            except ValueError:
                continue
            self._line.append(ev.pitch)
            self._mine.append(ev.pitch)
            self.model.feed(ModelEvent((on - t) / NS, ev.pitch, ev.velocity, MACHINE_VOICE))
            self.model.feed(ModelEvent((end - on) / NS, ev.pitch, 0, MACHINE_VOICE))
            out += [Step(on, ev.pitch, ev.velocity), Step(end, ev.pitch, 0)]
            return end
        return t

    def plan_grid(self, onsets: Sequence[int], ends: Sequence[int], constraints: Sequence[Constraints], density: float,
                  fallback: Constraints) -> list[Step]:
        """Notes at fixed times (a tempo grid): the model picks each pitch and velocity.

        ``onsets[i]`` gets a note with probability ``density`` (the model is asked for a
        note-on at exactly that time) under ``constraints[i]`` (or ``fallback`` if nothing
        fits them), held until ``ends[i]``.
        """
        m = self.model
        snapshot, t, held = self._lookahead()
        out: list[Step] = []
        try:
            for on, end, point in zip(onsets, ends, constraints):
                if on < t or (density < 1.0 and self.rng.random() >= density):
                    continue
                for pitch in sorted(held):  # monophonic grid voice: anything left ends first
                    m.feed(ModelEvent(max(0, on - t) / NS, pitch, 0, MACHINE_VOICE))
                    out.append(Step(max(on, t), pitch, 0))
                    t = max(t, on)
                held.clear()
                t = self._place(on, end, t, (point, fallback), out)
        finally:
            m.set_state(snapshot)
        self.future.extend(out)
        return out




def hear_all(heard: Sequence[tuple[int, int, int]]) -> Callable[[Track], None]:
    """A job that feeds performer events in order."""

    def work(track: Track) -> None:
        for t, pitch, velocity in heard:
            track.hear(t, pitch, velocity)

    return work


@dataclass(frozen=True)
class MotifPlan:
    """A variation of the performer's motif, as the engine side chose it (see :mod:`.motif`).

    Note ``i`` starts at ``onsets[i]`` and ends at ``ends[i]`` (one voice).  Its pitch is
    the model's, pulled toward a target by ``strength`` logits per semitone away: note 0's
    target is ``first``; note i's is ``moves[i]`` scale steps (of ``scale``, or semitones
    when it is None) from the pitch actually chosen before it, so the motif's shape
    survives the model's own choices; ``None``: no target (the model's free note).
    """

    onsets: tuple[int, ...]
    ends: tuple[int, ...]
    first: int
    moves: tuple[int | None, ...]
    scale: tuple[int, ...] | None
    strength: float


def plan_motif(track: Track, motif: MotifPlan, part: slice, constraints: Constraints,
               final: Constraints | None = None) -> list[Step]:
    """(Worker) Plan notes ``part`` of ``motif`` after what is planned so far; ``final``
    (a cadence) constrains the motif's last note, falling back to ``constraints``."""
    m = track.model
    snapshot, t, held = track._lookahead()
    mine = track._mine
    out: list[Step] = []
    n = len(motif.onsets)
    try:
        for pitch in sorted(held):  # one voice: anything still sounding ends first
            on = max(t, motif.onsets[part.start or 0] if (part.start or 0) < n else t)
            m.feed(ModelEvent(max(0, on - t) / NS, pitch, 0, MACHINE_VOICE))
            out.append(Step(on, pitch, 0))
            t = on
        for i in range(*part.indices(n)):
            on, end = motif.onsets[i], motif.ends[i]
            if on < t:
                continue
            if i == 0:
                target: int | None = motif.first
            elif motif.moves[i] is None or not mine:
                target = None
            else:
                target = degree_step(mine[-1], motif.moves[i], motif.scale)  # type: ignore[arg-type]
            base = constraints if target is None else replace(constraints, pitch_bias=-motif.strength * _DIST[max(0, min(127, target))])
            tries = (replace(final, pitch_bias=base.pitch_bias), base) if final is not None and i == n - 1 else (base,)
            t = track._place(on, end, t, tries, out)
    finally:
        m.set_state(snapshot)
    track.future.extend(out)
    return out
