"""Preset loading: the schema, error messages that name file:line:key, controls, banks, and
``livecomposer presets check``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from livecomposer.kernel.events import note_off, note_on
from livecomposer.kernel.plugin import Chain, Parallel, PluginContext
from livecomposer.plugins.effects import ChannelMap, ScaleQuantize, Thru, Transpose, VelocityCurve
from livecomposer.app.presets import Control, PresetError, build_graph, check_preset, load_preset, loads_preset

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "presets").glob("*.yaml"))


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def error_of(path: Path, build: bool = False) -> str:
    with pytest.raises(PresetError) as err:
        preset = load_preset(path)
        if build:
            build_graph(preset)
    return str(err.value)


# -- shipped presets ----------------------------------------------------------------------


def test_presets_are_shipped():
    names = {p.name for p in SHIPPED}
    assert {"thru.yaml", "transpose.yaml", "scale-lock.yaml", "bank.yaml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_presets_check(path):
    preset = check_preset(path)
    assert preset.warnings == ()
    for member in preset.bank:
        check_preset(member)


def test_thru_preset_is_the_plain_default():
    preset = load_preset(ROOT / "presets" / "thru.yaml")
    assert preset.name == "thru"
    assert (preset.midi.output_kind, preset.midi.output_name) == ("virtual", "livecomposer")
    assert preset.midi.inputs is None  # all inputs
    assert preset.controls == ()  # thru passes every CC on
    graph = build_graph(preset)
    assert isinstance(graph, Parallel) and [type(p) for p in graph.children()] == [Thru]


# -- a full preset ----------------------------------------------------------------------------


def test_full_schema(tmp_path):
    write(tmp_path, "graph: [thru]\n", "other.yaml")
    path = write(
        tmp_path,
        """
        name: live set
        description: all the sections
        midi: {api: jack, input: [Keystation, Launchkey], output: {port: "FLUID"}}
        clock: {source: midi, bpm: 96.5, beats_per_bar: 3, send: true}
        graph:
          - thru
          - {plugin: transpose, id: up, semitones: 12}
          - chain:
              - {plugin: scale_quantize, key: D minor}
              - parallel:
                  - {plugin: velocity_curve, gamma: 0.5}
                  - {plugin: channel_map, to: 2}
            id: lead
        controls:
          - {cc: 21, to: up.semitones, range: [-12, 12], curve: linear, channel: 10}
          - {cc: 22, to: velocity_curve.gamma, curve: exp, range: [0.2, 4]}
          - {cc: 102, to: panic}
          - {program_change: bank, channel: 1}
        bank: [p.yaml, other.yaml]
        visual: {enabled: false, fps: 30}
        monitor: {enabled: true, synth: fluidsynth, gain: 0.5}
        seed: 7
        """,
    )
    preset = load_preset(path)
    assert preset.name == "live set" and preset.description == "all the sections"
    assert preset.midi.api == "jack" and preset.midi.inputs == ("Keystation", "Launchkey")
    assert (preset.midi.output_kind, preset.midi.output_name) == ("port", "FLUID")
    assert (preset.clock.source, preset.clock.bpm, preset.clock.beats_per_bar, preset.clock.send) == ("midi", 96.5, 3, True)
    assert preset.bank == (path.resolve(), (tmp_path / "other.yaml").resolve())
    assert dict(preset.visual) == {"enabled": False, "fps": 30} and type(preset.visual["fps"]) is int
    assert preset.monitor.enabled and preset.monitor.synth == "fluidsynth" and preset.monitor.gain == 0.5
    assert preset.seed == 7
    assert preset.plugin_ids() == ["thru", "up", "scale_quantize", "velocity_curve", "channel_map"]

    c = preset.controls
    assert (c[0].kind, c[0].cc, c[0].plugin_id, c[0].param, c[0].channel, c[0].range) == ("cc", 21, "up", "semitones", 9, (-12.0, 12.0))
    assert c[0].matches(9, 21) and not c[0].matches(0, 21) and not c[0].matches(9, 22)
    assert c[2].action == "panic" and c[2].matches(5, 102)
    assert c[3].kind == "program_change" and c[3].to == "bank" and c[3].matches(0) and not c[3].matches(1)
    assert c[0].line == 15 and c[3].line == 18

    graph = build_graph(preset)
    assert isinstance(graph, Parallel)
    thru, up, lead = graph.children()
    assert isinstance(thru, Thru) and isinstance(up, Transpose) and up.semitones == 12
    assert isinstance(lead, Chain) and lead.id == "lead"
    quantize, group = lead.children()
    assert isinstance(quantize, ScaleQuantize) and (quantize.key, quantize.scale) == ("D", "minor")
    assert isinstance(group, Parallel) and [type(p) for p in group.children()] == [VelocityCurve, ChannelMap]
    assert graph.find("up") is up


def test_built_graph_plays(tmp_path):
    path = write(tmp_path, "graph:\n  - chain: [{plugin: transpose, semitones: 2}, {plugin: channel_map, to: 3}]\n")
    graph = build_graph(load_preset(path))
    graph.prepare(PluginContext())
    assert graph.process([note_on(0, 60), note_off(1, 60)], 1) == [note_on(0, 62, channel=2), note_off(1, 62, channel=2)]


def test_defaults(tmp_path):
    preset = load_preset(write(tmp_path, "graph: [thru]\n", "mine.yaml"))
    assert preset.name == "mine"
    assert preset.midi.api == "auto" and preset.midi.inputs is None
    assert (preset.midi.output_kind, preset.midi.output_name) == ("virtual", "livecomposer")
    assert (preset.clock.source, preset.clock.bpm, preset.clock.send) == ("internal", 120.0, False)
    assert preset.controls == () and preset.bank == () and dict(preset.visual) == {} and not preset.monitor.enabled
    assert preset.seed == 0


def test_preset_is_frozen_and_build_does_not_share_options(tmp_path):
    preset = load_preset(write(tmp_path, "graph:\n  - {plugin: channel_map, map: {1: 2}}\n"))
    with pytest.raises(AttributeError):
        preset.name = "x"  # type: ignore[misc]
    a, b = build_graph(preset), build_graph(preset)
    assert a.children()[0].map == {0: 1}
    a.children()[0].map[5] = 6
    assert b.children()[0].map == {0: 1} and preset.graph.children[0].options["map"] == {1: 2}


def test_module_class_plugin_in_a_preset(tmp_path):
    preset = load_preset(write(tmp_path, "graph:\n  - {plugin: 'livecomposer.plugins.effects:Transpose', semitones: 5}\n"))
    (plugin,) = build_graph(preset).children()
    assert isinstance(plugin, Transpose) and plugin.id == "transpose" and plugin.semitones == 5


# -- error messages: file, line, key path, reason, suggestion -------------------------------


def test_unknown_plugin_message_is_exact(tmp_path):
    path = write(
        tmp_path,
        """
        name: duet
        graph:
          - thru
          - {plugin: call_respons, model: folk-melody}
        """,
        "duet.yaml",
    )
    assert error_of(path) == f"{path}:4: graph[1].plugin: unknown plugin 'call_respons' (did you mean 'call_response'?)"


def test_unknown_plugin_as_plain_name(tmp_path):
    path = write(tmp_path, "graph:\n  - thru\n  - transpos\n")
    assert error_of(path) == f"{path}:3: graph[1]: unknown plugin 'transpos' (did you mean 'transpose'?)"


@pytest.mark.parametrize(
    "text, line, keypath, suggestion",
    [
        ("nmae: x\ngraph: [thru]\n", 1, "nmae", "did you mean 'name'?"),
        ("graph: [thru]\nmidi:\n  api: auto\n  inptu: Keystation\n", 4, "midi.inptu", "did you mean 'input'?"),
        ("graph: [thru]\nmidi: {output: {virtaul: x}}\n", 2, "midi.output.virtaul", "did you mean 'virtual'?"),
        ("graph: [thru]\nclock: {source: internal, bmp: 90}\n", 2, "clock.bmp", "did you mean 'bpm'?"),
        ("graph: [thru]\nmonitor:\n  enabled: true\n  synht: builtin\n", 4, "monitor.synht", "did you mean 'synth'?"),
        ("graph: [thru]\ncontrols:\n  - {cc: 21, to: panic, chanel: 1}\n", 3, "controls[0].chanel", "did you mean 'channel'?"),
        ("graph:\n  - thru\n  - chain: [thru2]\n", 3, "graph[1].chain[0]", None),
        ("graph:\n  - {chian: [thru]}\n", 2, "graph[0]", "did you mean 'chain'?"),
        ("graph:\n  - chain: [thru]\n    idd: x\n", 3, "graph[0].idd", "did you mean 'id'?"),
    ],
)
def test_unknown_keys_everywhere_suggest(tmp_path, text, line, keypath, suggestion):
    path = write(tmp_path, text)
    message = error_of(path)
    assert message.startswith(f"{path}:{line}: {keypath}: "), message
    if suggestion:
        assert message.endswith(f"({suggestion})"), message


def test_bad_option_value_points_at_its_line(tmp_path):
    path = write(
        tmp_path,
        """
        graph:
          - plugin: transpose
            id: up
            semitones: 99
        """,
    )
    assert error_of(path, build=True) == f"{path}:4: graph[0].semitones: must be <= 48; got 99"


def test_unknown_option_suggests(tmp_path):
    path = write(tmp_path, "graph:\n  - thru\n  - plugin: scale_quantize\n    key: D\n    scael: minor\n")
    assert error_of(path, build=True) == f"{path}:5: graph[1].scael: unknown option 'scael' (did you mean 'scale'?)"


def test_check_preset_builds_the_graph(tmp_path):
    path = write(tmp_path, "graph:\n  - {plugin: scale_quantize, key: H minor}\n")
    load_preset(path)  # structure is fine
    with pytest.raises(PresetError, match=r":2: graph\[0\]\.key: "):
        check_preset(path)


def test_nested_options_in_shorthand_are_explained(tmp_path):
    path = write(tmp_path, "graph:\n  - {transpose: {semitones: 3}}\n")
    assert "write {plugin: transpose, ...options}" in error_of(path)


def test_container_named_as_plugin(tmp_path):
    path = write(tmp_path, "graph:\n  - {plugin: chain}\n")
    assert "write {chain: [...]}" in error_of(path)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("graph:\n  - thru\n  - thru\n", ":3: graph[1]: a second 'thru' needs its own id"),
        ("graph:\n  - {plugin: transpose, id: x}\n  - {plugin: thru, id: x}\n", ":3: graph[1].id: duplicate id 'x' (already used at graph[0])"),
        ("graph:\n  - {plugin: thru, id: my.thru}\n", ":2: graph[0].id: id 'my.thru' must be letters"),
        ("graph:\n  - chain: [transpose]\n  - transpose\n", ":3: graph[1]: a second 'transpose' needs its own id"),
        ("graph:\n  - {plugin: thru, id: graph}\n", ":2: graph[0].id: duplicate id 'graph' (already used at the top of the graph)"),
    ],
)
def test_plugin_ids_are_unique(tmp_path, text, fragment):
    path = write(tmp_path, text)
    message = error_of(path)
    assert fragment in message and message.startswith(str(path)), message


def test_same_plugin_twice_with_ids_is_fine(tmp_path):
    preset = load_preset(write(tmp_path, "graph:\n  - {plugin: transpose, id: up, semitones: 12}\n  - {plugin: transpose, id: down, semitones: -12}\n"))
    assert preset.plugin_ids() == ["up", "down"]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", ":1: the file is empty"),
        ("- thru\n", ":1: must be a mapping of preset keys"),
        ("name: x\n", ":1: missing required key 'graph'"),
        ("graph: []\n", ":1: graph: is empty"),
        ("graph: thru\n", ":1: graph: must be a list"),
        ("graph: [thru]\ngraph: [thru]\n", ":2: duplicate key 'graph'"),
        ("graph: [thru\nseed: 1\n", "not valid YAML"),
        ("graph: [thru]\nseed: -1\n", ":2: seed: must be between 0 and"),
        ("graph: [thru]\nseed: yes\n", ":2: seed: must be a whole number; got true"),
        ("graph: [thru]\nclock: {bpm: 1000}\n", ":2: clock.bpm: must be between 20 and 400; got 1000"),
        ("graph: [thru]\nclock: {source: midl}\n", ":2: clock.source: must be one of internal, midi, link; got 'midl' (did you mean 'midi'?)"),
        ("graph: [thru]\nmidi: {api: jak}\n", "midi.api: must be one of auto, alsa, jack, coremidi, windows; got 'jak' (did you mean 'jack'?)"),
        ("graph: [thru]\nmidi: {output: livecomposer}\n", "midi.output: must be {virtual: NAME}"),
        ("graph: [thru]\nmidi: {output: {virtual: a, port: b}}\n", "give exactly one of virtual"),
        ("graph: [thru]\nmidi: {input: 3}\n", "midi.input: must be a port name"),
        ("graph: [thru]\n---\ngraph: [thru]\n", "not valid YAML"),
        ("graph: [!!python/object:os.system thru]\n", "not valid YAML"),
        ("graph: [3]\n", ":1: graph[0]: must be a plugin name"),
    ],
)
def test_bad_presets_name_file_and_line(tmp_path, text, fragment):
    path = write(tmp_path, text) if text else (tmp_path / "p.yaml")
    if not text:
        path.write_text("")
    message = error_of(path)
    assert message.startswith(str(path) + ":"), message
    assert fragment in message, message


def test_missing_file(tmp_path):
    assert error_of(tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: no such file"


def test_loads_preset_names_the_given_path():
    with pytest.raises(PresetError) as err:
        loads_preset("graph: [transpos]\n", "presets/duet.yaml")
    assert str(err.value) == "presets/duet.yaml:1: graph[0]: unknown plugin 'transpos' (did you mean 'transpose'?)"
    assert (err.value.file, err.value.line, err.value.path) == ("presets/duet.yaml", 1, "graph[0]")


def test_unavailable_builtin_is_a_clear_error(tmp_path, monkeypatch):
    from livecomposer.plugins import registry

    monkeypatch.setitem(registry.BUILTINS, "later_fx", "livecomposer.plugins.not_written_yet:Later")
    path = write(tmp_path, "graph: [later_fx]\n")
    assert "graph[0]: plugin 'later_fx' is not available: module 'livecomposer.plugins.not_written_yet' not found" in error_of(path)


# -- controls -------------------------------------------------------------------------------

GRAPH = "graph:\n  - {plugin: transpose, id: up}\n  - channel_filter\n  - velocity_curve\n  - scale_quantize\n"


@pytest.mark.parametrize(
    "control, fragment",
    [
        ("{cc: 21, to: upp.semitones}", "controls[0].to: no plugin with id 'upp' (did you mean 'up'?)"),
        ("{cc: 21, to: up.semitone}", "controls[0].to: plugin 'up' (transpose) has no parameter 'semitone' (did you mean 'semitones'?)"),
        ("{cc: 21, to: channel_filter.channels}", "cannot change while playing"),
        ("{cc: 21, to: panik}", "controls[0].to: must be one of panic, next_preset, prev_preset, tap_tempo, learn; got 'panik' (did you mean 'panic'?)"),
        ("{cc: 21, to: next_preset}", "no 'bank:' list"),
        ("{program_change: bank}", "no 'bank:' list"),
        ("{program_change: banks}", "controls[0].program_change: must be one of bank"),
        ("{cc: 128, to: panic}", "controls[0].cc: must be between 0 and 127; got 128"),
        ("{cc: 123, to: panic}", "CC 123 is a channel mode message"),
        ("{cc: 21, to: panic, range: [0, 1]}", "controls[0].range: only for parameter targets"),
        ("{cc: 21, to: up.semitones, range: [-60, 60]}", "goes outside the limits of semitones (between -48 and 48)"),
        ("{cc: 21, to: up.semitones, range: [1]}", "must be [LOW, HIGH]"),
        ("{cc: 21, to: up.semitones, curve: expo}", "controls[0].curve: must be one of linear, exp, log; got 'expo' (did you mean 'exp'?)"),
        ("{cc: 21, to: up.semitones, channel: 0}", "controls[0].channel: must be between 1 and 16"),
        ("{cc: 21}", "controls[0]: missing required key 'to'"),
        ("{c: 21, to: panic}", "needs 'cc: NUMBER' or 'program_change: bank' (did you mean 'cc'?)"),
        ("{cc: 21, to: scale_quantize.scale, range: [0, 2]}", "within [0, 1]"),
    ],
)
def test_bad_controls(tmp_path, control, fragment):
    path = write(tmp_path, GRAPH + f"controls:\n  - {control}\n")
    message = error_of(path)
    assert message.startswith(f"{path}:7: "), message
    assert fragment in message, message


def test_sustain_pedal_mapping_is_a_warning(tmp_path):
    path = write(tmp_path, GRAPH + "controls:\n  - {cc: 64, to: panic}\n")
    preset = load_preset(path)
    assert preset.warnings == (f"{path}:7: controls[0].cc: CC 64 is the sustain pedal; mapping it steals the pedal from the synth",)


def test_control_default_range_is_the_parameter_limits(tmp_path):
    preset = load_preset(write(tmp_path, GRAPH + "controls:\n  - {cc: 1, to: up.semitones}\n  - {cc: 2, to: scale_quantize.key}\n"))
    assert preset.controls[0].range == (-48.0, 48.0)
    assert preset.controls[1].range == (0.0, 1.0)


def test_control_scale_curves():
    linear = Control("cc", "a.b", 1, range=(0.2, 1.5))
    exp = Control("cc", "a.b", 1, range=(0.2, 1.5), curve="exp")
    log = Control("cc", "a.b", 1, range=(0.2, 1.5), curve="log")
    for c in (linear, exp, log):
        assert c.scale(0) == pytest.approx(0.2) and c.scale(127) == pytest.approx(1.5)
        values = [c.scale(v) for v in range(128)]
        assert values == sorted(values)
    assert linear.scale(127 / 2) == pytest.approx(0.85)
    assert exp.scale(64) < linear.scale(64) < log.scale(64)
    assert Control("cc", "a.b", 1, range=(10, 0)).scale(0) == 10  # reversed range inverts
    assert Control("cc", "a.b", 1).scale(200) == 1.0  # clamped


def test_control_applied_to_a_built_plugin(tmp_path):
    """What the engine does with a control: scale the CC, then set_param (which clamps/rounds)."""
    preset = load_preset(write(tmp_path, GRAPH + "controls:\n  - {cc: 21, to: up.semitones, range: [-12, 12]}\n  - {cc: 22, to: scale_quantize.key}\n"))
    graph = build_graph(preset)
    for control, value in zip(preset.controls, (127, 127)):
        graph.find(control.plugin_id).set_param(control.param, control.scale(value))
    assert graph.find("up").semitones == 12
    assert graph.find("scale_quantize").key == "B"


# -- banks ----------------------------------------------------------------------------------


def test_bank_resolves_beside_the_preset(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    write(folder, "graph: [thru]\n", "a.yaml")
    (folder / "sub").mkdir()
    write(folder / "sub", "graph: [thru]\n", "b.yaml")
    preset = load_preset(write(folder, "graph: [thru]\nbank: [a.yaml, sub/b.yaml]\ncontrols:\n  - {program_change: bank}\n", "main.yaml"))
    assert preset.bank == ((folder / "a.yaml").resolve(), (folder / "sub" / "b.yaml").resolve())


@pytest.mark.parametrize("entry", ["../outside.yaml", "sub/../../outside.yaml", "{outside}"])
def test_bank_cannot_escape_the_preset_folder(tmp_path, entry):
    folder = tmp_path / "set"
    (folder / "sub").mkdir(parents=True)
    outside = write(tmp_path, "graph: [thru]\n", "outside.yaml")
    entry = entry.format(outside=outside)
    path = write(folder, f"graph: [thru]\nbank: ['{entry}']\n", "main.yaml")
    message = error_of(path)
    assert message.startswith(f"{path}:2: bank[0]: ") and "outside this preset's folder" in message, message


def test_bank_symlink_escape_is_refused(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    outside = write(tmp_path, "graph: [thru]\n", "outside.yaml")
    (folder / "link.yaml").symlink_to(outside)
    path = write(folder, "graph: [thru]\nbank: [link.yaml]\n", "main.yaml")
    assert "outside this preset's folder" in error_of(path)


def test_bank_file_must_exist(tmp_path):
    path = write(tmp_path, "graph: [thru]\nbank:\n  - p.yaml\n  - missing.yaml\n")
    assert error_of(path) == f"{path}:4: bank[1]: no preset file 'missing.yaml' in {str(tmp_path)!r}"


# -- the command ------------------------------------------------------------------------------


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "livecomposer.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_presets_check_command(tmp_path):
    good = write(tmp_path, "graph: [thru]\n", "good.yaml")
    bad = write(tmp_path, "graph:\n  - thru\n  - {plugin: transpose, semitones: 99}\n", "bad.yaml")
    ok = run_cli("presets", "check", str(good))
    assert ok.returncode == 0, ok.stderr
    assert f"{good}: OK" in ok.stdout
    result = run_cli("presets", "check", str(good), str(bad))
    assert result.returncode == 2
    assert f"{good}: OK" in result.stdout
    assert f"{bad}:3: graph[1].semitones: must be <= 48; got 99" in result.stderr
    assert "Traceback" not in result.stderr


def test_presets_check_shipped_presets_with_their_banks():
    result = run_cli("presets", "check", "--bank", *[str(p.relative_to(ROOT)) for p in SHIPPED])
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": OK") == len(SHIPPED)


def test_visual_section_is_checked_by_the_visual_config_when_present(tmp_path):
    pytest.importorskip("livecomposer.visual.config", reason="the visualizer's config module is not in this checkout")
    from livecomposer.visual.config import parse_visual

    good = load_preset(write(tmp_path, "graph: [thru]\nvisual:\n  enabled: true\n  fps: 30\n"))
    assert good.visual == {"enabled": True, "fps": 30} and type(good.visual) is dict
    config = parse_visual(good.visual)  # what the run command does with it
    assert config.enabled and config.fps == 30
    path = write(tmp_path, "graph: [thru]\nvisual:\n  enabled: true\n  fsp: 30\n")
    message = error_of(path)
    assert message.startswith(f"{path}:4: visual.fsp: unknown key"), message
    assert "fps" in message


# -- MIDI learn writes a control back ---------------------------------------------------------


def test_add_control_appends_keeping_comments(tmp_path):
    from livecomposer.app.presets import add_control

    path = write(tmp_path, "# my set\ngraph:\n  - {plugin: transpose, id: up}  # the lead\ncontrols:\n  - {cc: 102, to: panic}\nseed: 1\n")
    preset = add_control(path, {"cc": 21, "to": "up.semitones", "range": [-12, 12]})
    assert [c.cc for c in preset.controls] == [102, 21]
    text = path.read_text()
    assert "# my set" in text and "# the lead" in text
    assert "  - {cc: 21, to: up.semitones, range: [-12, 12]}\nseed: 1\n" in text
    assert load_preset(path).controls == preset.controls


def test_add_control_replaces_the_same_cc_and_channel(tmp_path):
    from livecomposer.app.presets import add_control

    path = write(tmp_path, "graph: [transpose]\ncontrols:\n  - cc: 21\n    to: panic\n  - {cc: 21, channel: 2, to: panic}\n")
    preset = add_control(path, {"cc": 21, "to": "transpose.semitones", "range": [0, 12]})
    assert [(c.cc, c.channel, c.to) for c in preset.controls] == [(21, None, "transpose.semitones"), (21, 1, "panic")]


@pytest.mark.parametrize(
    "controls",
    ["controls: []\n", "controls: [{cc: 1, to: panic}]\n", "controls:\n", "controls: ~\n", "", "controls:\n  - cc: 1\n    to: panic\nseed: 2", "controls:\n- {cc: 1, to: panic}"],
)
def test_add_control_to_flow_empty_or_missing_controls(tmp_path, controls):
    from livecomposer.app.presets import add_control

    path = write(tmp_path, "graph: [transpose]\n" + controls)
    preset = add_control(path, {"cc": 22, "to": "transpose.semitones", "range": [-2, 2]})
    assert preset.controls[-1].cc == 22 and preset.controls[-1].range == (-2.0, 2.0)


def test_add_control_refuses_a_bad_mapping_and_leaves_the_file(tmp_path):
    from livecomposer.app.presets import add_control

    path = write(tmp_path, "graph: [transpose]\ncontrols:\n  - {cc: 102, to: panic}\n")
    before = path.read_text()
    with pytest.raises(PresetError, match="no parameter 'semitone'"):
        add_control(path, {"cc": 22, "to": "transpose.semitone"})
    assert path.read_text() == before


def test_bank_program_and_steps():
    preset = load_preset(ROOT / "presets" / "transpose.yaml")
    names = [p.name for p in preset.bank]
    assert names[0] == "bank.yaml" and names[1] == "transpose.yaml"
    assert preset.bank_path(0).name == "bank.yaml" and preset.bank_path(len(names)) is None and preset.bank_path(-1) is None
    assert preset.bank_step(+1).name == names[2]
    assert preset.bank_step(-1).name == names[0]
    first = load_preset(ROOT / "presets" / "bank.yaml")
    assert first.bank_step(-1).name == names[-1]  # wraps around


def test_bank_step_from_a_preset_outside_its_bank(tmp_path):
    write(tmp_path, "graph: [thru]\n", "a.yaml")
    write(tmp_path, "graph: [thru]\n", "b.yaml")
    preset = load_preset(write(tmp_path, "graph: [thru]\nbank: [a.yaml, b.yaml]\n", "main.yaml"))
    assert preset.bank_step(+1).name == "a.yaml" and preset.bank_step(-1).name == "b.yaml"
