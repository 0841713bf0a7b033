"""Presets: YAML files that say which ports, tempo, plugin graph, controls and visuals to use.

A preset is read with ``yaml.safe_load`` semantics (no Python objects, no code), but through
a loader that remembers the line of every key and list item, so that every mistake is
reported as ``FILE:LINE: KEY.PATH: reason`` with a suggestion where one exists::

    presets/duet.yaml:12: graph[1].plugin: unknown plugin 'call_respons' (did you mean 'call_response'?)

The result is a frozen :class:`Preset`.  :func:`build_graph` turns its graph into live
plugin objects; building never loads a model (plugins do that in ``prepare``), so a preset
can be checked completely without opening a port (:func:`check_preset` does both).
:func:`add_control` writes a MIDI-learned mapping back into a file, keeping its comments.

Schema (every section but ``graph`` is optional)::

    name: duet
    description: the machine answers each phrase
    midi: {api: auto, input: "Keystation", output: {virtual: livecomposer}}
                              # output may add latency_ms: 12 (the machine's notes 12 ms early,
                              # for a synth with 12 ms of its own latency) and delay_ms (all later)
    clock: {source: internal, bpm: 96, beats_per_bar: 4, send: false}
    graph:                    # top-level list = parallel; {chain: [...]} / {parallel: [...]} nest
      - thru
      - {plugin: call_response, id: answer, model: folk-melody, channel: 2}
    controls:
      - {cc: 21, to: answer.temperature, range: [0.2, 1.5], curve: linear, channel: 1}
      - {cc: 102, to: panic}    # or next_preset, prev_preset, tap_tempo, learn
      - {program_change: bank}
    bank: [duet.yaml, continuation.yaml]   # relative to this file's folder, never outside it
    visual: {enabled: false}  # checked by livecomposer.visual.config when that exists
    monitor: {enabled: false, synth: builtin}
    seed: 0
"""

from __future__ import annotations

import copy
from pathlib import Path

from ...kernel.plugin import Chain, OptionError, Parallel, Plugin
from .edit import add_control
from .errors import PresetError
from .parse import load_preset, loads_preset
from .schema import Control, GroupSpec, PluginSpec, Preset

__all__ = ["Control", "Preset", "PresetError", "add_control", "build_graph", "check_preset", "load_preset", "loads_preset"]


def build_graph(preset: Preset) -> Plugin:
    """Instantiate the preset's plugins (a Parallel at the top).  Cheap: no models load here.

    Bad options raise :class:`PresetError` at the line of the option.
    """
    return _build(preset.graph, preset.file)


def _build(spec: PluginSpec | GroupSpec, file: str) -> Plugin:
    if isinstance(spec, GroupSpec):
        children = [_build(child, file) for child in spec.children]
        return (Chain if spec.kind == "chain" else Parallel)(children, id=spec.id)
    try:
        return spec.cls(id=spec.id, **copy.deepcopy(dict(spec.options)))
    except OptionError as exc:
        key = str(exc.key)
        line = spec.option_lines.get(key) or spec.option_lines.get(key.split(".")[0]) or spec.line
        raise PresetError(file, line, f"{spec.path}.{key}", exc.reason) from None
    except Exception as exc:  # a plugin's own check that is not an OptionError
        raise PresetError(file, spec.line, spec.path, f"{spec.name} rejected its options: {type(exc).__name__}: {exc}") from None


def check_preset(path: str | Path) -> Preset:
    """Everything short of opening ports: load, validate, build the graph, close it again."""
    preset = load_preset(path)
    graph = build_graph(preset)
    graph.close()
    return preset
