"""Running the protocol servers: REST (uvicorn) and gRPC (grpc.aio) in worker processes.

Each worker builds its own data plane, loads and warms every model, and only then listens:
REST on a ``SO_REUSEPORT`` socket and gRPC on a ``SO_REUSEPORT`` port, so the kernel spreads
connections over the workers and a worker that is still loading receives none. On SIGTERM or
SIGINT the master forwards the signal; each worker stops accepting, drains in-flight requests
(uvicorn's graceful shutdown, then ``grpc`` with a grace period) and exits. Readiness turns
false as soon as the signal arrives, and with ``drain_delay_s`` the worker keeps serving that long
before it stops accepting, so that a load balancer polling readiness takes it out first.

Once its models are loaded, a worker moves everything it has allocated so far (models, modules,
the registry) out of the garbage collector's reach (:func:`gc.freeze`): a full collection then
walks only what requests allocate, not the ~200k objects of the loaded libraries, which would
stall every request in flight for tens of milliseconds (the p99 at concurrency 32).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import FrameType
from typing import Any

from mainspring.serving.dataplane import DataPlane

logger = logging.getLogger("mainspring.serving")

#: Seconds in-flight requests get to finish on shutdown.
DRAIN_SECONDS = 20.0
#: A worker holding more connections than another lets go of at most one this often.
SHED_EVERY_S = 0.05


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """Where and how to serve; ``grpc_port`` None serves REST only."""

    host: str = "127.0.0.1"
    port: int = 8080
    grpc_port: int | None = 8081
    workers: int = 1
    max_body_bytes: int = 64 * 1024 * 1024
    #: merge concurrent small requests into one predict call (up to this many rows; 1: off)
    max_batch_rows: int = 64
    #: seconds between checks for promotions, rollbacks and deployment changes (0: never)
    sync_seconds: float = 2.0
    #: seconds between SIGTERM (readiness turns false) and no longer accepting connections
    drain_delay_s: float = 0.0


def default_workers() -> int:
    """One worker per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket bound with ``SO_REUSEPORT`` (shared by the workers)."""
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections only for such sockets;
    # without it a response written in two parts waits for the client's delayed ACK (~40 ms)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


class ConnectionShare:
    """Keeps the workers' HTTP connections even.

    ``SO_REUSEPORT`` places each connection on a worker by a hash of its addresses and ports, and
    keep-alive clients hold their connections: wrk's 32 connections were split 9/23 or 22/10 in
    some runs, and the busier worker's clients waited about twice as long (p99 49 against 39 ms
    with an even split, on the same code). Each worker publishes how many connections it holds
    in a shared array. One holding at least two more than the worker holding fewest answers the
    request at hand with ``Connection: close`` (at most once every :data:`SHED_EVERY_S`), its
    client reconnects, and the hash places the new connection, on another worker half the time.
    The pause lets reconnecting clients land: shedding whenever a worker held more than the
    total's share counted the connections in transit as missing, and kept a third of them in
    transit.
    """

    def __init__(
        self,
        counts: Any,
        index: int,
        connections: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.counts = counts  # multiprocessing's shared array of ints, one per worker
        self.index = index
        self.connections = connections
        self.clock = clock
        self._shed_at = -SHED_EVERY_S

    def over(self) -> bool:
        """Whether this worker should let go of the connection at hand (publishing what it
        holds)."""
        mine = self.connections()
        self.counts[self.index] = mine
        if mine - min(self.counts) < 2:
            return False
        now = self.clock()
        if now - self._shed_at < SHED_EVERY_S:
            return False
        self._shed_at = now
        return True


class ProtocolServers:
    """REST and gRPC over one started plane, in the current event loop, until :meth:`stop`."""

    def __init__(
        self,
        plane: DataPlane,
        options: ServeOptions,
        shares: tuple[Any, int] | None = None,
    ) -> None:
        self.plane = plane
        self.options = options
        #: the workers' shared connection counts and this worker's index in them
        self.shares = shares
        self._uvicorn: Any = None

    async def serve(self) -> None:
        """Serve until SIGINT/SIGTERM (main thread) or :meth:`stop`, then drain and return."""
        import uvicorn

        from mainspring.serving.oip.rest import create_app

        options, grpc_server = self.options, None
        if options.grpc_port is not None:
            from mainspring.serving.oip.rpc import create_server

            grpc_server = create_server(
                self.plane,
                max_message_bytes=options.max_body_bytes,
                batcher=self.plane.batcher(max_batch_rows=options.max_batch_rows),
            )
            grpc_server.add_insecure_port(f"{options.host}:{options.grpc_port}")
            await grpc_server.start()

        async def stop_grpc() -> None:
            if grpc_server is not None:
                await grpc_server.stop(DRAIN_SECONDS)

        app = create_app(
            self.plane,
            max_body_bytes=options.max_body_bytes,
            batching=options.max_batch_rows > 1,
            max_batch_rows=options.max_batch_rows,
            on_shutdown=stop_grpc,
        )
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=int(DRAIN_SECONDS),
            # nothing here reads the client's address: no X-Forwarded-For middleware per request
            proxy_headers=False,
            server_header=False,
        )
        self._uvicorn = _draining_server(config, self.plane, options.drain_delay_s)
        if self.shares is not None:
            counts, index = self.shares
            state = self._uvicorn.server_state
            app.over_share = ConnectionShare(counts, index, lambda: len(state.connections)).over
        sock = reuseport_socket(options.host, options.port)
        syncing = asyncio.create_task(self._keep_in_sync()) if options.sync_seconds > 0 else None
        try:
            await self._uvicorn.serve(sockets=[sock])
        finally:
            if syncing is not None:
                syncing.cancel()
            sock.close()
            self.plane.close()

    async def _keep_in_sync(self) -> None:
        """Hot swap: load, warm and switch to new versions and weights while serving."""
        while True:
            await asyncio.sleep(self.options.sync_seconds)
            try:
                if await asyncio.to_thread(self.plane.sync):
                    logger.info("switched to the registry's current versions and deployments")
            except Exception:  # keep serving what is loaded; the next round retries
                logger.exception("could not pick up registry or deployment changes")

    @property
    def started(self) -> bool:
        """Whether both servers accept connections."""
        return self._uvicorn is not None and bool(self._uvicorn.started)

    def stop(self) -> None:
        """Ask the servers to stop accepting, drain and return (safe from any thread)."""
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True


def _draining_server(config: Any, plane: DataPlane, delay_s: float) -> Any:
    """A uvicorn server whose first SIGTERM/SIGINT turns readiness false at once and stops
    accepting ``delay_s`` later (a second signal stops at once)."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        exit_at: float | None = None

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            plane.drain()
            if self.exit_at is None and delay_s > 0 and not self.should_exit:
                self.exit_at = time.monotonic() + delay_s
                return
            super().handle_exit(sig, frame)

        async def on_tick(self, counter: int) -> bool:
            if self.exit_at is not None and time.monotonic() >= self.exit_at:
                self.should_exit = True
            return await super().on_tick(counter)

    return DrainingServer(config)


def settle_heap() -> None:
    """Collect once, then freeze what survives (the loaded models and libraries) out of later
    collections: full collections stay short while serving (see the module docstring)."""
    gc.collect()
    gc.freeze()


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop where it is installed (a dependency except on Windows), else on
    asyncio's own event loop. uvloop's loop costs a decision over HTTP about 10 % less CPU
    (1.00-1.07 against 1.10-1.21 ms with two workers at concurrency 32; benchmarks/RESULTS.md)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def run_worker(
    factory: Callable[[], DataPlane], options: ServeOptions, shares: tuple[Any, int] | None = None
) -> None:
    """One worker: build the plane, load and warm the models, then serve (``shares``: the
    workers' connection counts and this worker's index, see :class:`ConnectionShare`)."""
    plane = factory()
    plane.start()
    settle_heap()
    run_loop(ProtocolServers(plane, options, shares).serve())


def run(factory: Callable[[], DataPlane], options: ServeOptions) -> int:
    """Serve with ``options.workers`` processes (in this process when there is one)."""
    if options.workers <= 1:
        run_worker(factory, options)
        return 0
    context = multiprocessing.get_context("spawn")
    counts = context.Array("i", options.workers, lock=False)  # connections held, per worker
    workers = [
        context.Process(
            target=run_worker, args=(factory, options, (counts, i)), name=f"mainspring-serve-{i}"
        )
        for i in range(options.workers)
    ]
    for worker in workers:
        worker.start()

    def forward(signum: int, frame: FrameType | None) -> None:
        for worker in workers:
            if worker.pid is not None and worker.is_alive():
                os.kill(worker.pid, signal.SIGTERM)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for worker in workers:
            worker.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failed = [w for w in workers if w.exitcode not in (0, -signal.SIGTERM)]
    for w in failed:
        print(f"worker {w.name} exited with {w.exitcode}", file=sys.stderr)
    return 1 if failed else 0
