"""Serving with uvicorn, and stopping without dropping a request: the drain.

On SIGTERM (or SIGINT) ``capex serve``:

1. stops taking new connections: the kernel stops queueing them at once (a socket filter
   that drops new SYNs, so that a client is refused, not reset), what it had already queued
   is still accepted for a moment, then the listener closes;
2. answers every request that arrives on an open connection, the kept-alive ones too, with
   ``Connection: close``, and closes each connection right after that answer. A connection
   idle when the drain began stays open for the ordinary keep-alive timeout, since its
   client may already be sending; ``/readyz`` answers 503 from the first moment;
3. exits (status 0) when the last connection closed, or when the grace period is over:
   then the requests still running are cancelled and their connections cut.

Uvicorn alone closes an idle kept-alive connection as soon as it stops, while the client may
already be sending its next request on it: that request is reset without an answer.

It imports nothing of capex (the app is named by its import string), so that a worker
process can import it to unpickle its configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from uvicorn import Config, Server
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors.multiprocess import Multiprocess

if TYPE_CHECKING:
    from types import FrameType

    from uvicorn.server import ServerState

logger = logging.getLogger("uvicorn.error")

# The ASGI lifespan state (``scope["state"]`` of every request) holds a threading.Event under
# this name, set when the drain begins.
DRAINING = "capex.draining"
# What the kernel queued before it stopped queueing is accepted within this long.
ACCEPT_QUEUED_SECONDS = 0.1
# Past the grace period, a worker has this long to run the app's own shutdown.
EXIT_MARGIN_SECONDS = 10.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Listener(Protocol):
    def fileno(self) -> int: ...


def begin_drain(state: dict[str, Any]) -> threading.Event:
    """Set (once) and return the drain event in the lifespan ``state`` of this process."""
    event: threading.Event = state.setdefault(DRAINING, threading.Event())
    if not event.is_set():
        event.set()
        logger.info("Draining [%d]: answering with Connection: close, then exiting", os.getpid())
    return event


def draining(state: Mapping[str, Any]) -> bool:
    """Whether the drain has begun, from a request's ``scope["state"]``."""
    event = state.get(DRAINING)
    return isinstance(event, threading.Event) and event.is_set()


# -- no new connections ----------------------------------------------------------------------

# A classic BPF program of one instruction, "return 0": the socket takes no packet, so a
# listening socket drops each new SYN. The client's SYN is retransmitted (after about 1 s)
# and refused once the listener is closed, or taken by the next server on the port.
_SO_ATTACH_FILTER = 26  # Linux, <asm-generic/socket.h>
_BPF_RET_K = 0x06
_DROP_ALL = ctypes.create_string_buffer(struct.pack("HBBI", _BPF_RET_K, 0, 0, 0))
_DROP_ALL_PROGRAM = struct.pack("HP", 1, ctypes.addressof(_DROP_ALL))


def stop_queueing(listeners: Iterable[_Listener]) -> None:
    """Make the kernel queue no new connection on ``listeners``, keeping those it queued.

    Closing a listening socket resets the connections the kernel accepted but the server
    did not yet: their requests would go unanswered. So first no new ones (Linux; elsewhere
    only the close), then accept what is queued, then close.
    """
    if not sys.platform.startswith("linux"):
        return
    for listener in listeners:
        # A duplicate of the descriptor: the filter belongs to the socket, and whatever
        # wraps the listener (asyncio's, uvloop's) need not offer setsockopt.
        with (
            contextlib.suppress(OSError),
            socket.socket(fileno=os.dup(listener.fileno())) as duplicate,
        ):
            duplicate.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, _DROP_ALL_PROGRAM)


# -- connections -----------------------------------------------------------------------------


class DrainingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, which during the drain answers before it hangs up."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # One event per process: the app state is the lifespan's, shared by every connection
        # and copied (shallowly) into every request's scope.
        self.draining: threading.Event = app_state.setdefault(DRAINING, threading.Event())

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.draining.is_set():
            self._close_when_idle()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self.draining.is_set() and self.cycle is not None:
            # The answer says ``Connection: close`` and the connection closes after it.
            self.cycle.keep_alive = False

    def shutdown(self) -> None:
        """The drain begins (the server calls this on every open connection)."""
        begin_drain(self.app_state)
        if self.cycle is None or self.cycle.response_complete:
            # Idle, but the client may be sending a request right now: answer it if it
            # comes, and hang up only after the keep-alive timeout, as always.
            self._close_when_idle()
        elif not self.cycle.response_started:
            self.cycle.keep_alive = False
        # An answer already started without ``Connection: close`` keeps its connection open
        # for the next request, which is answered with it.

    def _close_when_idle(self) -> None:
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )


# -- one process -----------------------------------------------------------------------------


class DrainingServer(Server):
    """A uvicorn server that owns its listener (one process): the drain, and exit status 0."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        begin_drain(self.lifespan.state)
        for connection in list(self.server_state.connections):
            connection.shutdown()
        stop_queueing(_listeners(self.servers))
        await asyncio.sleep(ACCEPT_QUEUED_SECONDS)
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # As uvicorn's, but a drained SIGTERM is a clean exit: uvicorn raises it again once
        # the server stopped, and the process would end killed by it. SIGINT is raised again
        # (KeyboardInterrupt), as there.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)
        if signal.SIGINT in self._captured_signals:
            signal.raise_signal(signal.SIGINT)


def _listeners(servers: Iterable[asyncio.AbstractServer]) -> list[_Listener]:
    found: list[_Listener] = []
    for server in servers:
        found.extend(getattr(server, "sockets", None) or ())
    return found


# -- several processes -----------------------------------------------------------------------


class DrainingMultiprocess(Multiprocess):
    """uvicorn's supervisor of worker processes sharing one listener, which it owns.

    On SIGTERM it stops the kernel queueing new connections at once (not on its next tick),
    gives the workers a moment to accept what is queued, then sends each SIGTERM (they
    drain, with :class:`DrainingHttpToolsProtocol`) and waits for them, at most the grace
    period and a margin. A worker told alone to stop (SIGHUP, SIGTTOU) leaves the listener
    to the others.
    """

    def __init__(self, config: Config, sockets: list[socket.socket], grace_seconds: float):
        super().__init__(config, sockets)
        self.grace_seconds = grace_seconds
        self.stopping_since: float | None = None
        for sig in _STOP_SIGNALS:
            signal.signal(sig, self._stop)

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        if self.stopping_since is None:
            stop_queueing(self.sockets)
            self.stopping_since = time.monotonic()
        self.signal_queue.append(sig)

    def terminate_all(self) -> None:
        if self.stopping_since is not None:
            time.sleep(max(0.0, self.stopping_since + ACCEPT_QUEUED_SECONDS - time.monotonic()))
        super().terminate_all()

    def join_all(self) -> None:
        deadline = time.monotonic() + self.grace_seconds + EXIT_MARGIN_SECONDS
        for process in self.processes:
            process.process.join(max(0.0, deadline - time.monotonic()))
            if process.process.is_alive():
                logger.error("Child process [%s] outlived the grace period; killed", process.pid)
                process.kill()
                process.join()


# -- the entry point -------------------------------------------------------------------------


def serve(app: str, *, workers: int, grace_seconds: int, **options: Any) -> None:
    """Serve the ASGI app factory ``app`` until SIGTERM or SIGINT, then drain and return.

    ``grace_seconds`` bounds the drain; ``options`` are uvicorn's (host, port, log_level...).
    """
    config = Config(
        app,
        factory=True,
        workers=workers,
        http=DrainingHttpToolsProtocol,
        timeout_graceful_shutdown=grace_seconds,
        **options,
    )
    try:
        if config.workers > 1:
            DrainingMultiprocess(config, [config.bind_socket()], grace_seconds).run()
            return
        server = DrainingServer(config)
        server.run()
    except KeyboardInterrupt:
        return
    if not server.started:
        sys.exit(STARTUP_FAILURE)
