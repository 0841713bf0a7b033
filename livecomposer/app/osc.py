"""An optional OSC control surface (python-osc), for tablets and controller apps.

Addresses (all under ``/livecomposer``):

- ``/livecomposer/<plugin_id>/<param> VALUE``: set a plugin parameter (as a CC mapping would);
  ``/livecomposer/visual/<knob> VALUE`` sets the visuals' stage look (``trails``, ``mirror``...);
- ``/livecomposer/cc/<number> VALUE [CHANNEL]``: behave exactly like that CC from the keyboard,
  so every CC mapping of the preset (params, panic, presets, tap) is mirrored.  VALUE is
  0..127, or a float 0.0..1.0 (scaled);
- ``/livecomposer/panic``; ``/livecomposer/preset/next``, ``/preset/previous``,
  ``/livecomposer/preset INDEX``; ``/livecomposer/tempo/bpm BPM``; ``/livecomposer/tempo/tap``.

It binds to 127.0.0.1 unless told otherwise: nothing here listens on the network by default.
The server thread never touches the plugin graph: every change is handed to the engine
thread (``engine.call_soon``/``engine.sink``), where it is applied between ticks.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer

log = logging.getLogger(__name__)

PREFIX = "/livecomposer"
DEFAULT_PORT = 9000


class OscError(ValueError):
    pass


def _cc_value(value: Any) -> int:
    """0..127 from an int, or a float 0.0..1.0 (what most OSC faders send)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OscError(f"value must be a number; got {value!r}")
    if isinstance(value, float) and 0.0 <= value <= 1.0:
        return int(round(value * 127))
    return max(0, min(127, int(round(value))))


class OscServer:
    """``OscServer(engine, port=9000, host="127.0.0.1", router=None).start()`` ... ``.close()``.

    ``router``: the session's ``ControlRouter`` (for ``/preset``); ``engine``: the live
    engine (``call_soon``, ``panic``, ``sink``, ``graph``, ``tempo``, ``clock``).
    """

    def __init__(self, engine: Any, port: int = DEFAULT_PORT, host: str = "127.0.0.1", router: Any = None) -> None:
        self.engine = engine
        self.router = router
        self.host = host
        self.requested_port = port
        self.port = port
        self.received = 0
        self.errors = 0
        self.last_error = ""
        self._server: ThreadingOSCUDPServer | None = None
        self._thread: threading.Thread | None = None
        try:
            if not ipaddress.ip_address(host).is_loopback:
                log.warning("OSC listens on %s: reachable from the network", host)
        except ValueError:
            raise OscError(f"OSC host must be an IP address; got {host!r}") from None

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> "OscServer":
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(self._handle)
        try:
            self._server = ThreadingOSCUDPServer((self.host, self.requested_port), dispatcher)
        except OSError as exc:
            raise OscError(f"cannot listen for OSC on {self.host}:{self.requested_port}: {exc.strerror or exc}") from None
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="livecomposer-osc", daemon=True)
        self._thread.start()
        log.info("OSC control on %s:%d", self.host, self.port)
        return self

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(2)
            self._thread = None

    def __enter__(self) -> "OscServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- messages -------------------------------------------------------------------------------
    def _handle(self, address: str, *args: Any) -> None:
        self.received += 1
        try:
            self.dispatch(address, list(args))
        except OscError as exc:
            self.errors += 1
            self.last_error = f"{address}: {exc}"
            log.warning("OSC %s", self.last_error)

    def dispatch(self, address: str, args: list[Any]) -> None:
        """Act on one message (raises :class:`OscError` for anything we cannot use)."""
        if not address.startswith(PREFIX + "/"):
            raise OscError("not a livecomposer address")
        parts = address[len(PREFIX) + 1 :].split("/")
        engine = self.engine
        if parts == ["panic"]:
            engine.panic()
        elif parts[0] == "cc" and len(parts) == 2:
            if not parts[1].isdigit() or not 0 <= int(parts[1]) <= 127:
                raise OscError(f"CC number must be 0..127; got {parts[1]!r}")
            if not args:
                raise OscError("needs a value")
            channel = int(args[1]) if len(args) > 1 and isinstance(args[1], int) else 0
            if not 0 <= channel <= 15:
                raise OscError(f"channel must be 0..15; got {channel}")
            # In through the same door as the keyboard: the preset's CC mappings apply.
            engine.sink(time.monotonic_ns(), bytes([0xB0 | channel, int(parts[1]), _cc_value(args[0])]))
        elif parts[0] == "preset":
            self._preset(parts[1:], args)
        elif parts[0] == "tempo" and len(parts) == 2:
            self._tempo(parts[1], args)
        elif len(parts) == 2:
            self._param(parts[0], parts[1], args)
        else:
            raise OscError("unknown address")

    def _param(self, plugin_id: str, name: str, args: list[Any]) -> None:
        if len(args) != 1:
            raise OscError("needs exactly one value")
        value = args[0]
        plugin = self.engine.graph.find(plugin_id)
        if plugin is None and plugin_id == "visual":
            self._look(name, value)
            return
        if plugin is None:
            raise OscError(f"no plugin {plugin_id!r} in this preset")
        try:
            spec = plugin.param_spec(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                spec.clamp(value)
            else:
                spec.coerce(value)
        except ValueError as exc:
            raise OscError(str(exc)) from None

        def apply() -> None:
            try:
                target = self.engine.graph.find(plugin_id)  # the preset may have changed since
                if target is not None:
                    target.set_param(name, value)
            except Exception as exc:  # never let a remote message break an engine tick
                self.errors += 1
                self.last_error = f"{plugin_id}.{name}: {exc}"
                log.warning("OSC %s", self.last_error)

        self.engine.call_soon(apply)

    def _look(self, name: str, value: Any) -> None:
        """``/livecomposer/visual/<knob> VALUE``: the stage look, as a knob would set it."""
        from ..visual.look import LookConfig, set_live

        try:
            set_live(LookConfig(), name, value)
        except (TypeError, ValueError) as exc:
            raise OscError(str(exc)) from None
        engine = self.engine
        engine.call_soon(lambda: engine.ctx.publish(f"visual.{name}", value))

    def _preset(self, rest: list[str], args: list[Any]) -> None:
        router = self.router
        bank = list(getattr(router, "bank", ()) or ())
        if router is None or not bank:
            raise OscError("this preset has no bank")
        index = getattr(router, "index", None)
        if rest == ["next"]:
            target = ((index if index is not None else -1) + 1) % len(bank)
        elif rest in (["previous"], ["prev"]):
            target = ((index if index is not None else 0) - 1) % len(bank)
        elif rest == [] and len(args) == 1 and isinstance(args[0], int) and not isinstance(args[0], bool):
            target = args[0]
            if not 0 <= target < len(bank):
                raise OscError(f"preset index must be 0..{len(bank) - 1}; got {target}")
        else:
            raise OscError("use /preset/next, /preset/previous or /preset INDEX")
        router.select(self.engine, target)

    def _tempo(self, what: str, args: list[Any]) -> None:
        engine = self.engine
        tempo = getattr(engine, "tempo", None)
        if tempo is None:
            raise OscError("no tempo in this session")
        if what == "tap":
            t = time.monotonic_ns()
            engine.call_soon(lambda: tempo.tap(t))
        elif what == "bpm":
            if len(args) != 1 or isinstance(args[0], bool) or not isinstance(args[0], (int, float)):
                raise OscError("needs one number")
            bpm = float(args[0])
            if not 20.0 <= bpm <= 400.0:
                raise OscError(f"bpm must be 20..400; got {bpm:g}")
            if getattr(tempo, "source", "internal") != "internal":
                raise OscError(f"the tempo follows the {tempo.source} clock")
            engine.call_soon(lambda: tempo.set_bpm(bpm, engine.clock.now()))
        else:
            raise OscError("use /tempo/bpm or /tempo/tap")
