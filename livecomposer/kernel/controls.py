"""Live controls: knobs (CC) move plugin parameters, buttons panic or switch presets,
program changes pick a preset from the bank, and MIDI learn maps the next knob moved.

The :class:`ControlRouter` is the engine's control handler: it runs on the engine thread
for every incoming CC, program change and note-on, and says whether it consumed it.
Anything slow (loading the next preset and its model) happens on a loader thread; the
engine swaps the prepared graph in between ticks.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from .events import Event, Kind

log = logging.getLogger(__name__)

SUSTAIN_PEDAL = 64


class ControlRouter:
    """Applies a preset's ``controls`` to a running engine.

    ``load_graph(path)`` turns a bank entry into ``(preset, graph)``; it runs on a loader
    thread, never on the engine thread.
    """

    def __init__(
        self,
        controls: Sequence[Any],
        bank: Sequence[Path] = (),
        load_preset: Callable[[Path], tuple[Any, Any]] | None = None,
        on_switch: Callable[[Any], None] | None = None,
        current_index: int | None = None,
    ) -> None:
        self.controls = list(controls)
        self.bank = list(bank)
        self.load_preset = load_preset
        self.on_switch = on_switch
        self.index = current_index
        self.learn_target: str | None = None
        self.learned: list[dict] = []
        self.on_learn: Callable[[dict], None] | None = None
        self._loading = threading.Lock()

    # -- the engine calls this ------------------------------------------------------------
    def __call__(self, engine, event: Event) -> bool:
        kind = event.kind
        if kind is Kind.CONTROL:
            if self.learn_target is not None and event.control != SUSTAIN_PEDAL:
                self._learn(event)
                return True
            for control in self.controls:
                if control.matches(event.channel, event.control):
                    self._apply(engine, control, event)
                    return True
            return False
        if kind is Kind.PROGRAM:
            if self.bank and any(control.matches(event.channel) for control in self.controls):
                self.select(engine, event.value)
                return True
        return False

    def _apply(self, engine, control: Any, event: Event) -> None:
        if control.is_param:
            plugin = engine.graph.find(control.plugin_id)
            if plugin is None and control.plugin_id == "visual":  # the stage look: the visualizer observes it
                engine.ctx.publish(control.to, control.scale(event.value))
                return
            if plugin is None:
                log.warning("control cc %s: no plugin %r in this preset", control.cc, control.plugin_id)
                return
            plugin.set_param(control.param, control.scale(event.value))
            return
        if not control.pressed(event.value):  # buttons act on press, not on release
            return
        action = control.action
        if action == "panic":
            engine.panic_now()
        elif action in ("next_preset", "prev_preset"):
            step = 1 if action == "next_preset" else -1
            current = self.index if self.index is not None else (-1 if step > 0 else 0)
            self.select(engine, (current + step) % max(1, len(self.bank)))
        elif action == "tap_tempo":
            if engine.tempo is not None:
                engine.tempo.tap(event.time)
        elif action == "learn":
            self.learn_target = ""
            log.warning("MIDI learn: move a knob to map it")

    # -- presets ------------------------------------------------------------------------------
    def select(self, engine, index: int) -> None:
        """Switch to the bank's Nth preset: loaded on a thread, swapped in between ticks."""
        if not self.bank or self.load_preset is None:
            return
        if not 0 <= index < len(self.bank):
            log.warning("program %d: the bank has %d presets", index, len(self.bank))
            return
        if not self._loading.acquire(blocking=False):
            log.warning("program %d ignored: a preset is still loading", index)
            return
        path = self.bank[index]

        def load() -> None:
            try:
                preset, graph = self.load_preset(path)
                engine.switch_graph(graph, after=lambda: self._switched(preset, index, engine))
            except Exception as exc:  # a bad bank entry must not stop the music
                log.error("cannot switch to %s: %s", path, exc)
            finally:
                self._loading.release()

        if engine.manual:  # offline render: load in place, so the result is deterministic
            load()
        else:
            threading.Thread(target=load, name="preset-loader", daemon=True).start()

    def _switched(self, preset: Any, index: int, engine: Any) -> None:
        """On the engine thread, right after the swap: the new preset's controls apply, and
        its stage look (the visuals crossfade to it)."""
        self.index = index
        self.controls = list(getattr(preset, "controls", ()))
        engine.ctx.publish("visual.preset", getattr(preset, "visual", None))
        if self.on_switch is not None:
            self.on_switch(preset)
        log.warning("preset %d: %s", index, getattr(preset, "name", "?"))

    # -- MIDI learn ---------------------------------------------------------------------------
    def start_learning(self, target: str) -> None:
        """The next CC moved (other than the sustain pedal) gets mapped to ``target``."""
        self.learn_target = target

    def _learn(self, event: Event) -> None:
        target = self.learn_target or ""
        self.learn_target = None
        mapping = {"cc": event.control, "to": target or "?"}
        self.learned.append(mapping)
        log.warning("MIDI learn: cc %d -> %s", event.control, mapping["to"])
        if self.on_learn is not None:
            self.on_learn(mapping)
