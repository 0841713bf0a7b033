"""rtmidi ports through a real JACK server, with other processes as keyboard and DAW."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from conftest import HELPERS, JackServer, REPO, _Lines, start_jackd, stop_jackd, unique, wait_until
from livecomposer.ports.base import PortError
from livecomposer.ports.backends import resolve_api
from livecomposer.ports.base import PortGone
from livecomposer.ports.inputs import open_inputs
from livecomposer.ports.listing import list_ports
from livecomposer.ports.outputs import open_output

pytestmark = pytest.mark.jack


class Collect:
    """An input sink that keeps what arrives (it runs on rtmidi's thread)."""

    def __init__(self) -> None:
        self.got: list[tuple[int, bytes]] = []
        self.event = threading.Event()

    def __call__(self, time_ns: int, message: bytes) -> None:
        self.got.append((time_ns, message))
        self.event.set()

    def wait_count(self, n: int, timeout: float = 5.0) -> list[tuple[int, bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            self.event.wait(0.05)
            self.event.clear()
        return list(self.got)




def test_auto_picks_jack_without_an_alsa_sequencer(jack_server: JackServer) -> None:
    expected = "alsa" if os.path.exists("/dev/snd/seq") else "jack"
    assert resolve_api("auto") == expected
    assert resolve_api("jack") == "jack"
    with pytest.raises(PortError, match="unknown MIDI API"):
        resolve_api("oss")


def test_listing_shows_other_programs_ports(jack_server: JackServer, midi_sender, midi_receiver) -> None:
    keyboard = midi_sender()
    daw = midi_receiver()
    listing = list_ports("jack")
    assert listing.backend == "jack"
    assert keyboard.port in listing.inputs
    assert daw.port in listing.outputs


def test_input_from_another_process_arrives_timestamped_with_clock_kept(jack_server, midi_sender) -> None:
    keyboard = midi_sender()
    [port] = open_inputs("jack", keyboard.port)
    sink = Collect()
    try:
        assert port.name == keyboard.port and port.alive
        port.start(sink)
        notes = [[0x90, 60 + i, 100] for i in range(10)] + [[0x80, 60 + i, 0] for i in range(10)]
        sent = keyboard.send(*notes[:10], gap_ms=5)
        # Clock and start are kept; active sensing and sysex are dropped at the port.
        sent += keyboard.send([0xF8], [0xFA], [0xFE], [0xF0, 0x7D, 0x01, 0xF7])
        sent += keyboard.send(*notes[10:])
        got = sink.wait_count(22)
    finally:
        port.close()
    assert [list(m) for _, m in got] == notes[:10] + [[0xF8], [0xFA]] + notes[10:]
    stamps = [t for t, _ in got]
    assert stamps == sorted(stamps)
    # Stamped with the JACK time of the event's frame: the start of the cycle that carried
    # it, which can precede the sender's own reading by up to one period (64 frames at
    # 48 kHz here), and never long after.
    period_ns = 64 * 1_000_000_000 // 48_000
    for t_sent, t_got in zip(sent[:10], stamps[:10]):
        assert t_sent - period_ns < t_got < t_sent + 200_000_000


def test_all_inputs_by_default_but_never_our_own_output(jack_server, midi_sender) -> None:
    first, second = midi_sender(), midi_sender()
    out = open_output("jack", virtual=unique("lc-out"))
    ports = open_inputs("jack")
    try:
        names = [p.name for p in ports]
        assert first.port in names and second.port in names
        assert out.own_name is not None and out.own_name not in names
        assert not any(n.startswith("livecomposer-") for n in names)
    finally:
        for p in ports:
            p.close()
        out.close()


def test_several_substrings_and_a_clear_error_when_nothing_matches(jack_server, midi_sender) -> None:
    first, second = midi_sender(), midi_sender()
    ports = open_inputs("jack", [first.port.split(":")[0].upper(), second.port])
    try:
        assert sorted(p.name for p in ports) == sorted([first.port, second.port])
    finally:
        for p in ports:
            p.close()
    with pytest.raises(PortError) as err:
        open_inputs("jack", ["no-such-keyboard"])
    assert "no-such-keyboard" in str(err.value) and first.port in str(err.value)
    with pytest.raises(PortError) as err:
        open_output("jack", port="no-such-synth")
    assert "existing outputs" in str(err.value)
    with pytest.raises(PortError, match="exactly one"):
        open_output("jack")


def test_virtual_output_is_received_by_another_process(jack_server, midi_receiver) -> None:
    name = unique("lc-out")
    out = open_output("jack", virtual=name)
    try:
        assert out.own_name == f"{name}:{name}"
        daw = midi_receiver(source=out.own_name)
        messages = [[0x90, 64, 90], [0xB0, 1, 20], [0xE0, 0, 64], [0x80, 64, 0]]
        for m in messages:
            out.send(m)
            time.sleep(0.002)
        got = daw.wait_count(len(messages))
    finally:
        out.close()
    assert [m for _, m in got] == messages


def test_output_to_an_existing_port(jack_server, midi_receiver) -> None:
    daw = midi_receiver()
    out = open_output("jack", port=daw.port)
    try:
        assert out.target == daw.port
        out.send([0x91, 70, 100])
        out.send([0x81, 70, 0])
        got = daw.wait_for(lambda g: [0x81, 70, 0] in [m for _, m in g])
    finally:
        out.close()
    # The end-to-end check's probe sysex may come first; the notes must follow in order.
    notes = [m for _, m in got if m[0] != 0xF0]
    assert notes == [[0x91, 70, 100], [0x81, 70, 0]]


def test_verify_checks_delivery_end_to_end_and_repairs_a_dead_output(jack_server, midi_receiver) -> None:
    name = unique("lc-out")
    out = open_output("jack", virtual=name, verify=False)
    try:
        assert out.verify() is True and out.reconnects == 0
        out._driver.close()  # break it for real: the JACK port is gone, the output still "sends"
        assert out.verify() is True and out.reconnects >= 1  # noticed and reopened (or the watcher did)
        daw = midi_receiver(source=f"{name}:{name}")
        out.send([0x90, 70, 1])
        got = daw.wait_for(lambda g: [0x90, 70, 1] in [m for _, m in g])
    finally:
        out.close()
    assert [0x90, 70, 1] in [m for _, m in got]


def test_input_notices_a_vanished_source_and_reconnects_when_it_returns(jack_server, midi_sender) -> None:
    client = unique("kbd")
    keyboard = midi_sender(client)
    [port] = open_inputs("jack", keyboard.port)
    sink = Collect()
    port.start(sink)
    try:
        keyboard.send([0x90, 50, 1])
        assert sink.wait_count(1)
        keyboard.close()
        assert wait_until(lambda: not port.alive, 5), "input still alive after its source vanished"
        keyboard = midi_sender(client)  # the same program comes back
        assert wait_until(lambda: port.alive, 5), "input did not reconnect"
        assert port.reconnects == 1
        keyboard.send([0x90, 51, 2])
        got = sink.wait_count(2)
    finally:
        port.close()
    assert [list(m) for _, m in got] == [[0x90, 50, 1], [0x90, 51, 2]]


SERVER_DEATH_CHILD = """
import sys, time
from livecomposer.ports.base import PortGone
from livecomposer.ports.outputs import open_output
out = open_output("jack", virtual=sys.argv[1])
print("open", out.own_name, flush=True)
for line in sys.stdin:
    if line.startswith("state"):
        print("alive" if out.alive else "dead", out.reconnects, flush=True)
    elif line.startswith("send"):
        try:
            out.send([0x90, 61, 100])
            print("sent", flush=True)
        except PortGone:
            print("gone", flush=True)
out.close()
"""


@pytest.mark.jackd  # kills and restarts a jackd of its own: not a PipeWire test
def test_a_dead_jack_server_is_noticed_and_ports_come_back_with_it(jack_server, tmp_path) -> None:
    """rtmidi raises nothing when jackd dies; our watch client must notice, and recover.

    libjack keeps per-process state for one server, so the program under test runs in its
    own process on its own server, which this test kills and restarts.
    """
    server = f"lc-die-{os.getpid()}"  # killed with SIGKILL: conftest frees its registry slot after
    env = dict(os.environ, JACK_DEFAULT_SERVER=server, JACK_NO_START_SERVER="1", PYTHONPATH=str(REPO))
    process = start_jackd(server)
    name = unique("lc-out")
    child = subprocess.Popen([sys.executable, "-c", SERVER_DEATH_CHILD, name], env=env, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    replies = _Lines(child)

    def ask(command: str) -> str:
        n = len(replies.lines)
        child.stdin.write(command + "\n")
        child.stdin.flush()
        lines = replies.wait_for(lambda ls: len(ls) > n, 10)
        assert len(lines) > n, f"no answer to {command!r}"
        return lines[n].strip()

    def state_becomes(expected: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = ask("state")
            if state.startswith(expected) or time.monotonic() > deadline:
                return state
            time.sleep(0.05)

    try:
        assert replies.wait_for(lambda ls: ls, 20)[:1] == [f"open {name}:{name}"]
        assert state_becomes("alive", 1) == "alive 0"
        process.kill()
        process.wait()
        assert state_becomes("dead", 3) == "dead 0", "output still alive after jackd was killed"
        assert ask("send") == "gone"
        process = start_jackd(server)
        assert state_becomes("alive", 5) == "alive 1", "output did not come back with the server"
        sniff = subprocess.Popen([sys.executable, str(HELPERS / "midi_receive.py"), unique("daw"), "--source", name],
                                 env=env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        heard = _Lines(sniff)
        try:
            assert heard.wait_for(lambda ls: ls, 20)[:1][0].startswith("ready")
            assert ask("send") == "sent"
            lines = heard.wait_for(lambda ls: len(ls) > 1, 5)
            assert [line.split()[1:] for line in lines[1:]] == [["90", "3d", "64"]]
        finally:
            sniff.stdin.close()
            sniff.wait(5)
    finally:
        child.stdin.close()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
        stop_jackd(process)


def test_ports_command_lists_backend_and_ports(jack_server, midi_sender, midi_receiver, run_cli) -> None:
    keyboard, daw = midi_sender(), midi_receiver()
    proc = run_cli("ports", "--api", "jack")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == "backend: jack"
    inputs = lines[lines.index("inputs:") + 1 : lines.index("outputs:")]
    outputs = lines[lines.index("outputs:") + 1 :]
    assert f"  {keyboard.port}" in inputs
    assert f"  {daw.port}" in outputs


@pytest.mark.parametrize("api", ["jack", "auto"])
def test_no_midi_system_gives_one_line_and_a_nonzero_exit(api, run_cli, tmp_path) -> None:
    if api == "auto" and os.path.exists("/dev/snd/seq"):
        api = "jack"  # with an ALSA sequencer "auto" has a MIDI system; test the JACK message
    proc = run_cli("ports", "--api", api, env={"JACK_DEFAULT_SERVER": f"absent-{os.getpid()}", "JACK_NO_START_SERVER": "1"})
    out, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert "Traceback" not in err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("livecomposer: ") and "JACK" in lines[0] and "jackd" in lines[0]


def test_output_to_a_port_that_vanishes_raises_and_comes_back_with_it(jack_server, midi_receiver) -> None:
    client = unique("daw")
    daw = midi_receiver(client)
    out = open_output("jack", port=daw.port)
    try:
        daw.close()
        assert wait_until(lambda: not out.alive, 5), "output still alive after its destination vanished"
        with pytest.raises(PortGone):
            out.send([0x90, 60, 100])
        daw = midi_receiver(client)  # the synth is started again
        assert wait_until(lambda: out.alive, 5), "output did not reconnect to its destination"
        out.send([0x90, 62, 100])
        got = daw.wait_for(lambda g: [0x90, 62, 100] in [m for _, m in g])
    finally:
        out.close()
    assert [0x90, 62, 100] in [m for _, m in got]
    assert out.reconnects == 1
