"""Headless Chromium driven over the DevTools protocol: for the page tests and the benchmark.

Starts Debian's ``chromium`` with no network helpers (no background networking, component
updates, sync or first-run), a throw-away profile, and remote debugging on a port it
picks itself (read back from ``DevToolsActivePort``); then talks CDP over a WebSocket
(the ``websockets`` package) to evaluate JavaScript in the page.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class HeadlessChromium:
    """``with HeadlessChromium(url) as page: page.evaluate("1 + 1")``."""

    def __init__(self, url: str, binary: str | None = None, timeout: float = 30.0) -> None:
        self.url = url
        self.binary = binary or find_chromium()
        if not self.binary:
            raise FileNotFoundError("chromium not found (apt-get install chromium)")
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="lc-chromium-", ignore_cleanup_errors=True)  # its helpers may still write
        self.process: subprocess.Popen | None = None
        self._ws = None
        self._id = 0

    def __enter__(self) -> "HeadlessChromium":
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        from websockets.sync.client import connect

        profile = Path(self._profile.name)
        self.process = subprocess.Popen(
            [self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-default-apps", "--mute-audio", "--disable-features=Translate,MediaRouter",
             "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
             f"--user-data-dir={profile}", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
             "--window-size=800,800", self.url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # Chromium keeps its singleton socket in a folder of its own under $TMPDIR and
            # removes it only on a clean exit, not on terminate(): inside the profile, it
            # goes when the profile does instead of staying in /tmp.
            env=dict(os.environ, TMPDIR=str(profile)),
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with code {self.process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        while True:
            targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5).read())
            pages = [t for t in targets if t.get("type") == "page" and "webSocketDebuggerUrl" in t]
            if pages:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("chromium shows no page")
            time.sleep(0.05)
        self._connection = connect(pages[0]["webSocketDebuggerUrl"], max_size=2**24, open_timeout=self.timeout)
        self._ws = self._connection.__enter__()

    def command(self, method: str, **params: Any) -> dict:
        assert self._ws is not None
        self._id += 1
        my_id = self._id
        self._ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            message = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == my_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.command("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"javascript error: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 20.0, interval: float = 0.1) -> Any:
        """Poll a JavaScript expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except RuntimeError:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"page never satisfied: {expression}")
            time.sleep(interval)

    def close(self) -> None:
        if self._ws is not None:
            try:
                self._connection.__exit__(None, None, None)
            except Exception:
                pass
            self._ws = None
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._profile.cleanup()
