"""`vigie display`: the web server between the daemon's alert bus and the driver's screen.

One asyncio process, separate from the daemon: a single ZeroMQ SUB socket, however many browsers are open, so the
daemon's publisher never sees more than one subscriber and never waits for a screen. Every message is folded into
`DisplayState` and the whole picture is pushed to each page as a Server-Sent Event: one-way by design (the page has
nothing to send, so it cannot control anything), and the browser reconnects by itself. Each page has its own small
queue that keeps the newest pictures: a stuck browser loses old pictures, it never slows another one down.

aiohttp serves the page, its files and the event stream from one event loop that also awaits the ZeroMQ socket
(pyzmq's asyncio sockets); everything the page needs comes from here, nothing from the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.asyncio
from aiohttp import web
from zmq.utils.monitor import parse_monitor_message

from core.config_base import is_loopback
from edge.bus import TOPIC_ALERT, TOPIC_HEALTH
from edge.display.config import DisplayConfig, Listen
from edge.display.state import AlertMsg, DisplaySettings, DisplayState, Refusal, Refused, parse

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
TICK_S = 0.5  # the picture is pushed at least this often: the page's own watchdog expects it (3 s)
QUEUE_DEPTH = 4  # pictures waiting per page; each is the whole state, so only the newest matters
MAX_PAGES = 200  # open event streams; past this a page is refused (503) rather than the bridge slowed
HEADERS = {
    # Everything from this origin: no CDN, no inline script, no framing by another site.
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class BridgeOptions:
    endpoint: str  # the daemon's alert bus, to connect to
    listen: Listen
    allow_remote: bool
    settings: DisplaySettings
    display: DisplayConfig  # the day/night clock


class _Page:
    """One open event stream: a short queue of pictures, newest kept."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_DEPTH)

    def offer(self, data: bytes | None) -> None:
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(data)


class Bridge:
    def __init__(self, options: BridgeOptions):
        self.options = options
        self.state = DisplayState(options.settings)
        self.connected = False
        self.pages: set[_Page] = set()
        self._seq = 0

    def picture(self, sent_ts: float | None = None) -> bytes:
        self._seq += 1
        snapshot = self.state.snapshot(time.monotonic(), self.connected, sent_ts)
        theme = self.options.display.theme_at(time.time())
        picture = snapshot.to_json(self._seq, theme.value, round(time.time(), 6))
        return json.dumps(picture, separators=(",", ":")).encode()

    def push(self, sent_ts: float | None = None) -> None:
        data = self.picture(sent_ts)
        for page in self.pages:
            page.offer(data)

    async def listen_bus(self, sock: zmq.asyncio.Socket) -> None:
        while True:
            frames = await sock.recv_multipart()
            self.connected = True  # a message is proof enough, whatever the monitor said last
            try:
                msg = parse(frames, self.options.settings)
            except Exception:  # a message this code did not foresee must not stop the screen
                log.exception("message from the bus could not be read; ignored")
                msg = Refused(Refusal.MALFORMED)
            self.state.receive(msg, time.monotonic())
            self.push(msg.sent_ts if isinstance(msg, AlertMsg) else None)

    async def watch_link(self, monitor: zmq.asyncio.Socket) -> None:
        """TCP connects and disconnects of the SUB socket: a dead daemon is seen at once, not after 3 s of silence."""
        while True:
            event = parse_monitor_message(await monitor.recv_multipart())["event"]
            if event == zmq.EVENT_CONNECTED:
                self.connected = True
            elif event == zmq.EVENT_DISCONNECTED:
                self.connected = False
                self.state.forget()
            self.push()

    async def tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.push()

    async def events(self, request: web.Request) -> web.StreamResponse:
        if len(self.pages) >= MAX_PAGES:
            raise web.HTTPServiceUnavailable(text="too many open displays\n")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        page = _Page()
        self.pages.add(page)
        try:
            # The browser retries after 1 s if the stream breaks; the page starts from the present picture.
            await response.write(b"retry: 1000\n\ndata: " + self.picture() + b"\n\n")
            while (data := await page.queue.get()) is not None:
                await response.write(b"data: " + data + b"\n\n")
        except ConnectionError:
            pass  # the page went away
        finally:
            self.pages.discard(page)
        return response

    async def snapshot(self, _: web.Request) -> web.Response:
        return web.Response(body=self.picture(), content_type="application/json")

    async def close_pages(self, _: web.Application) -> None:
        for page in list(self.pages):
            page.offer(None)


async def index(_: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


def host_check(allow_remote: bool) -> Callable:
    """On loopback, only requests addressed to a loopback name: a web page elsewhere cannot rebind a name to us."""

    @web.middleware
    async def check(request: web.Request, handler: Callable) -> web.StreamResponse:
        if not allow_remote and not is_loopback(request.url.host or ""):
            raise web.HTTPMisdirectedRequest(text="this display answers on loopback only\n")
        return await handler(request)

    return check


async def security_headers(_: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(HEADERS)


def build_app(bridge: Bridge) -> web.Application:
    app = web.Application(middlewares=[host_check(bridge.options.allow_remote)])
    app.router.add_get("/", index)
    app.router.add_get("/events", bridge.events)
    app.router.add_get("/state", bridge.snapshot)
    app.router.add_static("/static/", STATIC, follow_symlinks=False)
    app.on_response_prepare.append(security_headers)
    app.on_shutdown.append(bridge.close_pages)
    return app


async def serve(options: BridgeOptions, echo: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM. OSError if the address cannot be listened on."""
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RECONNECT_IVL, 200)  # a restarted daemon is found again within a fraction of a second
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
    for topic in (TOPIC_ALERT, TOPIC_HEALTH):
        sock.setsockopt(zmq.SUBSCRIBE, topic)
    monitor = sock.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
    sock.connect(options.endpoint)
    bridge = Bridge(options)
    runner = web.AppRunner(build_app(bridge), handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks: list[asyncio.Task] = []
    try:
        await web.TCPSite(runner, options.listen.bind_host, options.listen.port).start()
        echo(f"vigie display: {options.listen.url} (bus {options.settings.bus_id}, alerts from {options.endpoint})")
        tasks += [asyncio.create_task(c) for c in (bridge.listen_bus(sock), bridge.watch_link(monitor), bridge.tick())]
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
        tasks.append(stopping)
        for task in done - {stopping}:
            task.result()  # a loop that ended raised: fail loudly (exit 1) rather than show a frozen screen
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()
        sock.disable_monitor()
        monitor.close(0)
        sock.close(0)
        ctx.term()


def run(options: BridgeOptions, echo: Callable[[str], None]) -> None:
    asyncio.run(serve(options, echo))
