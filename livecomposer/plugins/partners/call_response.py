"""Call and response: the performer plays a phrase, pauses, and the machine answers it.

While the performer plays, every note goes to the model as it arrives (on the inference
worker), so when the call ends the model's state has heard all of it; the answer is sampled
from that state, never from a fresh one.  A call ends after ``silence`` seconds without a
note (``trigger: silence``), at the first bar line after the last note ends (``trigger:
bar``, on the shared tempo: the answer starts 40 ms after the bar line, once no late
downbeat note came), or when the ``trigger_cc`` button is pressed (any mode).

With ``develop`` above 0 the answer develops the call (:mod:`.motif`): the call's rhythm
and metre, its motif repeated, sequenced, inverted or displaced, the model choosing every
pitch under a pull toward the variation's next note, and a cadence on a tonic-triad tone
at the end; ``develop`` 0 is the model's free answer, 1 a close variation.  Either way no
pitch comes more than ``max_run`` times in a row unless the call had such a run.

The whole answer is planned at once (the model feeds its own samples, then rolls back) and
scheduled as future-timed events under one tag; its first note sounds at the trigger.  When
the performer plays again, the rest of the answer is cancelled (sounding notes get their
note-offs) unless ``finish_phrase`` is set; either way the model remembers exactly what
was played.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Sequence

import numpy as np

from ...kernel.events import NS_PER_S, Event, Kind, PERFORMER
from ...kernel.plugin import Param, PluginContext
from .common import LinePartner
from .motif import CallNotes, vary
from .track import MotifPlan, PlanSpec, Step, Track, hear_all, plan_motif

NS = NS_PER_S
BAR_LISTEN_NS = 40_000_000  # after a bar line, listen this long for a late downbeat before answering
MAX_ANSWER_NS = 60 * NS
SUSTAIN = 64
FIRST_NOTES = 2  # notes of the answer planned in the first, quick job


class CallResponse(LinePartner):
    name = "call_response"
    summary = "answer each phrase the performer plays, from a model that heard it"
    trigger = Param(default="silence", choices=("silence", "bar", "cc"), doc="what ends a call: a pause, the next bar line, or only the trigger CC")
    silence = Param(default=0.5, min=0.05, max=10.0, doc="seconds without a note that end a call")
    trigger_cc = Param(default=0, min=0, max=127, doc="a CC that ends the call and starts the answer at once (0: none)")
    length = Param(default=2.0, min=0.1, max=64.0, doc="answer length, in `unit`s")
    unit = Param(default="bars", choices=("seconds", "bars", "notes"), doc="what `length` counts")
    finish_phrase = Param(default=False, doc="when the performer plays again, finish the answer instead of stopping")
    density = Param(default=1.0, min=0.25, max=4.0, doc="how busy the answer is: scales the model's time gaps")
    polyphony = Param(default=1, min=1, max=8, doc="most notes the answer holds at once")
    max_note = Param(default=2.0, min=0.05, max=30.0, doc="longest note of the answer, in seconds")
    pedal = Param(default=True, doc="a held sustain pedal (CC 64) keeps the call going; the pause counts from its release")
    develop = Param(default=0.7, min=0.0, max=1.0, doc="0: the model's free answer; 1: a close variation of your motif (rhythm, shape, cadence)")

    def __init__(self, id: str | None = None, **options: Any) -> None:
        super().__init__(id=id, **options)
        self.answers: list[tuple[int, int]] = []  # (trigger time, first note time), for bench and tests
        self.variations: list[list[str]] = []  # the transformations each developed answer used (written by the worker)
        self._call = CallNotes()
        self._vary_rng = np.random.default_rng(0)  # chooses variations (worker thread only)
        self.forget()

    def prepare(self, ctx: PluginContext) -> None:
        super().prepare(ctx)
        self._vary_rng = np.random.default_rng(int(ctx.rng.integers(0, 2**63 - 1)))

    def steering(self) -> tuple[float, float, int | None]:
        """The run limit gives way to a longer run the call itself had."""
        return (self.memory, self.repeat_penalty, max(self.max_run, self._call.longest_run()))

    def forget(self) -> None:
        self._held: set[int] = set()  # performer notes sounding
        self._pedal_down = False
        self._call_notes = 0  # note-ons since the last answer started
        self._last = 0  # time of the performer's last note event
        self._answer_tag = 0
        self._answer_end: int | None = None  # time of the answer's last event, once planned
        self._requested = False  # an answer is being planned

    # -- when does the call end? ------------------------------------------------------------
    def trigger_time(self) -> int | None:
        if self._call_notes == 0 or self._held or self._requested or (self._pedal_down and self.pedal):
            return None
        if self.trigger == "cc":
            return None
        tempo = self.ctx.tempo if self.ctx is not None else None
        if self.trigger == "bar" and tempo is not None:
            return tempo.next_bar(self._last) + BAR_LISTEN_NS
        return self._last + int(self.silence * NS)

    def answering(self, now: int) -> bool:
        return self._requested or (self._answer_end is not None and now <= self._answer_end)

    # -- the plugin -------------------------------------------------------------------------
    def process(self, events: Sequence[Event], now: int) -> list[Event]:
        heard = self.hear_events(events)
        cc_trigger = False
        for e in events:
            if e.kind is not Kind.CONTROL or e.voice != PERFORMER:
                continue
            if self.trigger_cc and e.control == self.trigger_cc and e.value > 0:
                cc_trigger = True
            elif e.control == SUSTAIN and (not self.listen or e.channel == self.listen - 1):
                down = e.value >= 64
                if self._pedal_down and not down:
                    self._last = max(self._last, e.time)  # the sound ends now: the pause starts
                self._pedal_down = down
        if heard:
            interrupted = any(v > 0 for _, _, v in heard) and self.answering(now)
            cut = interrupted and not self.finish_phrase
            if cut:
                self.cancel(self._answer_tag)
                self._gen += 1
                self._requested = False
                self._answer_end = None
            for t, pitch, velocity in heard:
                if velocity:
                    if self._call_notes == 0:
                        self._call.clear()  # a new call
                    self._held.add(pitch)
                    self._call_notes += 1
                    self._call.note_on(t, pitch)
                else:
                    self._held.discard(pitch)
                    self._call.note_off(t, pitch)
                self._last = max(self._last, t)
            work = hear_all(heard)
            if cut:
                def work(track: Track, feed=work, at=now) -> None:  # type: ignore[no-redef]
                    track.cut(at)
                    feed(track)
            self.submit(work, None, fresh_only=False)
        due = self.trigger_time()
        if cc_trigger and self._call_notes and not self._held and not self._requested:  # (the button beats the pedal)
            self._answer(now)
        elif due is not None and due <= now:
            self._answer(due)
        return self.take_pending()

    def next_wakeup(self) -> int | None:
        if self._pending:
            return 0
        return self.trigger_time()

    # -- the answer -------------------------------------------------------------------------
    def _answer(self, start: int) -> None:
        """Plan the answer in two jobs: its first notes come back at once (the first note is
        due at the trigger), the rest is sampled while they already sound."""
        self._requested = True
        self._call_notes = 0
        self._answer_tag = self.ctx.new_tag()  # type: ignore[union-attr]
        tag = self._answer_tag
        spec = self._spec(start)
        develop = self.develop > 0 and len(self._call.notes) >= 2
        head, tail = self._develop_jobs(start, spec) if develop else self._free_jobs(spec)
        opened: list[Step] = []

        def done_head(steps: list[Step]) -> None:
            opened.extend(steps)
            if steps:
                self.answers.append((start, steps[0].time))
                self._pending.extend(self.note_event(s, tag) for s in steps)

        def done_tail(steps: list[Step]) -> None:
            self._requested = False
            every = opened + steps
            self._answer_end = every[-1].time if every else None
            self._pending.extend(self.note_event(s, tag) for s in steps)

        def tail_failed() -> None:  # the head's notes must not hang
            self._requested = False
            self._answer_end = None
            self.cancel(tag)

        self.submit(head, done_head, failed=tail_failed)
        self.submit(tail, done_tail, failed=tail_failed)

    def _free_jobs(self, spec: PlanSpec) -> tuple[Callable[[Track], list[Step]], Callable[[Track], list[Step]]]:
        """The model's own answer: its rhythm and pitches, from the state that heard the call."""
        first = replace(spec, pause_after=FIRST_NOTES) if spec.max_notes is None or spec.max_notes > FIRST_NOTES else spec

        def head(track: Track) -> list[Step]:
            return track.plan(first)

        def tail(track: Track) -> list[Step]:
            if not track.paused:
                return []
            # Paused means exactly FIRST_NOTES note-ons were planned (and some notes are open).
            rest = replace(spec, start=None, max_notes=None if spec.max_notes is None else spec.max_notes - FIRST_NOTES)
            return track.plan(rest)

        return head, tail

    def _develop_jobs(self, start: int, spec: PlanSpec) -> tuple[Callable[[Track], list[Step]], Callable[[Track], list[Step]]]:
        """The answer as a variation of the call.  The variation is chosen in the head job on
        the worker (~50 microseconds the engine thread need not spend); the call's notes go
        along as a copy."""
        tempo = self.ctx.tempo if self.ctx is not None else None
        beat_ns = tempo.beat_ns if tempo is not None else NS // 2
        c = spec.constraints
        scale = tuple(sorted(c.pitch_classes)) if c.pitch_classes is not None else None
        until = spec.until if spec.until is not None else start + MAX_ANSWER_NS
        call = [replace(n) for n in self._call.notes]
        develop, low, high, rng = self.develop, self.low, self.high, self._vary_rng
        triad = self.tonic_triad()
        allowed = None if triad is None else (triad if c.pitch_classes is None else triad & c.pitch_classes)
        cadence = replace(c, pitch_classes=frozenset(allowed), max_polyphony=1) if allowed else None
        constraints = replace(c, max_polyphony=1)
        plan: list[MotifPlan] = []

        def head(track: Track) -> list[Step]:
            motif, kinds = vary(call, start, until, spec.max_notes, develop, beat_ns, scale, low, high, rng)
            plan.append(motif)
            self.variations.append(kinds)
            return plan_motif(track, motif, slice(0, FIRST_NOTES), constraints, cadence)

        def tail(track: Track) -> list[Step]:
            return plan_motif(track, plan[0], slice(FIRST_NOTES, None), constraints, cadence) if plan else []

        return head, tail

    def _spec(self, start: int) -> PlanSpec:
        unit, length = self.unit, self.length
        until = start + MAX_ANSWER_NS
        max_notes = None
        if unit == "seconds":
            until = start + int(length * NS)
        elif unit == "bars":
            tempo = self.ctx.tempo if self.ctx is not None else None
            bar_ns = tempo.bar_ns if tempo is not None else 2 * NS  # 4/4 at 120 BPM
            until = start + int(length * bar_ns)
        else:
            max_notes = max(1, int(round(length)))
        return PlanSpec(
            self.constraints(max_polyphony=self.polyphony),
            start=start,
            until=until,
            max_notes=max_notes,
            density=self.density,
            max_note_ns=int(self.max_note * NS),
        )
