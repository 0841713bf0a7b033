"""Harmonizer: every performer note gets one to three notes that sound with it.

For each performer note-on, a job feeds the note to the model and then asks it for
``voices`` machine note-ons at the same instant (``dt`` fixed to 0),
under the key, the range (below or above the performer's note), and without the
performer's pitch class (no unisons or octave doublings unless ``doublings``), and (with
``consonant``, the default) only among the notes a third, fourth, fifth or sixth from the
performer's and from each note already chosen, so the result is a major or minor triad;
all voices are drawn from the state that heard the note (one network step on the latency
path; the chosen notes are fed to the model right after the answer goes back), so the
model picks the chord and the voicing.  (Without it, the chorale model's own choices were consonant with the melody
only about half the time in our renders.)  Voice leading: each added voice is pulled
(``leading`` logits per semitone) toward the nearest voice of the previous harmony not
yet taken by another, so where the harmony allows the voices hold or move by a step
instead of jumping.  All voices come from one compiled call
with the network step that hears the note (``StreamingModel.feed_and_sample_chord``): a
Python loop of one constrained sample per voice cost about 100 us more on the latency path.
Performer notes still held when the next one comes (legato) count in the consonance rule
too, where a chord can satisfy both.  Session memory (``memory`` > 0): the first voice
drawn mixes in what the performer's own lines did after the last few top notes of the
harmony, so the harmony's top line moves the way the player moves (a few microseconds).
Where the answer is computed: on the engine thread itself, right after the tick that
heard the note has sent the thru copy (``submit(..., inline=...)``), while the job's own
recent cost (:attr:`step_cost`) keeps its p99 within budget and the worker is idle; else on
the inference worker.  Either way the notes leave from :meth:`process` as soon as the
answer is back (in the same tick, when it was computed inline), and they end when the
performer's note ends.  If the performer lets go before the answer
arrives, the answer is dropped.  The latency path is kept short: the engine side only reads
the settings, and once the answer is out a worker job (:meth:`_settle`) feeds the chosen
notes and primes the model (``StreamingModel.prime``), so the next answer's network step is
one compiled call.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Sequence

import numpy as np

from ...kernel.events import Event, note_off, note_on
from ...kernel.inference import StepCost
from ...kernel.theory import parse_note
from ...kernel.plugin import Param, PluginContext
from ...model.api import ChordConstraints
from .common import ModelPartner
from .track import LINE, Track


CONSONANT = frozenset({3, 4, 5, 7, 8, 9})  # thirds, sixths, fourths, fifths (no seconds, sevenths, tritones)
#: The consonance rule as the model's chord draw takes it: bit j of AGREE[pc] is set where
#: pitch class j is a consonant interval from pc, so that pairwise-consonant notes make
#: major and minor triads and their inversions.
AGREE = np.array([sum(1 << ((pc + i) % 12) for i in CONSONANT) for pc in range(12)], np.int64)
_OCTAVES = [frozenset(range(pc, 128, 12)) for pc in range(12)]  # a pitch class's every octave


class Harmonizer(ModelPartner):
    name = "harmonizer"
    summary = "add one to three model-chosen notes under (or over) each performer note"
    model = ModelPartner.model.with_default("chorale-harmony")
    channel = ModelPartner.channel.with_default(4)
    low = ModelPartner.low.with_default(parse_note("C3"))
    temperature = ModelPartner.temperature.with_default(0.7)
    voices = Param(default=2, min=1, max=3, doc="notes added to each performer note")
    position = Param(default="below", choices=("below", "above", "any"), doc="where the added notes go relative to the performer's")
    doublings = Param(default=False, doc="allow octave doublings of the performer's note")
    density = Param(default=1.0, min=0.0, max=1.0, doc="share of performer notes that get harmony")
    level = Param(default=0.85, min=0.1, max=1.5, doc="velocity of the added notes relative to the performer's")
    max_notes = Param(default=6, min=1, max=24, doc="most added notes sounding at once")
    consonant = Param(default=True, doc="each added note a 3rd, 4th, 5th or 6th from the others (so they form triads)")
    leading = Param(default=0.6, min=0.0, max=3.0, doc="voice leading: how strongly each voice stays near where it was (logits per semitone)")

    def __init__(self, id: str | None = None, **options: Any) -> None:
        super().__init__(id=id, **options)
        self._worker_fed: dict[int, list[int]] = {}  # request -> pitches fed (worker thread only)
        self._unfed: list[tuple[int, list[int], int]] = []  # chosen, not yet fed (worker thread only)
        self._voicing: list[int] = []  # the last harmony's pitches (worker thread only)
        self._tops: deque[int] = deque(maxlen=LINE)  # the harmonies' top notes, a line (worker thread only)
        self.step_cost = StepCost()  # the answer's own cost: on the engine thread while it fits
        self.forget()

    def prepare(self, ctx: PluginContext) -> None:
        super().prepare(ctx)
        self._coin = np.random.default_rng(int(ctx.rng.integers(0, 2**63 - 1)))

    def forget(self) -> None:
        self._next_req = 0
        self._waiting: dict[int, int] = {}  # performer pitch -> request still being answered
        self._sounding: dict[int, tuple[int, list[tuple[int, int]]]] = {}  # performer pitch -> (request, [(channel, pitch)])
        self._results: list[tuple[int, int, int, int, list[int]]] = []  # (request, note time, performer pitch, velocity, pitches)
        self.answered = 0

    def _machine_count(self) -> int:
        return sum(len(notes) for _, notes in self._sounding.values())

    def process(self, events: Sequence[Event], now: int) -> list[Event]:
        out: list[Event] = []
        for t, pitch, velocity in self.hear_events(events):
            if velocity:
                out += self._release(pitch, t, now, restrike=True)
                self._request(t, pitch, velocity)
            else:
                out += self._release(pitch, t, now)
        for req, t, pitch, hv, pitches in self._results:
            if self._waiting.get(pitch) != req:
                continue  # released (or struck again) before the answer came: dropped
            del self._waiting[pitch]
            channel = self.channel - 1
            notes = [(channel, p) for p in pitches]
            self._sounding[pitch] = (req, notes)
            # Due with the performer's note, not when the answer came: the output places
            # a message by its due time while that frame is still ahead (through JACK, one
            # period after it), so an answer computed within the period sounds on the same
            # frame as the thru copy; a later one goes out at once, as before.
            out += [note_on(min(t, now), p, hv, channel, voice=self.voice) for _, p in notes]
            self.answered += 1
        if self._results:
            self._results.clear()
            self.submit(self._settle, None, fresh_only=False, after_send=True)  # the worker catches up once the answer is out
        return out

    def next_wakeup(self) -> int | None:
        return 0 if self._results else None

    # -- one performer note ---------------------------------------------------------------
    def _request(self, t: int, pitch: int, velocity: int) -> None:
        harmonize = (self.density >= 1.0 or self._coin.random() < self.density)
        harmonize = harmonize and self._machine_count() < self.max_notes
        self._next_req += 1
        req = self._next_req
        hv = max(1, min(127, int(round(velocity * self.level))))
        if not harmonize:
            def hear(track: Track) -> None:
                self._flush(track)
                track.hear(t, pitch, velocity)
                track.prime()

            self.submit(hear, None, fresh_only=False)
            return
        self._waiting[pitch] = req
        # Only the live settings are read here (the thru copy of this note leaves after this
        # tick's plugins): the job builds the constraints, after the send.
        position, doublings, low, high = self.position, self.doublings, self.low, self.high
        key_pcs = self.pitch_classes()
        temperature, top_p = self.temperature, self.top_p
        consonant, voices, pull, memory = self.consonant, self.voices, self.leading, self.memory
        still = tuple(p for p in self._sounding if p != pitch)  # performer notes still held (legato): not to clash with either
        fed = self._worker_fed
        unfed = self._unfed

        def work(track: Track) -> list[int]:
            # The latency path: one compiled call hears the note (one network step) and
            # draws every voice from that state.  The chosen notes are fed by the next job
            # (_settle, sent to the worker once the answer is out).
            self._flush(track)
            lo, hi = low, high
            if position == "below" and pitch - 1 >= lo:
                hi = min(hi, pitch - 1)
            elif position == "above" and pitch + 1 <= hi:
                lo = max(lo, pitch + 1)

            def ask() -> ChordConstraints:
                mix = None
                if memory > 0 and len(self._tops) >= 2:  # (the session memory has learnt this note)
                    q = track.memory.predict(self._tops)
                    mix = (memory, q) if q is not None else None
                return ChordConstraints(
                    size=voices, velocity=hv, temperature=temperature, top_p=top_p, pitch_range=(lo, hi),
                    pitch_classes=key_pcs, exclude_pitches=frozenset({pitch}) if doublings else _OCTAVES[pitch % 12],
                    anchor=pitch if consonant else None, soft=still, agree=AGREE if consonant else None,
                    lead_from=tuple(self._voicing), lead_pull=pull, pitch_mix=mix)

            chosen = track.hear_and_answer(t, pitch, velocity, ask)
            fed[req] = chosen
            if chosen:
                self._voicing = chosen
                self._tops.append(max(chosen))
            unfed.append((t, chosen, hv))
            return chosen

        self.submit(work, lambda pitches: self._results.append((req, t, pitch, hv, pitches)), fresh_only=True, inline=self.step_cost)

    def _release(self, pitch: int, t: int, now: int, restrike: bool = False) -> list[Event]:
        """End what this performer note started (and tell the model); nothing if it started nothing."""
        out: list[Event] = []
        req = None
        if pitch in self._sounding:
            req, notes = self._sounding.pop(pitch)
            out = [note_off(now, p, ch, voice=self.voice) for ch, p in notes]
        elif pitch in self._waiting:
            req = self._waiting.pop(pitch)
        if restrike and req is None:
            return out
        fed = self._worker_fed

        def work(track: Track) -> None:
            self._flush(track)
            track.hear(t, pitch, 0)  # (struck again without a release: the model hears one first)
            for p in fed.pop(req, []) if req is not None else []:
                track.play(t, p, 0)
            track.prime()

        self.submit(work, None, fresh_only=False)
        return out

    def _settle(self, track: Track) -> None:
        """(Worker) feed the last answer's notes, and prime the model for the next note."""
        self._flush(track)
        track.prime()

    def _flush(self, track: Track) -> None:
        """(Worker) feed the notes chosen by the last answer, in time order."""
        for t, pitches, hv in self._unfed:
            for p in pitches:
                track.play(t, p, hv)
        self._unfed.clear()

    def reset(self) -> None:
        self._results.clear()
        fed = self._worker_fed
        if self._track is not None and self.ctx is not None:
            self.submit(self._flush, None, fresh_only=False)  # before the cut that ends them
        super().reset()
        if self._track is not None and self.ctx is not None:
            self.submit(lambda track: fed.clear(), None, fresh_only=False)
