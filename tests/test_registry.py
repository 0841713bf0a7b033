"""Plugin name resolution: built-ins, module:Class, entry points of installed packages."""

from __future__ import annotations

import textwrap

import pytest

from livecomposer.plugins import registry
from livecomposer.kernel.plugin import Chain, Parallel, Plugin
from livecomposer.plugins.effects import Thru, Transpose


@pytest.fixture(autouse=True)
def fresh_registry():
    registry.clear_cache()
    yield
    registry.clear_cache()


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A real installed distribution (a dist-info on sys.path) declaring two entry points."""
    (tmp_path / "fakefx.py").write_text(
        textwrap.dedent(
            '''
            from livecomposer.kernel.plugin import Plugin

            class Octaver(Plugin):
                name = "octaver"
                summary = "adds an octave below"

            class NotAPlugin:
                pass
            '''
        )
    )
    dist = tmp_path / "fakefx-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakefx\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[livecomposer.plugins]\n"
        "octaver = fakefx:Octaver\n"
        "bogus = fakefx:NotAPlugin\n"
        "missing = fakefx_gone:Thing\n"
        "thru = fakefx:Octaver\n"  # may not shadow a built-in
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    import sys

    sys.modules.pop("fakefx", None)


def test_builtin_names_resolve():
    assert registry.resolve("thru") is Thru
    assert registry.resolve("transpose") is Transpose
    assert registry.resolve("chain") is Chain
    assert registry.resolve("parallel") is Parallel
    for name in ("channel_filter", "channel_map", "velocity_curve", "scale_quantize", "note_length_limit"):
        cls = registry.resolve(name)
        assert issubclass(cls, Plugin) and cls.name == name and cls.summary


def test_builtin_table_names_match_class_names():
    for row in registry.catalog():
        if row.cls is not None and row.source == "built-in":
            assert row.cls.name == row.name


def test_module_class_string():
    assert registry.resolve("livecomposer.plugins.effects:Transpose") is Transpose


def test_module_class_errors_are_one_line():
    with pytest.raises(registry.RegistryError, match="module 'no_such_module' not found"):
        registry.resolve("no_such_module:Thing")
    with pytest.raises(registry.RegistryError, match="has no 'Nope'"):
        registry.resolve("livecomposer.plugins.effects:Nope")
    with pytest.raises(registry.RegistryError, match="not a livecomposer Plugin"):
        registry.resolve("livecomposer.plugins.effects:NoteRouter")


def test_unknown_name_suggests_close_ones():
    with pytest.raises(registry.UnknownPlugin) as err:
        registry.resolve("call_respons")
    assert str(err.value) == "unknown plugin 'call_respons' (did you mean 'call_response'?)"
    with pytest.raises(registry.UnknownPlugin) as err:
        registry.resolve("transpos")
    assert err.value.suggestions[0] == "transpose"
    with pytest.raises(registry.UnknownPlugin) as err:
        registry.resolve("zzzzzz")
    assert str(err.value) == "unknown plugin 'zzzzzz'"


def test_builtin_whose_module_is_missing_says_so(monkeypatch):
    monkeypatch.setitem(registry.BUILTINS, "future_fx", "livecomposer.plugins.not_written_yet:Future")
    with pytest.raises(registry.RegistryError) as err:
        registry.resolve("future_fx")
    assert "not available" in str(err.value) and "not_written_yet" in str(err.value)


def test_entry_points_resolve_and_are_listed(installed_plugin):
    cls = registry.resolve("octaver")
    assert cls.__name__ == "Octaver" and issubclass(cls, Plugin)
    assert "octaver" in registry.names()
    assert ("octaver", "adds an octave below") in registry.available()
    assert registry.resolve("thru") is Thru, "an entry point must not shadow a built-in"


def test_broken_entry_points_are_listed_with_their_error_not_raised(installed_plugin):
    rows = {row.name: row for row in registry.catalog()}
    assert rows["octaver"].cls is not None and rows["octaver"].source == "entry point (fakefx)"
    assert rows["bogus"].cls is None and "not a livecomposer Plugin" in rows["bogus"].error
    assert rows["missing"].cls is None and "fakefx_gone" in rows["missing"].error
    names = [name for name, _ in registry.available()]
    assert "bogus" not in names and "missing" not in names


def test_unknown_name_suggests_entry_points_too(installed_plugin):
    with pytest.raises(registry.UnknownPlugin, match="did you mean 'octaver'"):
        registry.resolve("octavr")


def test_entry_points_group_via_monkeypatched_metadata(monkeypatch):
    """The lookup goes through importlib.metadata.entry_points(group=...)."""
    from importlib.metadata import EntryPoint

    seen = []

    def fake_entry_points(group):
        seen.append(group)
        return [EntryPoint("echo_fx", "livecomposer.plugins.effects:Thru", group)]

    monkeypatch.setattr(registry.importlib.metadata, "entry_points", fake_entry_points)
    assert registry.resolve("echo_fx") is Thru
    assert seen == ["livecomposer.plugins"]


def _run_cli(*args, extra_path=None):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    paths = [str(root)] + ([str(extra_path)] if extra_path else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    return subprocess.run([sys.executable, "-m", "livecomposer.cli", *args], cwd=root, env=env, capture_output=True, text=True, timeout=60)


def test_plugins_command_lists_builtins_and_installed_ones(installed_plugin, tmp_path):
    result = _run_cli("plugins", extra_path=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip() and not line.startswith(" ")}
    assert "shift notes up or down by semitones" in lines["transpose"]
    assert "adds an octave below" in lines["octaver"]
    assert "unavailable" in lines["bogus"] and "unavailable" in lines["missing"]
    assert "Traceback" not in result.stderr


def test_plugins_command_shows_parameters():
    result = _run_cli("plugins", "transpose")
    assert result.returncode == 0 and "semitones" in result.stdout and "-48..48" in result.stdout
    wrong = _run_cli("plugins", "transpos")
    assert wrong.returncode == 2 and "did you mean 'transpose'" in wrong.stderr
