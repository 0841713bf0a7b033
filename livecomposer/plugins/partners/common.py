"""What the four playing partners share: their settings, and the engine-thread half.

:class:`ModelPartner` (a :class:`Plugin`) lives on the **engine thread**: it reads the
performer's events, decides when to ask the model for something, and turns the answers
into timed MIDI events.  It never waits for the model: work goes to the inference worker
as jobs on the partner's :class:`~.track.Track` (the worker half, in :mod:`.track`: model
history, session memory, planning), results come back through ``done()`` and are
returned from the next :meth:`process` (``next_wakeup`` asks for it).

The settings (typed :class:`~livecomposer.kernel.plugin.Param` attributes declared here and by each mode) are
the engine thread's too: knobs and OSC change them between ticks, so a job reads the
values captured when it was submitted (as :meth:`ModelPartner.steering` does), never
``self.<setting>`` on the worker.

Several partners may share one loaded model (the engine caches models by name): each
:class:`Track` keeps its own snapshot and restores it at the start of every job.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np

from ...kernel.events import NS_PER_S, Event, Kind, PERFORMER
from ...model.api import MACHINE_VOICE, Constraints
from ...kernel.theory import _MAJOR_PROFILE as MAJOR_PROFILE
from ...kernel.theory import _MINOR_PROFILE as MINOR_PROFILE
from ...kernel.theory import PITCH_CLASS_NAMES, SCALES, TheoryError, normalize_scale, parse_note, scale_pitch_classes, split_key
from ...kernel.inference import EngineContext, StepCost
from ...kernel.plugin import OptionError, Param, Plugin, PluginContext
from ..effects import KeyParam
from .track import Step, Track

log = logging.getLogger(__name__)

NS = NS_PER_S
TONICS = PITCH_CLASS_NAMES
KEY_MODES = ("auto", "none")


# --------------------------------------------------------------------------------------
# Parameters that speak musicians' words.


class NoteParam(Param[int]):
    """A MIDI note given as a number (0-127) or a name (``C3``, ``F#2``); a CC sweeps 0-127."""

    def coerce(self, value: Any) -> int:
        try:
            return parse_note(value)
        except TheoryError as exc:
            raise ValueError(str(exc)) from None

    def clamp(self, value: float) -> Any:
        return int(round(max(0.0, min(127.0, float(value)))))


class PartnerKeyParam(KeyParam):
    """``auto`` (follow the performer's key), ``none`` (no key), or a key like ``D`` / ``D minor``.
    A CC sweeps the twelve tonics."""

    def coerce(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be auto, none, or a key like 'D' or 'D minor'; got {value!r}")
        if value.strip().lower() in KEY_MODES:
            return value.strip().lower()
        return super().coerce(value)


class ScaleParam(Param[str]):
    """A scale name (``major``, ``dorian``, ``harmonic minor``...); a CC steps through them."""

    def coerce(self, value: Any) -> str:
        try:
            return normalize_scale(value)
        except (TheoryError, AttributeError) as exc:
            raise ValueError(str(exc)) from None

    def clamp(self, value: float) -> Any:
        names = tuple(SCALES)
        return names[int(round(max(0.0, min(1.0, float(value))) * (len(names) - 1)))]


def _diatonic_sets() -> list[frozenset[int]]:
    """The twelve seven-note diatonic sets, set ``c`` centred on fifth ``c`` (C=0, G=1, ...)."""
    return [frozenset(((c + k) * 7) % 12 for k in range(-3, 4)) for c in range(12)]


class KeyFollower:
    """Which seven notes the performer plays in (``key: auto``), from their last notes.

    First the diatonic sets that hold the most of the recent notes (so a pitch class the
    performer played is never ruled out while another set allows it); among those, the one
    of the major or minor key the Krumhansl-Kessler profiles like best (as
    :func:`livecomposer.kernel.theory.estimate_key`, whose pure-Python loop costs ~0.5 ms).  On
    the held-out folk tunes and chorales, from their first 4-32 notes, it finds the whole
    piece's scale 74 % of the time.  A phrase without the 4th and 7th degrees is ambiguous:
    the demo's first call (D F# A D C# B A F# A) reads as A major / F# minor.  Only the set
    constrains the machine.  About 20 microseconds, on the engine thread.
    """

    _SETS = _diatonic_sets()
    _MASK = np.array([[pc in s for pc in range(12)] for s in _SETS], dtype=float)
    _PROFILES: np.ndarray | None = None
    _KEY_SET: list[int] = []  # profile row -> index of its diatonic set

    def __init__(self, size: int = 32) -> None:
        self.notes: deque[int] = deque(maxlen=size)
        self.hist = np.zeros(12)

    @classmethod
    def _table(cls) -> np.ndarray:
        if cls._PROFILES is None:
            rows, sets = [], []
            for tonic in range(12):
                for scale, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
                    p = np.roll(np.asarray(profile, dtype=float), tonic)
                    p = p - p.mean()
                    rows.append(p / np.linalg.norm(p))
                    sets.append(cls._SETS.index(scale_pitch_classes(tonic, scale)))
            cls._KEY_SET = sets
            cls._PROFILES = np.array(rows)
        return cls._PROFILES

    def add(self, note: int) -> None:
        if len(self.notes) == self.notes.maxlen:
            self.hist[self.notes[0] % 12] -= 1.0
        self.notes.append(note)
        self.hist[note % 12] += 1.0

    def pitch_classes(self) -> frozenset[int] | None:
        if not self.notes:
            return None
        coverage = self._MASK @ self.hist
        best = coverage >= coverage.max() - 1e-9
        h = self.hist - self.hist.mean()
        norm = np.linalg.norm(h)
        if norm == 0:  # every pitch class alike: no key to follow
            return None
        scores = self._table() @ (h / norm)
        row = self._best_row(best, scores)
        return None if row is None else self._SETS[self._KEY_SET[row]]

    def _best_row(self, best: np.ndarray, scores: np.ndarray) -> int | None:
        for row in np.argsort(-scores, kind="stable"):
            if best[self._KEY_SET[row]]:
                return int(row)
        return None  # unreachable: every set is some key's

    def key(self) -> tuple[int, str] | None:
        """(tonic, "major" or "minor") of the key :meth:`pitch_classes` chose (for cadences)."""
        if not self.notes:
            return None
        coverage = self._MASK @ self.hist
        h = self.hist - self.hist.mean()
        norm = np.linalg.norm(h)
        if norm == 0:
            return None
        row = self._best_row(coverage >= coverage.max() - 1e-9, self._table() @ (h / norm))
        return None if row is None else (row // 2, ("major", "minor")[row % 2])


# --------------------------------------------------------------------------------------
# The engine side.


@dataclass
class Note:
    """A machine note as scheduled: for cancelling what has not sounded yet."""

    on: int
    off: int
    pitch: int
    tag: int


def drop_unstarted(notes: list[Note], now: int, cancel) -> list[Note]:
    """Cancel (by tag) the planned notes that have not started by ``now``; return those still
    sounding.  Finished notes are forgotten."""
    kept = []
    for note in notes:
        if note.on > now:
            cancel(note.tag)
        elif note.off > now:
            kept.append(note)
    return kept


class ModelPartner(Plugin):
    """Base of the playing partners: settings, model loading, job plumbing, event output.

    The settings below are every partner's; each mode adds its own and starts some of these
    elsewhere (``model = ModelPartner.model.with_default("chorale-harmony")``).
    """

    model = Param(default="folk-melody", doc="shipped model name or checkpoint folder (loaded when the preset starts)", live=False)
    channel = Param(default=2, min=1, max=16, doc="MIDI channel of the machine's notes (1-16)")
    listen = Param(default=0, min=0, max=16, doc="performer channel to listen to (1-16); 0: all")
    low = NoteParam(default=parse_note("C4"), min=0, max=127, doc="lowest note the machine plays (C4 = 60)")
    high = NoteParam(default=parse_note("C6"), min=0, max=127, doc="highest note the machine plays")
    key = PartnerKeyParam(default="auto", doc="auto: the performer's key; none: any note; or 'D', 'D minor'")
    scale = ScaleParam(default="major", doc="scale on the key's tonic (when the key names none)")
    temperature = Param(default=0.9, min=0.05, max=2.0, doc="randomness: low is safe, high is adventurous")
    top_p = Param(default=0.95, min=0.05, max=1.0, doc="sample only from the most likely choices covering this probability")
    memory = Param(default=0.0, min=0.0, max=1.0, doc="how much the machine plays back what it learnt from you this session (0: the model alone)")

    key_follow_notes = 32  # performer notes remembered for ``key: auto``
    publish_hidden = True  # share the model's hidden state with observers (the visualizer)

    def __init__(self, id: str | None = None, **options: Any) -> None:
        super().__init__(id=id, **options)
        self._split_key(explicit_scale="scale" in options)
        self._check_range()
        self._model: Any = None
        self._track: Track | None = None
        self._pending: list[Event] = []
        self._gen = 0  # bumped when a plan goes stale: late results for it are dropped
        self._recent = KeyFollower(self.key_follow_notes)
        self._auto_pcs: frozenset[int] | None = None
        self.failures = 0

    # -- settings -------------------------------------------------------------------------
    def _split_key(self, explicit_scale: bool = False) -> None:
        key = self.key
        if key in KEY_MODES:
            return
        tonic, scale = split_key(key)
        if scale is not None:
            if explicit_scale and scale != self.scale:
                raise OptionError("scale", f"key {key!r} already says {scale}; drop one of them")
            self.scale = scale
        self.key = TONICS[tonic]

    def _check_range(self) -> None:
        if self.low > self.high:
            raise OptionError("low", f"low ({self.low}) is above high ({self.high})")

    def param_changed(self, name: str) -> None:
        if name == "key":
            self._split_key()
        if name in ("low", "high") and self.low > self.high:
            self.low, self.high = self.high, self.low

    def pitch_classes(self) -> frozenset[int] | None:
        """The pitch classes the machine may play now (None: any)."""
        key = self.key
        if key == "none":
            return None
        if key == "auto":
            return self._auto_pcs
        return scale_pitch_classes(key, self.scale)

    def tonic_triad(self) -> frozenset[int] | None:
        """The pitch classes of the key's tonic triad (where an answer comes to rest), or None."""
        key = self.key
        if key == "none":
            return None
        if key == "auto":
            found = self._recent.key()
            if found is None:
                return None
            tonic, mode = found
            steps: tuple[int, ...] = (0, 4, 7) if mode == "major" else (0, 3, 7)
        else:
            tonic = TONICS.index(key)
            scale = SCALES[self.scale]
            steps = (scale[0], scale[2], scale[4]) if len(scale) >= 5 else (scale[0],)
        return frozenset((tonic + s) % 12 for s in steps)

    def constraints(self, **changes: Any) -> Constraints:
        c = Constraints(
            temperature=self.temperature,
            top_p=self.top_p,
            pitch_range=(self.low, self.high),
            pitch_classes=self.pitch_classes(),
            voice=MACHINE_VOICE,
        )
        return replace(c, **changes) if changes else c

    # -- life cycle -----------------------------------------------------------------------
    def prepare(self, ctx: PluginContext) -> None:
        """Loads the model (never in ``__init__``: ``presets check`` builds graphs without models)."""
        super().prepare(ctx)
        self._model = ctx.load_model(self.model)
        seed = int(ctx.rng.integers(0, 2**63 - 1))
        self._track = Track(self._model, np.random.default_rng(seed))

    def reset(self) -> None:
        """The engine released every note (panic, preset switch): forget plans, tell the model."""
        self._pending.clear()
        self._gen += 1
        self.forget()
        if self._track is not None and self.ctx is not None:
            now = self.ctx.now()
            self.submit(lambda track: track.cut(now), None)

    def forget(self) -> None:
        """Mode-specific: drop plans and held-note bookkeeping."""

    # -- talking to the worker ------------------------------------------------------------
    def submit(
        self,
        work: Callable[[Track], Any],
        done: Callable[[Any], None] | None,
        fresh_only: bool = True,
        failed: Callable[[], None] | None = None,
        inline: StepCost | None = None,
        after_send: bool = False,
    ) -> None:
        """Run ``work(track)`` on the inference worker; ``done(result)`` back here, unless the
        plan it belongs to went stale meanwhile (``fresh_only``).  If it raised, ``failed()``
        runs instead (to release what an earlier part of the plan started).  Every job also
        brings back the model's hidden state, published as ``model.hidden`` (visuals).
        ``inline``: a small job on the latency path, run on the engine thread right after
        this tick's sends while its recent cost fits (:meth:`EngineContext.submit_inline`),
        and not publishing the hidden state (the observers' work would delay the answer:
        the job that follows it publishes);
        ``after_send``: handed to the worker only after this tick's sends."""
        assert self.ctx is not None and self._track is not None, "prepare() first"
        track = self._track
        gen = self._gen
        steer = self.steering()
        publish = self.publish_hidden and inline is None  # (a latency-path job leaves it to the job after it)

        def job() -> Any:
            track.memory_weight, track.repeat_penalty, track.max_run = steer
            result = track.run(work)
            return result, track.model.hidden_features() if publish else None

        def finished(outcome: Any) -> None:
            if isinstance(outcome, BaseException):
                self.failures += 1
                log.error("%s: model work failed: %s", self.id, outcome)
                if failed is not None:
                    failed()
                return
            result, hidden = outcome
            if hidden is not None and self.ctx is not None:
                self.ctx.publish("model.hidden", hidden)
            if done is None or (fresh_only and gen != self._gen):
                return
            done(result)

        if inline is not None and isinstance(self.ctx, EngineContext):
            self.ctx.submit_inline(job, finished, inline)
        elif after_send and isinstance(self.ctx, EngineContext):
            self.ctx.submit_after_send(job, finished)
        else:
            self.ctx.submit(job, finished)

    def steering(self) -> tuple[float, float, int | None]:
        """(memory weight, repetition penalty, run limit) for the jobs submitted now."""
        return (self.memory, 0.0, None)

    def hear_events(self, events: Sequence[Event]) -> list[tuple[int, int, int]]:
        """The performer's note events this plugin listens to, as (time, pitch, velocity)."""
        listen = self.listen
        heard = []
        for e in events:
            if e.voice != PERFORMER or not (e.kind is Kind.NOTE_ON or e.kind is Kind.NOTE_OFF):
                continue
            if listen and e.channel != listen - 1:
                continue
            velocity = e.velocity if e.kind is Kind.NOTE_ON else 0
            heard.append((e.time, e.note, velocity))
            if velocity:
                self._recent.add(e.note)
        if heard and self.key == "auto":  # from the first note on: a guess beats no key
            self._auto_pcs = self._recent.pitch_classes()
        return heard

    # -- output ---------------------------------------------------------------------------
    def note_event(self, step: Step, tag: int) -> Event:
        kind = Kind.NOTE_ON if step.velocity > 0 else Kind.NOTE_OFF
        return Event(kind, step.time, self.channel - 1, step.pitch, step.velocity, voice=self.voice, tag=tag)

    def queue_plan(self, steps: Sequence[Step]) -> list[Note]:
        """Queue the note-ons and note-offs of a planned phrase, each note under its own tag
        (so one can be cancelled alone); returns the notes."""
        ctx = self.ctx
        assert ctx is not None
        notes: list[Note] = []
        for on, off in pair_notes(steps):
            tag = ctx.new_tag()
            notes.append(Note(on.time, off.time, on.pitch, tag))
            self._pending += [self.note_event(on, tag), self.note_event(off, tag)]
        return notes

    def cancel(self, tag: int) -> None:
        """Cancel a tag's events: those scheduled, and those a result that came back in this
        tick left waiting in the output (not scheduled yet, so the engine's cancel misses
        them).  The engine ends the notes of the tag that already sound."""
        assert self.ctx is not None
        self.ctx.cancel(tag)
        if self._pending:
            self._pending = [e for e in self._pending if e.tag != tag]

    def take_pending(self) -> list[Event]:
        out, self._pending = self._pending, []
        return out

    def next_wakeup(self) -> int | None:
        return 0 if self._pending else None


def pair_notes(steps: Sequence[Step]) -> list[tuple[Step, Step]]:
    """Note-ons with their note-offs (each plan closes every note it opens)."""
    open_: dict[int, Step] = {}
    pairs = []
    for s in steps:
        if s.velocity > 0:
            open_[s.pitch] = s
        elif s.pitch in open_:
            pairs.append((open_.pop(s.pitch), s))
    return pairs


class LinePartner(ModelPartner):
    """A partner that plays a line (not the harmonizer's chords): its note-ons also pay the
    repetition penalty and respect the run limit."""

    repeat_penalty = Param(default=0.5, min=0.0, max=4.0, doc="how much the machine avoids repeating its last pitch (logits)")
    max_run = Param(default=2, min=1, max=8, doc="most times in a row the machine plays one pitch")

    def steering(self) -> tuple[float, float, int | None]:
        return (self.memory, self.repeat_penalty, self.max_run)
