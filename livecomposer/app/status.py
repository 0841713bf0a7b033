"""The live status screen: everything a performer checks at a glance, and a few keys.

A rich ``Live`` panel redrawn a few times a second from a thread that only *reads* the
session (counters, the tempo map, port names): it never takes a lock the engine needs.
Keys are read from the terminal in cbreak mode on another thread: ``p`` panic, ``n``/``b``
next/previous preset of the bank, ``+``/``-`` nudge the internal tempo, ``q`` quit.  When
standard input is not a terminal (a service, a pipe, CI) the keys are simply off.
"""

from __future__ import annotations

import io
import math
import os
import select
import sys
import threading
import time
from typing import Any, Protocol

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text


class StatusSource(Protocol):
    """What the screen reads: a live session (``livecomposer.app.session.LiveSession``).

    Required: ``engine`` (with ``stats`` and ``tempo``).  Optional, shown when present:
    ``preset`` (``name``), ``inputs``/``output`` (ports with ``name``), ``router`` (``bank``,
    ``index``, ``select(engine, i)``), ``observers`` (a monitor with ``underruns``/``describe()``),
    ``visualizer`` (``fps``: a number or a method)."""

    engine: Any


def _fmt_us(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.0f} µs" if value < 10_000 else f"{value / 1000:,.1f} ms"


def _name(port: Any) -> str:
    return str(getattr(port, "name", port))


class StatusScreen:
    """``StatusScreen(session).start()`` ... ``.stop()``; ``quit_requested`` turns True on ``q``."""

    def __init__(self, source: StatusSource, console: Console | None = None, refresh_hz: float = 4.0, keys: bool = True) -> None:
        self.source = source
        self.console = console or Console()
        self.refresh_hz = refresh_hz
        self.keys_enabled = keys
        self.quit_requested = False
        self.message = ""  # last action, shown at the bottom ("panic sent", ...)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._live: Live | None = None
        self._last = (time.monotonic(), 0, 0)  # for the notes-per-second rates

    # -- what is shown ---------------------------------------------------------------------
    def render(self) -> Panel:
        src = self.source
        engine = src.engine
        stats = engine.stats
        tempo = getattr(engine, "tempo", None)
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", justify="right")
        table.add_column()

        preset = getattr(src, "preset", None)
        router = getattr(src, "router", None)
        preset_line = str(getattr(preset, "name", "-"))
        bank = list(getattr(router, "bank", ()) or ())
        if bank:
            index = getattr(router, "index", None)
            preset_line += f"   (bank {'?' if index is None else index + 1}/{len(bank)})"
        table.add_row("preset", preset_line)
        inputs = getattr(src, "inputs", None)
        if inputs is not None:
            table.add_row("MIDI in", _inputs_line(inputs, getattr(src, "input_news", ())))
        output = getattr(src, "output", None) or getattr(engine, "output", None)
        if output is not None:
            alive = getattr(output, "alive", True)
            table.add_row("MIDI out", _name(output) + ("" if alive else "   [bold red]GONE[/]"))

        if tempo is not None:
            describe = getattr(tempo, "describe", None)
            line = describe() if describe else f"{tempo.bpm:.1f} BPM"
            try:
                now = engine.clock.now()
                beats_per_bar = getattr(tempo, "beats_per_bar", 4)
                beat = tempo.beat_at(now)
                line += f"   bar {int(beat // beats_per_bar) + 1}.{int(beat % beats_per_bar) + 1}"
            except Exception:
                pass
            table.add_row("tempo", line)

        now_s = time.monotonic()
        t0, in0, out0 = self._last
        dt = max(now_s - t0, 1e-6)
        rate_in = (stats.notes_in - in0) / dt
        rate_out = (stats.notes_out - out0) / dt
        if dt >= 1.0:
            self._last = (now_s, stats.notes_in, stats.notes_out)
        table.add_row(
            "notes",
            f"in {stats.notes_in:,} ({rate_in:.0f}/s)   out {stats.notes_out:,} ({rate_out:.0f}/s)   held {stats.held_notes}",
        )
        median, p99 = stats.latency_summary()
        table.add_row("latency", f"median {_fmt_us(median)}   p99 {_fmt_us(p99)}")
        problems = (
            f"bad {stats.bad_messages}   dropped {stats.dropped}   "
            f"send errors {getattr(stats, 'send_errors', 0)}   plugin failures {stats.plugin_failures}"
        )
        bad = stats.bad_messages or stats.dropped or getattr(stats, "send_errors", 0) or stats.plugin_failures
        table.add_row("messages", f"in {stats.messages_in:,}   " + (f"[yellow]{problems}[/]" if bad else problems))

        for observer in getattr(src, "observers", ()) or ():
            if hasattr(observer, "underruns") or type(observer).__name__.endswith("Monitor"):
                describe = getattr(observer, "describe", None)
                table.add_row("monitor", describe() if describe else type(observer).__name__)
        visualizer = getattr(src, "visualizer", None)
        if visualizer is not None:
            table.add_row("visuals", _visual_line(visualizer))

        footer = Text("p panic · n/b next/previous preset · +/- tempo · q quit", style="dim")
        parts: list[Any] = [table]
        if self.message:
            parts.append(Text(self.message, style="bold yellow"))
        parts.append(footer)
        return Panel(Group(*parts), title="livecomposer", border_style="green" if not bad else "yellow")

    def render_text(self, width: int = 100) -> str:
        """The screen as plain text (tests, logs)."""
        console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
        console.print(self.render())
        return console.export_text()

    # -- keys ---------------------------------------------------------------------------------
    def handle_key(self, key: str) -> None:
        src = self.source
        engine = src.engine
        if key == "p":
            engine.panic()  # thread-safe: runs on the engine thread at its next tick
            self.message = "panic: all notes off"
        elif key in ("n", "b"):
            router = getattr(src, "router", None)
            bank = list(getattr(router, "bank", ()) or ())
            if not bank:
                self.message = "no bank in this preset"
                return
            index = getattr(router, "index", None)
            step = 1 if key == "n" else -1
            target = ((index if index is not None else (-1 if step > 0 else 0)) + step) % len(bank)
            router.select(engine, target)
            self.message = f"loading preset {target + 1}/{len(bank)}: {getattr(bank[target], 'name', bank[target])}"
        elif key in ("+", "=", "-"):
            tempo = getattr(engine, "tempo", None)
            if tempo is None or getattr(tempo, "source", "internal") != "internal":
                self.message = "the tempo follows an external clock"
                return
            delta = 1.0 if key in ("+", "=") else -1.0
            bpm = min(400.0, max(20.0, round(tempo.bpm + delta)))
            engine.call_soon(lambda: tempo.set_bpm(bpm, engine.clock.now()))
            self.message = f"tempo {bpm:.0f} BPM"
        elif key == "q":
            self.quit_requested = True
            self.message = "quitting"

    def _read_keys(self) -> None:
        import termios
        import tty

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            while not self._stop.is_set():
                ready, _, _ = select.select([fd], [], [], 0.1)
                if ready:
                    data = os.read(fd, 32).decode(errors="ignore")
                    if not data:
                        return
                    for key in data:
                        self.handle_key(key.lower() if key.isalpha() else key)
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> "StatusScreen":
        self._live = Live(self.render(), console=self.console, refresh_per_second=self.refresh_hz, transient=False)
        self._live.start()
        self._threads.append(threading.Thread(target=self._refresh, name="status-screen", daemon=True))
        if self.keys_enabled and _stdin_is_tty():
            self._threads.append(threading.Thread(target=self._read_keys, name="status-keys", daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def _refresh(self) -> None:
        period = 1.0 / self.refresh_hz
        while not self._stop.wait(period):
            try:
                if self._live is not None:
                    self._live.update(self.render())
            except Exception as exc:  # the screen must never take the show down
                self.message = f"status error: {exc}"

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(1.0)
        if self._live is not None:
            try:
                self._live.update(self.render())
            finally:
                self._live.stop()
                self._live = None

    def __enter__(self) -> "StatusScreen":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: How long "X connected" stays on the screen after a keyboard was plugged in.
NEWS_S = 30.0


def _inputs_line(inputs: Any, news: Any) -> str:
    """'Keystation 49, nanoKEY GONE   (nanoKEY connected 3 s ago)': every input, those that
    vanished marked (they reconnect when they return), and the latest one that appeared."""
    names = [escape(_name(p)) + ("" if getattr(p, "alive", True) else " [bold red]GONE[/]") for p in list(inputs)]
    line = ", ".join(names) or "(none yet: waiting for a keyboard)"
    news = list(news or ())
    if news:
        when, what = news[-1]
        age = time.time() - when
        if 0 <= age < NEWS_S:
            line += f"   [green]({escape(what)} {age:.0f} s ago)[/]"
    return line


def _visual_line(visualizer: Any) -> str:
    """'58.3 fps, 12.1 ms a frame, 1 page open  http://127.0.0.1:8765/' from the visualizer's
    ``status()`` (livecomposer.visual), or its ``fps`` (a number or a method)."""
    try:
        status = visualizer.status() if callable(getattr(visualizer, "status", None)) else None
        if status is not None:
            if getattr(status, "failed", False):
                return "[bold red]stopped[/]"
            if not getattr(status, "ready", True):
                return "starting..."
            line = f"{status.fps:.1f} fps"
            if getattr(status, "frame_ms", None):
                line += f", {status.frame_ms:.1f} ms a frame"
            clients = getattr(status, "clients", None)
            if clients is not None:
                line += f", {clients} page{'s' if clients != 1 else ''} open"
            url = getattr(visualizer, "url", None)
            return line + (f"   {url}" if isinstance(url, str) else "")
        fps = getattr(visualizer, "fps", None)
        fps = fps() if callable(fps) else fps
        return "-" if fps is None else f"{fps:.1f} fps"
    except Exception as exc:  # a dying visualizer must not take the screen down
        return f"unavailable ({type(exc).__name__})"


def _stdin_is_tty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):
        return False
