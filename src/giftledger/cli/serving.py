"""Serving from several processes: the parent accepts every connection and deals them to its workers in turn.

uvicorn's own workers share one listening socket, and each takes whichever connections it wakes up for first.
With a few long-lived connections (a group's tills, a proxy's pool, the benchmark's 8) one worker can end up
holding 6 of 8 while the other idles: measured here, 591 redemptions/s at a 6/2 split against 893 at 4/4.
So, as Node's cluster module does by default, the parent accepts and hands each connection to the next
worker over a Unix socket (SCM_RIGHTS): N connections are spread within one of each other. The parent does
nothing per request, only per connection.

A worker that dies is replaced (its connections are lost with it; the others carry on); one that cannot
start (it fails on its own within `START_S`) stops the whole server with an error, rather than being
restarted for ever. SIGTERM or SIGINT
stops accepting, asks every worker to finish the requests it holds (uvicorn's graceful shutdown, up to
`GRACE_S`), and waits. A worker whose parent is gone finishes its requests and exits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import selectors
import signal
import socket
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn

log = logging.getLogger("giftledger.serve")

GRACE_S = 20  # how long a worker may take to finish its requests when asked to stop
START_S = 10  # a worker that fails on its own this soon after starting would fail again: the server stops
_SPAWN = multiprocessing.get_context("spawn")


def options(host: str, port: int) -> dict[str, Any]:
    """uvicorn's settings for giftledger, one process or several."""
    return {
        "app": "giftledger.asgi:app",
        "host": host,
        "port": port,
        "log_level": "warning",
        "timeout_graceful_shutdown": GRACE_S,
        "proxy_headers": False,
    }


class _DealtServer(uvicorn.Server):
    """uvicorn's server with no listening socket of its own: it serves the connections its parent sends."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self._channel = channel
        self._opening: set[asyncio.Task[Any]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])
        self._channel.setblocking(False)
        asyncio.get_running_loop().add_reader(self._channel.fileno(), self._receive)

    def _protocol(self) -> asyncio.Protocol:
        protocol: asyncio.Protocol = self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )
        return protocol

    def _receive(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(self._channel, 1, 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                message, fds = b"", []
            if not message and not fds:  # the parent is gone: finish what we hold and stop
                loop.remove_reader(self._channel.fileno())
                self.should_exit = True
                return
            for fd in fds:
                connection = socket.socket(fileno=fd)
                if self.should_exit:
                    connection.close()
                    continue
                connection.setblocking(False)
                task = loop.create_task(loop.connect_accepted_socket(self._protocol, connection))
                self._opening.add(task)
                task.add_done_callback(self._opening.discard)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        with contextlib.suppress(ValueError, OSError):  # already removed, or the channel is closed
            asyncio.get_running_loop().remove_reader(self._channel.fileno())
        await super().shutdown(sockets=sockets)


def _work(settings: dict[str, Any], channel: socket.socket) -> None:
    """A worker process: serve the connections dealt to `channel` until told to stop."""
    _DealtServer(uvicorn.Config(**settings), channel).run()


@dataclass
class _Worker:
    process: BaseProcess
    channel: socket.socket  # the parent's end; the worker holds the other
    started: float  # time.monotonic() when it was started


class Dealer:
    """The parent: one listening socket, `count` workers, connections dealt round-robin."""

    def __init__(self, settings: dict[str, Any], count: int) -> None:
        self._settings = settings
        self._count = count
        self._workers: list[_Worker] = []
        self._next = 0
        self._stopping = False

    def run(self) -> None:
        listener = _listen(self._settings["host"], self._settings["port"])
        wake_read, wake_write = socket.socketpair()
        wake_read.setblocking(False)
        wake_write.setblocking(False)
        previous_wakeup = signal.set_wakeup_fd(wake_write.fileno())
        handlers = {s: signal.signal(s, self._stop_on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        selector = selectors.DefaultSelector()
        try:
            self._workers = [self._spawn() for _ in range(self._count)]
            selector.register(listener, selectors.EVENT_READ)
            selector.register(wake_read, selectors.EVENT_READ)
            while not self._stopping:
                for key, _ in selector.select(timeout=1.0):
                    if key.fileobj is listener:
                        self._accept(listener)
                    else:
                        _drain(wake_read)
                if not self._stopping:
                    self._replace_dead()
        finally:
            selector.close()
            listener.close()
            self._stop_workers()
            signal.set_wakeup_fd(previous_wakeup)
            for s, handler in handlers.items():
                signal.signal(s, handler)
            wake_read.close()
            wake_write.close()

    def _stop_on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _spawn(self) -> _Worker:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = _SPAWN.Process(target=_work, args=(self._settings, theirs), name="giftledger-worker")
        process.start()
        theirs.close()  # the worker has its own copy: when it exits, sending to it fails at once
        ours.setblocking(False)
        return _Worker(process, ours, time.monotonic())

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # out of file descriptors, a connection reset before accept, ...
                log.warning("accept failed: %s", error)
                return
            with connection:
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if not self._deal(connection):
                    log.error("no worker could take a connection; it was closed")

    def _deal(self, connection: socket.socket) -> bool:
        """Hand `connection` to the next worker that takes it; False if none did."""
        for _ in range(len(self._workers)):
            worker = self._workers[self._next]
            self._next = (self._next + 1) % len(self._workers)
            try:
                socket.send_fds(worker.channel, [b"c"], [connection.fileno()])
                return True
            except OSError:  # its channel is full (not keeping up) or closed (gone: replaced on the next tick)
                continue
        return False

    def _replace_dead(self) -> None:
        for index, worker in enumerate(self._workers):
            code = worker.process.exitcode
            if code is not None and code > 0 and time.monotonic() - worker.started < START_S:
                raise SystemExit(f"a worker could not start (exit code {code}); see the log above")
            if code is not None:
                log.error("worker %s exited with %s; starting another", worker.process.pid, code)
                worker.channel.close()
                self._workers[index] = self._spawn()

    def _stop_workers(self) -> None:
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.terminate()  # SIGTERM: uvicorn finishes the requests in hand, then exits
        for worker in self._workers:
            worker.process.join(GRACE_S + 5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.channel.close()
        self._workers = []


def _listen(host: str, port: int) -> socket.socket:
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    listener = socket.create_server((host, port), family=family, backlog=2048)
    listener.setblocking(False)
    return listener


def _drain(wake: socket.socket) -> None:
    try:
        while wake.recv(512):
            pass
    except (BlockingIOError, InterruptedError):
        pass


def serve(host: str, port: int, workers: int) -> None:
    """Serve giftledger on `host:port` from `workers` processes (one: uvicorn alone)."""
    settings = options(host, port)
    if workers <= 1:
        uvicorn.run(**settings)
        return
    Dealer(settings, workers).run()
