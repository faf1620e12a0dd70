"""grpcio's own server as a session server: the alternative to the default ``H2Server``.

It answers one gRPC message per completion-queue round trip, so large context uploads are
slower (see bench/RESULTS.md), but it is grpcio's complete implementation; pass
``server_factory=GrpcioServer`` to a Session (or set ``transport.DEFAULT_SERVER_FACTORY``).
"""

from __future__ import annotations

import threading
from concurrent import futures

import grpc

from envd_jupyter.buildkit._session import HEALTH_CHECK_PATH
from envd_jupyter.buildkit._session.h2server import MAX_STREAMS
from envd_jupyter.buildkit._transport import MAX_MESSAGE


class GrpcioServer:
    """grpc.Server with its own thread pool, whose ``stop`` also waits for that pool (as H2Server's does).

    Every call holds a worker for its whole length, so long session streams could take all
    ``max_workers``; Health runs on a pool of its own, so the daemon's checks are answered whatever
    the workers do (a failed check ends the session). Streams are capped per connection as H2Server's.
    """

    def __init__(self, max_workers: int = 16):
        self.max_workers = max_workers
        self._executor = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="envd-grpcio")
        self._health_executor = futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="envd-grpcio-health")
        self._server = grpc.server(self._executor, options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.max_concurrent_streams", MAX_STREAMS),
        ])

    def add_generic_rpc_handlers(self, handlers) -> None:
        self._server.add_generic_rpc_handlers(tuple(
            _OwnPool(_TypeOnlyErrors(handler), {HEALTH_CHECK_PATH: self._health_executor}) for handler in handlers))

    def add_insecure_port(self, address: str) -> int:
        return self._server.add_insecure_port(address)

    def start(self) -> None:
        self._server.start()

    def stop(self, grace: float | None = None) -> threading.Event:
        """Stop serving; the returned event is set once the server and its handler threads have ended."""
        stopped = self._server.stop(grace)
        done = threading.Event()

        def finish() -> None:
            stopped.wait()
            self._executor.shutdown(wait=True, cancel_futures=True)  # handlers see their context end
            self._health_executor.shutdown(wait=True, cancel_futures=True)
            done.set()

        threading.Thread(target=finish, name="envd-grpcio-stop", daemon=True).start()
        return done


_BEHAVIOURS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


class _OwnPool(grpc.GenericRpcHandler):
    """Runs the methods in ``pools`` on their own executor (grpcio's ``experimental_thread_pool``)."""

    def __init__(self, inner: grpc.GenericRpcHandler, pools: dict[str, futures.ThreadPoolExecutor]):
        self._inner, self._pools = inner, pools

    def service(self, handler_call_details):
        method = self._inner.service(handler_call_details)
        pool = self._pools.get(handler_call_details.method)
        if method is None or pool is None:
            return method
        return method._replace(**{kind: _on_pool(getattr(method, kind), pool)
                                  for kind in _BEHAVIOURS if getattr(method, kind) is not None})


def _on_pool(behavior, pool: futures.ThreadPoolExecutor):
    def run(request, context):
        return behavior(request, context)
    run.experimental_thread_pool = pool
    return run


class _TypeOnlyErrors(grpc.GenericRpcHandler):
    """An unexpected exception reaches the daemon as its type only (grpcio would send its text, as
    H2Server did): the text may hold anything, a path or a value, that the daemon must not see."""

    def __init__(self, inner: grpc.GenericRpcHandler):
        self._inner = inner

    def service(self, handler_call_details):
        method = self._inner.service(handler_call_details)
        if method is None:
            return None
        changes = {kind: _guarded(getattr(method, kind), kind.endswith("_stream"))
                   for kind in _BEHAVIOURS if getattr(method, kind) is not None}
        return method._replace(**changes)


def _guarded(behavior, streams_responses: bool):
    if streams_responses:
        def call_streaming(request, context):
            try:
                yield from behavior(request, context)
            except Exception as exc:
                _abort_with_type(context, exc)
        return call_streaming

    def call(request, context):
        try:
            return behavior(request, context)
        except Exception as exc:
            _abort_with_type(context, exc)
    return call


def _abort_with_type(context, exc: Exception) -> None:
    if context.code() is not None:  # the handler aborted with its own status and details: they stand
        raise exc
    context.abort(grpc.StatusCode.UNKNOWN, type(exc).__name__)
