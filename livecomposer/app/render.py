"""Offline rendering to files: shared by ``render`` and ``demo``."""

from __future__ import annotations

from pathlib import Path

from ..kernel.events import Event, parse
from .recording import Recorder
from .session import load, render_offline, tail_ns


def render_files(preset_path: Path, messages: list[tuple[int, bytes]], output: Path, seed: int | None = None, tail_s: float = 4.0, wav: Path | None = None, observers=()) -> str:
    """Render ``messages`` through the preset to a MIDI file (input and output tracks);
    optionally a WAV of the output.  Returns a one-line summary."""
    preset, graph = load(preset_path)
    bpm = getattr(getattr(preset, "clock", None), "bpm", None) or 120.0
    recorder = Recorder(output, 0, bpm=bpm)
    try:
        result = render_offline(graph, preset, messages, tail_ns(messages, tail_s), seed=seed, observers=[recorder, *observers])
    finally:
        recorder.close()
    sent = sent_events(result.output.sent)
    if wav is not None:
        from ..audio.wav import render_wav

        render_wav(sent, wav, start_ns=0)
    ons = sum(1 for e in sent if e.kind.name == "NOTE_ON")
    return f"{output}: {len(messages)} messages in, {ons} notes out ({result.end_ns / 1e9:.1f} s rendered)"


def sent_events(sent: list[tuple[int, list[int]]]) -> list[Event]:
    events = []
    for t, message in sent:
        event = parse(message, t)
        if event is not None:
            events.append(event)
    return events
