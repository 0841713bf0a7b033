"""A small polyphonic synth in numpy, so a player without a DAW still hears the machine.

The same :class:`Synth` renders live (the sounddevice monitor calls :meth:`Synth.render`
from the audio callback) and offline (:func:`livecomposer.audio.wav.render_wav`), so what a
WAV of the session sounds like is what the monitor played.

Each voice is a sine plus two slightly detuned band-limited saws (PolyBLEP), one per
stereo side, for a warm, wide sound with a clear fundamental.  The envelope is computed in
closed form from the note-on and note-off sample positions, so a whole block of all voices
is a handful of numpy operations, with no per-sample Python loop.  When all voices are busy
the quietest releasing voice (else the oldest) is stolen.  The sustain pedal (CC 64), all
notes off (CC 123) and all sound off (CC 120) work as on any keyboard.
"""

from __future__ import annotations

import numpy as np

from ..kernel.events import Event, Kind

SUSTAIN = 64
CONTROL_BLOCK = 256  # envelope resolution: exact every this many samples, linear in between
ALL_SOUND_OFF = 120
ALL_NOTES_OFF = 123


def midi_to_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


class Synth:
    """Polyphonic synth.  Feed events with :meth:`handle` (applied at the current position),
    pull audio with :meth:`render` (float32, shape (frames, 2))."""

    def __init__(
        self,
        sample_rate: int = 48000,
        voices: int = 16,
        gain: float = 0.3,
        attack_s: float = 0.005,
        decay_s: float = 1.0,
        sustain: float = 0.6,
        release_s: float = 0.4,
        detune_cents: float = 7.0,
    ) -> None:
        if sample_rate < 8000:
            raise ValueError(f"sample_rate must be >= 8000; got {sample_rate}")
        if voices < 1:
            raise ValueError(f"voices must be >= 1; got {voices}")
        self.sample_rate = sample_rate
        self.gain = gain
        self.attack = max(1, int(attack_s * sample_rate))
        # decay_s / release_s: time to fall by 60 dB (exponential time constant = that / 6.9)
        self.decay = max(1.0, decay_s * sample_rate / 6.9)
        self.sustain = sustain
        self.release = max(1.0, release_s * sample_rate / 6.9)
        self.detune = 2.0 ** (detune_cents / 1200.0)
        v = voices
        self.active = np.zeros(v, dtype=bool)
        self.note = np.zeros(v, dtype=np.int16)
        self.channel = np.zeros(v, dtype=np.int16)
        self.inc = np.zeros(v)  # cycles per sample of the sine
        self.phase = np.zeros((3, v))  # sine, left saw, right saw (cycles)
        self.amp = np.zeros(v)
        self.on_at = np.zeros(v, dtype=np.int64)
        self.off_at = np.full(v, -1, dtype=np.int64)  # -1: key (or pedal) still held
        self.off_level = np.zeros(v)
        self.sustained = np.zeros(v, dtype=bool)  # key up, held by the pedal
        self.pedal = [False] * 16
        self.pos = 0  # samples rendered so far
        self.stolen = 0
        self._ramp = np.arange(CONTROL_BLOCK, dtype=np.float64)

    # -- events ---------------------------------------------------------------------------
    def handle(self, event: Event) -> None:
        kind = event.kind
        if kind is Kind.NOTE_ON:
            self.note_on(event.channel, event.note, event.velocity)
        elif kind is Kind.NOTE_OFF:
            self.note_off(event.channel, event.note)
        elif kind is Kind.CONTROL:
            ch, cc = event.channel, event.control
            if cc == SUSTAIN:
                down = event.value >= 64
                self.pedal[ch] = down
                if not down:
                    for v in np.flatnonzero(self.active & self.sustained & (self.channel == ch)):
                        self._release(v)
            elif cc == ALL_NOTES_OFF:
                for v in np.flatnonzero(self.active & (self.channel == ch) & (self.off_at < 0)):
                    self._release(v)
            elif cc == ALL_SOUND_OFF:
                self.active[self.channel == ch] = False

    def note_on(self, channel: int, note: int, velocity: int) -> None:
        same = np.flatnonzero(self.active & (self.channel == channel) & (self.note == note))
        if same.size:
            v = int(same[0])  # re-strike the same key: reuse its voice, no pile-up
        else:
            free = np.flatnonzero(~self.active)
            v = int(free[0]) if free.size else self._steal()
        self.active[v] = True
        self.note[v] = note
        self.channel[v] = channel
        self.inc[v] = midi_to_hz(note) / self.sample_rate
        if not same.size:
            self.phase[:, v] = 0.0
        self.amp[v] = (max(1, min(127, velocity)) / 127.0) ** 1.6
        self.on_at[v] = self.pos
        self.off_at[v] = -1
        self.sustained[v] = False

    def note_off(self, channel: int, note: int) -> None:
        for v in np.flatnonzero(self.active & (self.channel == channel) & (self.note == note) & (self.off_at < 0)):
            if self.pedal[channel]:
                self.sustained[v] = True
            else:
                self._release(v)

    def all_off(self) -> None:
        for v in np.flatnonzero(self.active & (self.off_at < 0)):
            self._release(v)

    @property
    def sounding(self) -> int:
        return int(self.active.sum())

    def _release(self, v: int) -> None:
        self.off_level[v] = self._held_level(np.array([self.pos - self.on_at[v]], dtype=np.float64))[0]
        self.off_at[v] = self.pos
        self.sustained[v] = False

    def _steal(self) -> int:
        self.stolen += 1
        released = np.flatnonzero(self.off_at >= 0)
        if released.size:
            levels = self.off_level[released] * np.exp(-(self.pos - self.off_at[released]) / self.release)
            return int(released[np.argmin(levels)])
        return int(np.argmin(self.on_at))

    def _held_level(self, age: np.ndarray) -> np.ndarray:
        """Envelope of a held key, ``age`` samples after its note-on: attack, then decay to sustain."""
        a = self.attack
        rising = np.minimum(age / a, 1.0)
        falling = self.sustain + (1.0 - self.sustain) * np.exp(-np.maximum(age - a, 0.0) / self.decay)
        return np.where(age < a, rising, falling)

    def _levels(self, voices: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Envelope (before velocity) of ``voices`` at absolute sample numbers ``at``: (V, len(at))."""
        age = at[None, :] - self.on_at[voices][:, None]
        level = self._held_level(age.astype(np.float64))
        off = self.off_at[voices][:, None]
        released = off >= 0
        if released.any():
            after = np.exp(-np.maximum(at[None, :] - off, 0) / self.release) * self.off_level[voices][:, None]
            level = np.where(released & (at[None, :] >= off), after, level)
        return level

    # -- audio ----------------------------------------------------------------------------
    def render(self, frames: int) -> np.ndarray:
        """The next ``frames`` samples, stereo float32 in [-1, 1]."""
        if frames > CONTROL_BLOCK:  # the envelope is exact at control-block edges, linear inside
            return np.concatenate([self.render(min(CONTROL_BLOCK, frames - k)) for k in range(0, frames, CONTROL_BLOCK)])
        out = np.zeros((frames, 2), dtype=np.float32)
        voices = np.flatnonzero(self.active)
        if voices.size == 0:
            self.pos += frames
            return out
        ramp = self._ramp[:frames]
        edges = self._levels(voices, np.array([self.pos, self.pos + frames], dtype=np.int64))
        edges *= self.amp[voices][:, None]
        env = (edges[:, :1] + (edges[:, 1:] - edges[:, :1]) * (ramp / frames)[None, :]).astype(np.float32)

        inc = self.inc[voices]
        incs = (inc, inc * self.detune, inc / self.detune)
        waves = []
        for k in range(3):
            phase0 = self.phase[k, voices]
            p = (phase0[:, None] + incs[k][:, None] * ramp[None, :]).astype(np.float32)
            self.phase[k, voices] = (phase0 + incs[k] * frames) % 1.0
            if k == 0:
                waves.append(np.sin(np.float32(2.0 * np.pi) * p))
            else:
                frac = p - np.floor(p)
                dt = incs[k][:, None].astype(np.float32)
                # PolyBLEP without branches: zero except within one sample of the jump
                a = 1.0 - np.minimum(frac / dt, 1.0)
                b = 1.0 - np.minimum((1.0 - frac) / dt, 1.0)
                waves.append(2.0 * frac - 1.0 - (b * b - a * a))
        base = 0.6 * waves[0]
        out[:, 0] = np.tanh(self.gain * ((base + 0.4 * waves[1]) * env).sum(axis=0))
        out[:, 1] = np.tanh(self.gain * ((base + 0.4 * waves[2]) * env).sum(axis=0))

        self.pos += frames
        # free voices whose release has died away
        done = (self.off_at[voices] >= 0) & (edges[:, 1] < 1e-4 * np.maximum(self.amp[voices], 1e-9))
        self.active[voices[done]] = False
        return out

    def render_with(self, timed: list[tuple[int, Event]], frames: int) -> np.ndarray:
        """Render ``frames`` samples applying each event at its sample offset in the block
        (offsets ascending, each in [0, frames))."""
        out = np.empty((frames, 2), dtype=np.float32)
        start = 0
        for offset, event in timed:
            offset = min(max(offset, start), frames)
            if offset > start:
                out[start:offset] = self.render(offset - start)
                start = offset
            self.handle(event)
        if start < frames:
            out[start:] = self.render(frames - start)
        return out
