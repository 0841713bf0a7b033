"""The local web page: one HTML file, and the newest JPEG frame pushed over a WebSocket.

Runs an asyncio loop in a thread of the renderer process.  The render loop hands each
frame to :meth:`FrameServer.publish` (thread-safe, never waits); every connected page gets
the newest frame as soon as its previous send has gone out, so a slow browser skips
frames instead of building a queue.  Only 127.0.0.1 by default; nothing is fetched from
the internet (the page is self-contained).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from importlib import resources

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

log = logging.getLogger(__name__)


def page_html() -> bytes:
    return resources.files(__package__).joinpath("static/index.html").read_bytes()


class FrameServer:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.loop: asyncio.AbstractEventLoop | None = None
        self._frame: bytes = b""
        self._number = 0
        self._changed: asyncio.Condition | None = None
        self.clients = 0
        self.sent = 0
        self.stats_extra: dict = {}
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="visual-web", daemon=True)
        self._page = page_html()

    # -- life cycle ----------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> int:
        """Start serving; returns the bound port (useful with port 0)."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("web server did not start")
        if self._error is not None:
            raise self._error
        return self.port

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=3)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # bind errors etc.: report to start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._changed = asyncio.Condition()
        self._stop = asyncio.Event()
        async with serve(self._client, self.host, self.port, process_request=self._http, max_size=2**16, compression=None) as server:
            self.port = server.sockets[0].getsockname()[1] if server.sockets else self.port
            self._ready.set()
            await self._stop.wait()

    # -- frames ----------------------------------------------------------------------------------
    def publish(self, jpeg: bytes) -> None:
        """Called from the render thread: make ``jpeg`` the newest frame."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._set, jpeg)

    def _set(self, jpeg: bytes) -> None:
        self._frame = jpeg
        self._number += 1
        assert self._changed is not None
        asyncio.ensure_future(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _client(self, ws: ServerConnection) -> None:
        if ws.request is None or ws.request.path != "/ws":
            await ws.close(1008, "unknown path")
            return
        self.clients += 1
        sent = 0
        try:
            while True:
                async with self._changed:
                    await self._changed.wait_for(lambda: self._number != sent)
                sent = self._number
                await ws.send(self._frame)
                self.sent += 1
        except ConnectionClosed:
            pass
        finally:
            self.clients -= 1

    # -- plain HTTP --------------------------------------------------------------------------------
    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/ws":
            return None  # the WebSocket handshake goes on
        if path in ("/", "/index.html"):
            return _response(200, "OK", "text/html; charset=utf-8", self._page)
        if path == "/stats":
            body = json.dumps({"frames": self._number, "sent": self.sent, "clients": self.clients, **self.stats_extra}).encode()
            return _response(200, "OK", "application/json", body)
        if path == "/frame.jpg" and self._frame:
            return _response(200, "OK", "image/jpeg", self._frame)
        return _response(404, "Not Found", "text/plain", b"not found\n")


def _response(code: int, reason: str, kind: str, body: bytes) -> Response:
    headers = Headers([("Content-Type", kind), ("Content-Length", str(len(body))), ("Cache-Control", "no-store"),
                       ("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: ; img-src 'self' blob:; style-src 'unsafe-inline'; script-src 'unsafe-inline'")])
    return Response(code, reason, headers, body)
