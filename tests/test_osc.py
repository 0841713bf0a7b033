"""The OSC surface with a real UDP client on 127.0.0.1, driving a live engine with a real preset."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pythonosc.udp_client import SimpleUDPClient

from conftest import wait_until
from livecomposer.kernel.clock import MonotonicClock
from livecomposer.kernel.engine import Engine
from livecomposer.app.osc import OscError, OscServer
from livecomposer.ports.memory import MemoryInput, MemoryOutput
from livecomposer.app.session import load, make_router
from livecomposer.kernel.tempo import Tempo

PRESETS = Path(__file__).resolve().parents[1] / "presets"




@pytest.fixture
def live():
    preset, graph = load(PRESETS / "transpose.yaml")
    router = make_router(preset)
    clock = MonotonicClock()
    keyboard = MemoryInput()
    out = MemoryOutput(clock.now)
    engine = Engine(graph, inputs=[keyboard], output=out, control_handler=router, tempo=Tempo(bpm=120), realtime=False)
    with engine:
        with OscServer(engine, port=0, router=router) as server:
            client = SimpleUDPClient("127.0.0.1", server.port)
            yield engine, server, client, keyboard, out, router


def notes_out(out):
    return [m for _, m in out.sent if m[0] & 0xF0 == 0x90]


def test_listens_on_loopback_only_by_default(live):
    engine, server, *_ = live
    assert server.host == "127.0.0.1" and server._server.server_address[0] == "127.0.0.1"


def test_param_then_notes_follow(live):
    engine, server, client, keyboard, out, _ = live
    plugin = engine.graph.find("transpose")
    client.send_message("/livecomposer/transpose/semitones", 5)
    assert wait_until(lambda: plugin.semitones == 5)
    keyboard.feed([0x90, 60, 100], time.monotonic_ns())
    assert wait_until(lambda: notes_out(out))
    assert notes_out(out)[-1][1] == 65


def test_cc_mirrors_the_preset_mapping(live):
    engine, server, client, keyboard, out, _ = live
    plugin = engine.graph.find("transpose")
    client.send_message("/livecomposer/cc/21", 127)  # mapped to transpose.semitones, range -12..12
    assert wait_until(lambda: plugin.semitones == 12)
    client.send_message("/livecomposer/cc/21", 0.0)  # a float fader: 0.0..1.0
    assert wait_until(lambda: plugin.semitones == -12)
    # a mapped CC is consumed by the mapping, not sent on
    assert not [m for _, m in out.sent if m[0] & 0xF0 == 0xB0 and m[1] == 21]


def test_panic_sends_all_notes_off(live):
    engine, server, client, keyboard, out, _ = live
    keyboard.feed([0x90, 60, 100], time.monotonic_ns())
    assert wait_until(lambda: notes_out(out))
    client.send_message("/livecomposer/panic", [])
    assert wait_until(lambda: any(m[0] & 0xF0 == 0xB0 and m[1] == 123 for _, m in out.sent))
    offs = [m for _, m in out.sent if m[0] & 0xF0 == 0x80]
    assert offs and offs[0][1] == 60  # the held note's own note-off came first


def test_preset_next_switches_through_the_bank(live):
    engine, server, client, keyboard, out, router = live
    assert router.index == 1  # transpose.yaml is the bank's second entry
    client.send_message("/livecomposer/preset/next", [])
    assert wait_until(lambda: router.index == 2, timeout=5)
    assert engine.graph.find("transpose") is None  # scale-lock.yaml is loaded now


def test_tempo(live):
    engine, server, client, *_ = live
    client.send_message("/livecomposer/tempo/bpm", 90.0)
    assert wait_until(lambda: abs(engine.tempo.bpm - 90.0) < 1e-6)


def test_bad_messages_are_counted_and_the_music_goes_on(live):
    engine, server, client, keyboard, out, _ = live
    client.send_message("/livecomposer/nope/semitones", 1)
    client.send_message("/livecomposer/transpose/semitones", "up")
    client.send_message("/livecomposer/transpose/colour", 1)
    client.send_message("/livecomposer/cc/300", 1)
    client.send_message("/livecomposer/tempo/bpm", 1000)
    client.send_message("/other/thing", 1)
    assert wait_until(lambda: server.errors == 6), server.last_error
    keyboard.feed([0x90, 62, 100], time.monotonic_ns())
    assert wait_until(lambda: notes_out(out))
    assert engine.stats.plugin_failures == 0


def test_busy_port_is_a_clear_error(live):
    engine, server, *_ = live
    with pytest.raises(OscError, match=f"127.0.0.1:{server.port}"):
        OscServer(engine, port=server.port).start()
    with pytest.raises(OscError, match="IP address"):
        OscServer(engine, host="localhost-ish")
