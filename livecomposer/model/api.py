"""What a playing plugin needs from a music model: one step per event, constrained sampling.

The model sees a stream of :class:`ModelEvent` (time since the previous event, pitch,
velocity or note-off, who played it).  ``feed`` advances the recurrent state by exactly one
step, never re-reading the past; ``sample`` asks "what comes next?" under constraints
without changing the state; ``get_state``/``set_state`` let a plugin look ahead (feed its
own plan) and roll back when the performer plays again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

PERFORMER_VOICE = 0
MACHINE_VOICE = 1


@dataclass(frozen=True, slots=True)
class ModelEvent:
    dt: float  # seconds since the previous event the model was fed
    pitch: int  # 0..127
    velocity: int  # 1..127 for a note-on, 0 for a note-off
    voice: int = PERFORMER_VOICE  # PERFORMER_VOICE or MACHINE_VOICE

    @property
    def is_note_on(self) -> bool:
        return self.velocity > 0


@dataclass(frozen=True)
class Constraints:
    """Limits on the next sampled event.  ``None`` means unconstrained.

    Fixing a field (``pitch``, ``dt``, ``velocity``, ``note_on``) makes the model sample
    only the others, conditioned on the fixed ones.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    pitch_range: tuple[int, int] = (0, 127)
    pitch_classes: frozenset[int] | None = None  # allowed pitch classes (key and scale)
    max_polyphony: int | None = None  # no new note-on while this many notes are held
    dt_range: tuple[float, float] | None = None  # seconds, bounds on the time to the next event
    velocity_range: tuple[int, int] = (1, 127)
    voice: int = MACHINE_VOICE  # whose event is being asked for
    note_on: bool | None = None  # True: must be a note-on; False: must be a note-off
    pitch: int | None = None
    dt: float | None = None
    velocity: int | None = None
    exclude_pitches: frozenset[int] = field(default_factory=frozenset)
    # Steering the pitch head (note-ons only; see livecomposer.model.sampling):
    repeat_penalty: float = 0.0  # subtracted from the logit of the voice's last note-on pitch
    pitch_bias: np.ndarray | None = field(default=None, compare=False)  # 128 logit offsets (a motif's target)
    pitch_mix: tuple[float, np.ndarray] | None = field(default=None, compare=False)  # (weight, 128 probabilities) mixed in


@dataclass(frozen=True, slots=True)
class ChordConstraints:
    """Up to ``size`` note-ons at one instant, all drawn from the current state (one head
    evaluation, then one draw per note, each excluding the notes drawn before it): what a
    harmony asks for on its latency path, in one call with the step that hears the note
    (:meth:`IncrementalModel.feed_and_sample_chord`).

    ``agree`` is a rule between pitch classes: twelve 12-bit masks, ``agree[pc]`` holding
    the classes that may sound with ``pc``.  With a rule, every note agrees with ``anchor``
    (the note being harmonised) and with each note drawn before it, and with ``soft``
    pitches (other notes still sounding) where that still leaves a class; failing all,
    with a drawn note's class doubled allowed too; failing that, the chord is complete.
    ``lead_from``/``lead_pull``: voice leading, each note pulled ``lead_pull`` logits per
    semitone toward the nearest of these pitches (the previous chord) not yet taken by an
    earlier note.  ``pitch_mix`` (weight, 128 probabilities) steers the first note only.
    """

    size: int
    velocity: int  # of the notes: the model is asked for note-ons of this velocity, at dt 0
    temperature: float = 1.0  # floats and ints as Python's own types: the compiled draw takes them as they are
    top_p: float = 1.0
    pitch_range: tuple[int, int] = (0, 127)
    pitch_classes: frozenset[int] | None = None
    exclude_pitches: frozenset[int] = frozenset()
    anchor: int | None = None
    soft: tuple[int, ...] = ()
    agree: np.ndarray | None = field(default=None, compare=False)  # int64, 12
    lead_from: tuple[int, ...] = ()
    lead_pull: float = 0.0
    pitch_mix: tuple[float, np.ndarray] | None = field(default=None, compare=False)
    voice: int = MACHINE_VOICE


class IncrementalModel(Protocol):
    """Implemented by :class:`livecomposer.model.network.StreamingModel`."""

    name: str
    holder: object | None  # whose history the state is: its users set it, to save the state only when another takes over

    def reset(self) -> None:
        """Back to the state before any event."""

    def feed(self, event: ModelEvent) -> None:
        """Advance the state by one event (one network step)."""

    def sample(self, constraints: Constraints, rng: np.random.Generator) -> ModelEvent:
        """Draw the next event under the constraints; the state is unchanged."""

    def feed_and_sample_chord(self, event: ModelEvent, chord: ChordConstraints, rng: np.random.Generator) -> list[int]:
        """Feed ``event``, then the pitches of a chord drawn from the new state under
        ``chord`` (maybe fewer than asked; not fed)."""

    def get_state(self) -> Any:
        """An opaque snapshot of the state (hidden state, held notes, time)."""

    def set_state(self, state: Any) -> None:
        """Restore a snapshot from :meth:`get_state`."""

    def held_pitches(self) -> frozenset[int]:
        """Pitches currently sounding, by the events fed so far."""

    def hidden_features(self) -> np.ndarray:
        """The current hidden state as a small float vector (for the visualizer)."""
