"""Typed plugin parameters: ``Param`` declared as a class attribute is the attribute itself."""

from __future__ import annotations

import pytest

from livecomposer.kernel.plugin import OptionError, Param, ParamError, Plugin, UnknownOption
from livecomposer.plugins.effects import ChannelFilter, ChannelMap, ScaleQuantize, Transpose, VelocityCurve
from livecomposer.plugins.partners import Accompanist, CallResponse, Continuation, Harmonizer


class Echo(Plugin):
    name = "echo"
    delay_ms = Param(default=100.0, min=1.0, max=5000.0, doc="how late the echo comes")
    repeats = Param(default=2, min=0, max=8)
    mode = Param(default="even", choices=("even", "swing"))
    dry = Param(default=True)


class LateEcho(Echo):
    """Redeclares one parameter with another default and adds one."""

    delay_ms = Echo.delay_ms.with_default(400.0)
    feedback = Param(default=0.5, min=0.0, max=1.0)


class OldEcho(Plugin):
    """Declared the older way: a list of named Params."""

    name = "old_echo"
    params = (Param("delay_ms", 100.0, 1.0, 5000.0), Param("mode", "even", choices=("even", "swing")))


def test_defaults_and_conversion_from_options() -> None:
    echo = Echo()
    assert (echo.delay_ms, echo.repeats, echo.mode, echo.dry) == (100.0, 2, "even", True)
    echo = Echo(delay_ms=30, repeats=3.0)
    assert echo.delay_ms == 30.0 and type(echo.delay_ms) is float  # an int becomes the float the param is
    assert echo.repeats == 3 and type(echo.repeats) is int


def test_assignment_converts_and_checks_naming_plugin_and_parameter() -> None:
    echo = Echo(id="echo_1")
    echo.delay_ms = 7
    assert echo.delay_ms == 7.0 and type(echo.delay_ms) is float
    with pytest.raises(ParamError, match=r"plugin 'echo_1': delay_ms: must be <= 5000.0; got 9000.0") as info:
        echo.delay_ms = 9000
    assert (info.value.plugin_id, info.value.key) == ("echo_1", "delay_ms")
    assert isinstance(info.value, ValueError)  # callers that catch ValueError keep working
    with pytest.raises(ParamError, match=r"plugin 'echo_1': mode: must be one of even, swing; got 'straight'"):
        echo.mode = "straight"
    with pytest.raises(ParamError, match=r"repeats: must be a whole number; got 2.5"):
        echo.repeats = 2.5
    with pytest.raises(ParamError, match=r"dry: must be true or false; got 1"):
        echo.dry = 1  # type: ignore[assignment]  # the wrong type on purpose: refused at run time too
    assert (echo.delay_ms, echo.mode, echo.repeats, echo.dry) == (7.0, "even", 2, True)  # refused values leave it unchanged


def test_options_errors_name_the_option() -> None:
    with pytest.raises(OptionError, match=r"^delay_ms: must be >= 1.0; got 0.0$"):
        Echo(delay_ms=0)
    with pytest.raises(UnknownOption, match="did you mean 'delay_ms'"):
        Echo(delay=3)


def test_values_are_per_instance() -> None:
    a, b = Echo(delay_ms=10), Echo()
    a.repeats = 5
    assert (a.delay_ms, a.repeats) == (10.0, 5)
    assert (b.delay_ms, b.repeats) == (100.0, 2)
    assert Echo.delay_ms.default == 100.0  # the declaration is untouched


def test_class_level_introspection() -> None:
    spec = Echo.delay_ms
    assert isinstance(spec, Param)
    assert (spec.name, spec.default, spec.min, spec.max, spec.doc, spec.live) == ("delay_ms", 100.0, 1.0, 5000.0, "how late the echo comes", True)
    assert [p.name for p in Echo.params] == ["delay_ms", "repeats", "mode", "dry"]
    assert Echo.param_spec("mode") is Echo.mode
    assert Echo().param_spec("mode").choices == ("even", "swing")
    with pytest.raises(UnknownOption):
        Echo.param_spec("nope")


def test_a_subclass_redeclares_in_place_and_adds() -> None:
    assert [p.name for p in LateEcho.params] == ["delay_ms", "repeats", "mode", "dry", "feedback"]
    assert LateEcho.delay_ms.default == 400.0 and LateEcho.delay_ms.max == 5000.0
    assert LateEcho().delay_ms == 400.0 and Echo().delay_ms == 100.0


def test_the_older_declaration_still_works() -> None:
    echo = OldEcho(delay_ms=5)
    assert echo.delay_ms == 5.0  # type: ignore[attr-defined]  # untyped: the older way has no class attribute
    assert [p.name for p in OldEcho.params] == ["delay_ms", "mode"]
    with pytest.raises(ParamError, match="plugin 'old_echo': mode"):
        echo.mode = "straight"  # type: ignore[attr-defined]


def test_a_param_named_twice_is_refused() -> None:
    with pytest.raises((TypeError, RuntimeError)) as info:  # Python 3.11 wraps it in a RuntimeError
        class Wrong(Plugin):
            delay_ms = Param("delay", 1.0)
    assert "Wrong.delay_ms is declared as parameter 'delay'" in f"{info.value} {info.value.__cause__}"


def test_set_param_clamps_numbers_and_checks_the_rest() -> None:
    echo = Echo()
    echo.set_param("delay_ms", 1e9)  # a knob past the end: the limit
    assert echo.delay_ms == 5000.0
    echo.set_param("mode", 1.0)  # a knob sweeps the choices
    assert echo.mode == "swing"
    with pytest.raises(ValueError, match="must be one of"):
        echo.set_param("mode", "straight")


def test_parameters_that_convert_check_assignments_in_their_stored_form() -> None:
    plugin = ChannelFilter(channels=[1, 3])
    assert plugin.channels == (0, 2)  # presets say 1-16; stored 0-15
    plugin.channels = (5, 4)
    assert plugin.channels == (4, 5)
    with pytest.raises(ParamError, match="channels 0-15"):
        plugin.channels = (16,)
    mapping = ChannelMap(map={1: 2})
    assert mapping.map == {0: 1}
    with pytest.raises(ParamError, match="channels 0-15"):
        mapping.map = {0: 16}


def test_builtin_plugins_are_typed_attributes() -> None:
    assert Transpose(semitones=3).semitones == 3
    assert ScaleQuantize(key="D minor").scale == "minor" and ScaleQuantize(key="D minor").key == "D"
    velocity = VelocityCurve(min=20, max=100)
    assert (velocity.min, velocity.max) == (20, 100)
    harmonizer = Harmonizer(low="C3", temperature=1)
    assert harmonizer.low == 48 and harmonizer.temperature == 1.0 and type(harmonizer.temperature) is float
    harmonizer.low = "D3"  # type: ignore[assignment]  # a note name is accepted at run time, as in a preset
    assert harmonizer.low == 50
    with pytest.raises(ParamError, match="plugin 'harmonizer': temperature: must be <= 2.0"):
        harmonizer.temperature = 3.0


def test_partner_defaults_per_mode() -> None:
    """Each mode starts the shared settings where it did when they were listed per mode."""
    assert [(p.name, p.default) for p in Harmonizer.params[:10]] == [
        ("model", "chorale-harmony"), ("channel", 4), ("listen", 0), ("low", 48), ("high", 84), ("key", "auto"),
        ("scale", "major"), ("temperature", 0.7), ("top_p", 0.95), ("memory", 0.0)]
    assert (Continuation.channel.default, Continuation.low.default, Continuation.model.default) == (3, 55, "folk-melody")
    assert (CallResponse.channel.default, CallResponse.low.default, CallResponse.high.default) == (2, 60, 84)
    assert (Accompanist.low.default, Accompanist.high.default, Accompanist.temperature.default, Accompanist.repeat_penalty.default) == (36, 55, 0.8, 3.0)
    assert [p.name for p in Accompanist.params[10:12]] == ["repeat_penalty", "max_run"]
    assert "repeat_penalty" not in {p.name for p in Harmonizer.params}
