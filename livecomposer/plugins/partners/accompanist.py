"""Accompanist: a second voice beside the performer, a bass line or a comping voice.

It plays on the tempo grid (from ``ctx.tempo``): the bass ``grid`` beats apart, the comp
(``part: comping``) in a rhythm ``pattern`` within the bar (the Charleston: beat 1 and the
"and" of 2).  Each point gets a note (a chord) with probability ``density``, held for
``legato`` of the gap; pitches and velocities come from the model, which has heard
everything the performer played.

Harmony: a running chord estimate (:mod:`.chords`, from the performer's recent notes,
weighted by length and recency, matched against triads and sevenths) limits each point to
the chord's tones (the root pulled toward on the bar's strong beats); for the next point,
**foresight** (:func:`.comping.foresee`) keeps only the tones most likely consonant with
the note the model expects the performer to play next, and a performer note still held
right before it rules out what would clash with it.  The comp is voice-led (least total
movement between chords) below the lowest note the performer has played lately (above
the highest, if there is no room below): it never sits in the player's register.

A bar or so is planned ahead; each performer note-on makes the notes that have not been
committed stale, and they are sampled again from the new state, so the line follows the
harmony.  A note is **committed** ``commit`` seconds before it is due (as ReaLJam commits
its chords ahead): it is no longer replanned, so it lands on the beat with the player
instead of arriving late from a replan job that began just before it.  3 ms is above a
replan job's time on the worker (well under a millisecond unloaded) and short enough that
a player's note a little ahead of the beat still steers the note on it: on the held-out
chorales (8 ms onset jitter), 20 ms cost 12 points of consonance, 5 ms 4 points, 3 ms none.

Where the harmony comes from, in order: the performer's held notes (a hard rule), the
foresight for the next point, the chord estimate (``consonant: false`` leaves it all to
the model).  A bass limited to chord tones and pulled to the root would sit on one note:
its repetition penalty is 3 (on the held-out chorales: repeated notes 24% at 0.5, 8% at 3;
the chorales' own basses 2.5%).

The grid (``anchor: auto``): the engine's clock when the performer plays with it, as a
musician with a click or a DAW plays on its beat: a running MIDI clock, or the clock the
phrase's first note falls on (within ``LOCK_TOLERANCE_NS`` of its eighth grid).  Only the
clock knows which eighth is the beat: a tune that starts with an eighth-note pickup and runs
in even eighths shows no beat in its notes (held-out folk tunes: 75% of the bass on the
beat when it was guessed, 100% on the clock).  A first note off the clock's grid is a
player without a click: the grid is anchored to that note, so they are not fought by an
offset grid, and then moves onto the beat their playing shows (:class:`.chords.BeatPhase`).
On the clock, ``auto`` plays ``BEHIND_NS`` (10 ms) behind its beat, a hair laid back and
well inside the 20-50 ms a band spreads around a beat: a performer's note on the beat
(held-out chorales: 8 ms onset jitter) then mostly comes before the bass note is committed
and steers it, as it does on a grid anchored to their own first note (on the clock exactly,
consonance fell 91.5% -> 88.8%; 6 ms behind 90.6%, 10 ms 94.5%).  ``anchor: tempo`` plays
exactly on the grid.
After ``stop_after`` bars without the performer it rests, and starts again with them
(the grid decided afresh).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from ...kernel.events import NS_PER_S, Event
from ...model.api import Constraints
from ...kernel.tempo import Tempo
from ...kernel.theory import parse_note
from ...kernel.plugin import Param, PluginContext
from .common import LinePartner, Note, drop_unstarted
from .chords import BeatPhase, ChordEstimate
from .comping import foresee, plan_comp, safest
from .track import Step, Track, hear_all

NS = NS_PER_S
CONSONANT_WINDOW_NS = 150_000_000  # a grid note this soon after a performer note sounds against it
ROOT_PULL = 1.5  # logits toward the chord's root for a bass note on the bar's strong beats
PATTERNS = {  # comping rhythms: beats within the bar
    "charleston": (0.0, 1.5),
    "halves": (0.0, 2.0),
    "beats": (0.0, 1.0, 2.0, 3.0),
    "offbeats": (0.5, 1.5, 2.5, 3.5),
}
MIN_REGISTER = 9  # semitones the comp needs below (or above) the player's notes
LOCK_TOLERANCE_NS = 35_000_000  # a first note this close to the clock's eighth grid plays with the clock
LOCK_TOLERANCE_BEATS = 0.1  # (at most: at fast tempos an eighth is short, and a chance match likelier)
BEHIND_NS = 10_000_000  # (auto, on the clock) notes sound this late after its beat, so the player's note on it steers them


class Accompanist(LinePartner):
    name = "accompanist"
    summary = "a bass line or a comping voice on the tempo grid, following the performer's harmony"
    model = LinePartner.model.with_default("chorale-harmony")
    channel = LinePartner.channel.with_default(5)
    low = LinePartner.low.with_default(parse_note("C2"))
    high = LinePartner.high.with_default(parse_note("G3"))
    temperature = LinePartner.temperature.with_default(0.8)
    repeat_penalty = LinePartner.repeat_penalty.with_default(3.0)
    grid = Param(default=1.0, min=0.125, max=8.0, doc="beats between the voice's notes")
    legato = Param(default=0.9, min=0.1, max=1.0, doc="how much of the gap each note is held")
    density = Param(default=1.0, min=0.0, max=1.0, doc="share of grid points that get a note")
    horizon = Param(default=4.0, min=0.5, max=32.0, doc="beats planned ahead")
    anchor = Param(default="auto", choices=("auto", "tempo", "first_note"), doc="grid from the tempo, or from the performer's first note; auto: the tempo when following a running MIDI clock or when the first note falls on the clock's grid")
    stop_after = Param(default=2.0, min=0.0, max=64.0, doc="rest after this many bars without a performer note (0: never)")
    consonant = Param(default=True, doc="chord tones of the performer's harmony, the next one chosen to suit the note they will likely play")
    part = Param(default="bass", choices=("bass", "comping"), doc="bass: one note per grid point; comping: voiced chords in `pattern`")
    pattern = Param(default="charleston", choices=tuple(PATTERNS), doc="(comping) the rhythm within the bar")
    voices = Param(default=3, min=2, max=4, doc="(comping) notes per chord")
    commit = Param(default=0.003, min=0.0, max=0.5, doc="seconds before a note is due when it is committed (no longer replanned, so never late)")

    def __init__(self, id: str | None = None, **options: Any) -> None:
        super().__init__(id=id, **options)
        self._coin = np.random.default_rng(0)
        self.forget()

    def prepare(self, ctx: PluginContext) -> None:
        super().prepare(ctx)
        self._coin = np.random.default_rng(int(ctx.rng.integers(0, 2**63 - 1)))

    def forget(self) -> None:
        self._anchor: int | None = None  # grid origin (first_note mode); None: not playing
        self._locked = False  # (anchor: auto) this phrase plays on the engine's clock
        self._playing = False
        self._notes: list[Note] = []
        self._plan_to = 0  # first grid point not planned yet
        self._requested = False
        self._last_on = 0
        self._held: set[int] = set()  # performer notes sounding
        self._harmony = ChordEstimate(self.tempo().beat_ns)
        self._phase = BeatPhase()

    # -- the grid ---------------------------------------------------------------------------
    def tempo(self) -> Tempo:
        tempo = self.ctx.tempo if self.ctx is not None else None
        if tempo is None:
            tempo = self._fallback_tempo = getattr(self, "_fallback_tempo", None) or Tempo(120.0)
        return tempo

    def _on_tempo_grid(self) -> bool:
        if self.anchor == "tempo":
            return True
        if self.anchor == "first_note":
            return False
        return self._locked

    def _with_clock(self, first: int) -> bool:
        """(anchor: auto) Whether the performer plays with the engine's clock: it is a running
        MIDI clock, or their first note falls on the clock's eighth grid."""
        tempo = self.tempo()
        if getattr(tempo, "source", "internal") == "midi" and getattr(tempo, "running", False):
            return True
        eighths = tempo.beat_at(first) * 2
        return abs(eighths - round(eighths)) / 2 * tempo.beat_ns <= self._tolerance()

    def steering(self) -> tuple[float, float, int | None]:
        """A comp holds common tones: its top note may repeat (no penalty, no run limit)."""
        if self.part == "comping":
            return (self.memory, 0.0, None)
        return super().steering()

    def _behind(self) -> int:
        """How late after the clock's beat the notes sound (auto, on the clock)."""
        return BEHIND_NS if self._locked and self.anchor == "auto" else 0

    def _beat(self, t: int) -> float:
        """Grid position of ``t`` in beats (from the tempo, or from the anchor)."""
        tempo = self.tempo()
        if self._on_tempo_grid() or self._anchor is None:
            return tempo.beat_at(t - self._behind())
        return (t - self._anchor) / tempo.beat_ns

    def _time(self, beat: float) -> int:
        tempo = self.tempo()
        if self._on_tempo_grid() or self._anchor is None:
            return tempo.time_of_beat(beat) + self._behind()
        return self._anchor + int(round(beat * tempo.beat_ns))

    def _beats_after(self, b: float) -> list[float]:
        """The first grid beats at or after ``b`` (two candidates, against rounding)."""
        if self.part == "bass":
            grid = self.grid
            k = math.ceil(b / grid - 1e-9)
            return [k * grid, (k + 1) * grid]
        bar = self.tempo().beats_per_bar
        offsets = [o for o in PATTERNS[self.pattern] if o < bar] or [0.0]
        first = math.floor(b / bar) * bar
        return [first + n * bar + o for n in (0, 1, 2) for o in offsets if first + n * bar + o >= b - 1e-9][:2]

    def next_point(self, t: int) -> int:
        """The first grid point at or after ``t``."""
        a, b = self._beats_after(self._beat(t))
        point = self._time(a)
        return point if point >= t else self._time(b)

    def strong(self, t: int) -> bool:
        """On the bar's first or middle beat."""
        half = self.tempo().beats_per_bar / 2
        b = self._beat(t) / half
        return abs(b - round(b)) < 0.02

    def points(self, start: int, count: int, first: int | None = None) -> list[int]:
        """``count`` grid points from ``start`` (and the one after them, which ends the last);
        ``first`` replaces the first (a note played at once, with the performer)."""
        out = [self.next_point(start) if first is None else first]
        while len(out) < count + 1:
            out.append(self.next_point(out[-1] + 1))
        return out

    # -- the plugin -------------------------------------------------------------------------
    def process(self, events: Sequence[Event], now: int) -> list[Event]:
        heard = self.hear_events(events)
        onsets = [t for t, _, v in heard if v > 0]
        harmony = self._harmony
        harmony.beat_ns = self.tempo().beat_ns
        for t, pitch, velocity in heard:
            (self._held.add if velocity else self._held.discard)(pitch)
            (harmony.note_on if velocity else harmony.note_off)(t, pitch)
        if onsets:
            if self._playing and self._rest_at() <= now:
                self._stop()  # it had already come to rest: start afresh with the performer
            first = None
            starting = not self._playing
            if starting:
                self._playing = True
                self._anchor = onsets[0]
                self._locked = self._with_clock(onsets[0])
            for t, _, velocity in heard:
                if velocity:
                    self._follow_phase(t, velocity)
            if starting:
                start = max(onsets[0], now)
                if self._on_tempo_grid():
                    start = self.next_point(onsets[0] - self._tolerance())
                    if start <= now:  # the performer came in a little late on a grid point: with them
                        first = start = now
            else:
                start = self.next_point(self._drop_stale(now) + 1)
            self._last_on = onsets[-1]
            self._plan(start, now, hear_all(heard), first)
        elif heard:
            self.submit(hear_all(heard), None, fresh_only=False)
        if not self._requested and self._playing and self._plan_to - self._lead() <= now and not self._pending:
            if self._rest_at() <= self._plan_to:
                self._stop()
            else:
                self._plan(self._plan_to, now, None)
        return self.take_pending()

    def _tolerance(self) -> int:
        """How far from the clock's grid a performer's first note still counts as on it."""
        return int(min(LOCK_TOLERANCE_NS, LOCK_TOLERANCE_BEATS * self.tempo().beat_ns))

    def _follow_phase(self, t: int, velocity: int) -> None:
        """(Grid from the first note) move the grid onto the beat the playing shows."""
        if self._anchor is None or self._on_tempo_grid():
            return
        beat_ns = self.tempo().beat_ns
        self._phase.add((t - self._anchor) / beat_ns, velocity)
        shift = self._phase.shift()
        if shift:
            self._anchor += int(round(shift * beat_ns))

    def _stop(self) -> None:
        self._playing = False
        self._anchor = None
        self._locked = False
        self._phase = BeatPhase()
        self._notes = [n for n in self._notes if n.off > self._last_on]

    def _rest_at(self) -> int:
        """No note starts at or after this: ``stop_after`` bars after the performer's last note."""
        bars = self.stop_after
        if bars <= 0:
            return 2**62
        return self._last_on + int(bars * self.tempo().bar_ns)

    def _lead(self) -> int:
        return int(self.horizon * self.tempo().beat_ns / 2)

    def _drop_stale(self, now: int) -> int:
        """Cancel the planned notes not yet committed; returns when the last committed one starts."""
        committed = now + int(self.commit * NS)
        self._notes = drop_unstarted(self._notes, committed, self.cancel)
        self._gen += 1
        return max([now] + [n.on for n in self._notes])

    def _register(self) -> tuple[int, int]:
        """(Comping) the part of low..high the player has not used lately: below their lowest
        recent note, or above their highest when there is no room below."""
        low, high = self.low, self.high
        played = self._recent.notes
        if not played:
            return low, high
        below, above = min(played) - 1, max(played) + 1
        if min(high, below) - low >= MIN_REGISTER or high - above < MIN_REGISTER:
            return low, max(low, min(high, below))
        return above, high

    def _plan(self, start: int, now: int, feed, first: int | None = None) -> None:
        if self.part == "bass":
            count = max(1, int(round(self.horizon / self.grid)))
        else:
            per_bar = len(PATTERNS[self.pattern]) / self.tempo().beats_per_bar
            count = max(1, int(round(self.horizon * per_bar)))
        points = self.points(start, count, first)
        legato = self.legato
        rest = self._rest_at()
        pairs = [(on, nxt) for on, nxt in zip(points, points[1:]) if on < rest]
        onsets = [on for on, _ in pairs]
        ends = [on + max(1, int((nxt - on) * legato)) for on, nxt in pairs]
        self._plan_to = points[-1]
        density = self.density
        chord = self._harmony.chord(now)
        foresight = self.consonant
        held = tuple(self._held)
        if self.part == "comping":
            low, high = self._register()
            comp = self.constraints(pitch_range=(low, high))
            chords = [chord if density >= 1.0 or self._coin.random() < density else None for _ in onsets]
            voices = self.voices

            def plan(track: Track) -> list[Step]:
                first = None
                if foresight and chord is not None:
                    # The held notes rule out tones (a hard rule); foresight picks among the rest
                    # when it leaves a chord's worth, else every tone that suits the held notes.
                    suits = chord[1] & suits_held(comp.pitch_classes, held)
                    best = safest(suits, foresee(track))
                    first = best if len(best) >= 2 else suits if len(suits) >= 2 else suits | doubled(held, comp.pitch_classes)
                return plan_comp(track, onsets, ends, chords, comp, voices, first)
        else:
            base = self.constraints()
            strong = [self.strong(on) for on in onsets]

            def plan(track: Track) -> list[Step]:
                per_point, candidates = point_constraints(base, held, chord, strong, foresight)
                if foresight and per_point and candidates:
                    tones = chord[1] if chord is not None else frozenset()
                    per_point[0] = replace(per_point[0], pitch_classes=safest(candidates, foresee(track), prefer=tones))
                return track.plan_grid(onsets, ends, per_point, density, base)

        def work(track: Track) -> list[Step]:
            if feed is not None:
                feed(track)
                track.cut(now, keep_sounding=True)
            return plan(track)

        self._requested = True

        def done(steps: list[Step]) -> None:
            self._requested = False
            self._notes += self.queue_plan(steps)

        self.submit(work, done)

    def next_wakeup(self) -> int | None:
        if self._pending:
            return 0
        if not self._playing or self._requested:
            return None
        return self._plan_to - self._lead()


def doubled(held: Sequence[int], pcs: frozenset[int] | None) -> frozenset[int]:
    """The pitch classes of the held notes (of ``pcs``; None: all) that suit every held note:
    doubling the player's note below it is consonant when the chord's tones are not."""
    return suits_held(pcs, held) & frozenset(p % 12 for p in held)


def suits_held(pcs: frozenset[int] | None, held: Sequence[int]) -> frozenset[int]:
    """The pitch classes (of ``pcs``; None: all) consonant with every note in ``held``."""
    allowed = set(range(12)) if pcs is None else set(pcs)
    for note in held:
        allowed &= {(note + i) % 12 for i in (0, 3, 4, 5, 7, 8, 9)}
    return frozenset(allowed)


def point_constraints(base: Constraints, held: Sequence[int], chord: tuple[int, frozenset[int]] | None,
                      strong: Sequence[bool], consonant: bool) -> tuple[list[Constraints], frozenset[int]]:
    """(Bass, on the worker) each point's constraints: consonant with what the performer
    holds now (it may still sound then), then the chord's tones where some are left, the
    root pulled toward on strong beats; and the first point's candidates for foresight to
    choose among (everything consonant with the held notes)."""
    allowed = suits_held(base.pitch_classes, held)
    if not allowed or not consonant:
        return [base] * len(strong), frozenset()
    if chord is None:
        return [replace(base, pitch_classes=allowed)] * len(strong), allowed
    root, pcs = chord
    tone = replace(base, pitch_classes=(allowed & pcs) or allowed)
    pulled = replace(tone, pitch_bias=np.where(np.arange(128) % 12 == root, ROOT_PULL, 0.0))
    return [pulled if s else tone for s in strong], allowed

