"""A small gRPC-over-h2c server for BuildKit sessions, built on the ``h2`` state machine.

grpcio's Python server sends one message per round trip through its completion queue
(~100 µs each here); a context upload is ~3 messages per file, so 20,000 files cost seconds.
This server packs many gRPC messages into each HTTP/2 DATA frame and each socket write, and
runs the same ``grpc`` method handlers (``add_generic_rpc_handlers``), so session services
work unchanged on either server. It implements what BuildKit's daemon uses: unary and
bidirectional-streaming calls, metadata, flow control, status trailers, pings.

``h2`` runs the connection (headers, settings, pings, window updates, inbound frames), but our
outbound DATA frames are framed here, straight from a queue of message views: a context upload is
~13,000 frames of 16 KiB (grpc-go's frame size limit), and h2's per-frame objects plus the copies
through a shared bytearray took a third of our upload CPU. h2's outbound windows are debited for them.
"""

from __future__ import annotations

import collections
import selectors
import socket
import struct
import threading
import urllib.parse
from concurrent import futures

import grpc
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from envd_jupyter.buildkit._pump import receive
from envd_jupyter.buildkit._session import HEALTH_CHECK_PATH

READ_CHUNK = 1 << 20
WINDOW = 1 << 24  # our receive window: large, so the daemon's exports stream without stalls
MAX_MESSAGE = 64 * 1024 * 1024  # as the grpcio path (transport.MAX_MESSAGE): a larger declared message is refused
MAX_STREAMS = 100  # concurrent streams the daemon may open (BuildKit uses a handful per session)
OUT_LIMIT = 8 << 20  # bytes a handler may queue ahead of the socket before it waits
ACK_BACKLOG = 4 << 20  # unconsumed request bytes up to which the I/O thread grants window at once
_END = object()
_DATA_FRAME = struct.Struct(">IBI")  # length << 8 | type DATA (0), flags, stream id (RFC 9113 §4.1)


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(details)
        self.code, self.details = code, details


class _Stream:
    def __init__(self, conn: "_Connection", stream_id: int, path: str, metadata: tuple):
        self.conn, self.id, self.path, self.metadata = conn, stream_id, path, metadata
        self.inbound: collections.deque = collections.deque()
        self.backlog = 0  # bytes of parsed messages the handler has not taken yet
        self.buffer = bytearray()
        self.cond = threading.Condition()
        self.active = True
        self.outbound: collections.deque = collections.deque()  # length prefixes and payloads, in order
        self.outbound_bytes = 0
        self.trailers: list | None = None
        self.headers_sent = False
        self.inline = False  # answered in the I/O thread once the request is complete (Health)
        self.refused = False  # sent a message past MAX_MESSAGE: the rest of its data is dropped

    # -- called from the I/O thread --
    def feed(self, data: bytes, flow: int) -> None:
        """Queue the complete messages in ``data``; grant its window now unless the handler lags.

        Granting on receipt spares a hand-off to the handler thread and back per DATA frame
        (20,000 frames in a context upload); past ACK_BACKLOG the grant waits until the handler
        has consumed up to this point, so a slow consumer (e.g. an export to disk) pushes back.
        """
        if self.refused:
            self.conn.ack(self.id, flow)
            return
        self.buffer += data
        messages = []
        while len(self.buffer) >= 5:
            length = struct.unpack(">I", self.buffer[1:5])[0]
            if length > MAX_MESSAGE:  # refused before buffering it, as grpcio does
                self.refuse(f"grpc: received message larger than max ({length} vs. {MAX_MESSAGE})")
                self.conn.ack(self.id, flow)
                return
            if len(self.buffer) < 5 + length:
                break
            messages.append(bytes(self.buffer[5 : 5 + length]))
            del self.buffer[: 5 + length]
        with self.cond:
            self.inbound.extend(messages)
            self.backlog += sum(map(len, messages))
            deferred = self.backlog > ACK_BACKLOG
            if deferred:
                self.inbound.append(("ack", flow))
            self.cond.notify_all()
        if not deferred:
            self.conn.ack(self.id, flow)

    def refuse(self, details: str) -> None:
        """End the call with RESOURCE_EXHAUSTED and drop what it sends from now on."""
        self.refused = True
        self.buffer = bytearray()
        self.finish(grpc.StatusCode.RESOURCE_EXHAUSTED, details)
        self.close_inbound(reset=True)

    def close_inbound(self, reset: bool = False) -> None:
        with self.cond:
            if reset:
                self.active = False
            self.inbound.append(_END)
            self.cond.notify_all()

    # -- called from the handler thread --
    def requests(self, deserialize):
        """The call's messages; a stream the daemon reset (or a dead connection) raises, never just ends."""
        while True:
            with self.cond:
                while not self.inbound:
                    self.cond.wait(1.0)
                    if not self.conn.alive:
                        raise _Abort(grpc.StatusCode.CANCELLED, "the session connection closed")
                item = self.inbound.popleft()
                if isinstance(item, bytes):
                    self.backlog -= len(item)
            if item is _END:
                if not self.active:
                    raise _Abort(grpc.StatusCode.CANCELLED, "stream reset by the daemon")
                return
            if isinstance(item, tuple):
                self.conn.call(lambda n=item[1]: self.conn.ack(self.id, n))
                continue
            yield deserialize(item) if deserialize else item

    def send(self, payload: bytes) -> None:
        with self.conn.out_cond:
            while self.outbound_bytes > OUT_LIMIT and self.active and self.conn.alive:
                self.conn.out_cond.wait(1.0)
            if not (self.active and self.conn.alive):
                raise _Abort(grpc.StatusCode.CANCELLED, "stream closed by the daemon")
            self.outbound.append(struct.pack(">BI", 0, len(payload)))
            if payload:  # an empty message is its prefix alone: nothing zero-length sits in the queue
                self.outbound.append(payload)
            self.outbound_bytes += 5 + len(payload)
        self.conn.wake()

    def take(self, size: int) -> list:
        """Pop the next ``size`` queued bytes as views, splitting a payload without copying it."""
        pieces = []
        while size:
            head = self.outbound[0]
            if len(head) <= size:
                pieces.append(self.outbound.popleft())
                size -= len(head)
            else:
                view = memoryview(head)
                pieces.append(view[:size])
                self.outbound[0] = view[size:]
                size = 0
        return pieces

    def finish(self, code: grpc.StatusCode, details: str = "") -> None:
        trailers = [("grpc-status", str(code.value[0]))]
        if details:
            trailers.append(("grpc-message", urllib.parse.quote(details, safe=" !\"#$&'()*+,-./:;<=>?@[]^_`{|}~")))
        with self.conn.out_cond:
            if self.trailers is not None or not self.active:
                return  # the first end stands (a refused message ends the call before its handler does)
            self.trailers = trailers
        self.conn.wake()


class _Context:
    """The slice of grpc.ServicerContext that session services use."""

    def __init__(self, stream: _Stream):
        self._stream = stream

    def invocation_metadata(self):
        return self._stream.metadata

    def is_active(self) -> bool:
        return self._stream.active and self._stream.conn.alive

    def abort(self, code, details):
        raise _Abort(code, details)

    def peer(self) -> str:
        return "session"


class _Connection:
    def __init__(self, sock: socket.socket, server: "H2Server", received: bytes = b""):
        self.sock, self.server, self._received = sock, server, received
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.streams: dict[int, _Stream] = {}
        self.alive = True
        self.out_cond = threading.Condition()
        self._calls: collections.deque = collections.deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._woken = False

    def wake(self) -> None:
        if not self._woken:
            self._woken = True
            try:
                self._wake_w.send(b"x")
            except OSError:
                pass

    def call(self, action) -> None:
        self._calls.append(action)
        self.wake()

    def ack(self, stream_id: int, flow: int) -> None:
        if flow:
            try:
                self.h2.acknowledge_received_data(flow, stream_id)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                pass

    def run(self) -> None:
        # Set before the preface so the first SETTINGS frame carries them (update() would only stage them).
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: WINDOW,
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 1 << 20,
        })
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(WINDOW)
        selector = selectors.DefaultSelector()
        self.sock.setblocking(True)
        selector.register(self.sock, selectors.EVENT_READ, "sock")
        selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            if self._received:  # bytes read past the HTTP upgrade reply: the client preface
                self._handle(self.h2.receive_data(self._received))
            self._flush(self._pump_out())
            while self.alive and not self.server.stopping:
                for key, _ in selector.select(0.5):
                    if key.data == "wake":
                        self._wake_r.recv(4096)
                        self._woken = False
                    else:
                        data = receive(self.sock, READ_CHUNK)  # a TLS socket's decrypted rest included
                        if not data:
                            self.alive = False
                            break
                        self._handle(self.h2.receive_data(data))
                while self._calls:
                    self._calls.popleft()()
                self._flush(self._pump_out())
        except (OSError, h2.exceptions.ProtocolError):
            pass
        finally:
            self.alive = False
            for stream in self.streams.values():
                stream.close_inbound(reset=True)
            with self.out_cond:
                self.out_cond.notify_all()
            selector.close()
            for sock in (self.sock, self._wake_r, self._wake_w):
                sock.close()

    def _handle(self, events) -> None:
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                headers = list(event.headers)
                path = dict(headers).get(":path", "")
                metadata = tuple((k, v) for k, v in headers if not k.startswith(":") and k not in ("te", "content-type"))
                stream = _Stream(self, event.stream_id, path, metadata)
                self.streams[event.stream_id] = stream
                if path in self.server.inline_paths:
                    stream.inline = True  # answered when its request is complete, whatever the workers do
                    continue
                try:
                    self.server.executor.submit(self.server.dispatch, stream)
                except RuntimeError:  # the server is stopping: a call that arrives now is not served
                    self.alive = False
                    return
            elif isinstance(event, h2.events.DataReceived):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.feed(event.data, event.flow_controlled_length)
                else:
                    self.ack(event.stream_id, event.flow_controlled_length)
            elif isinstance(event, h2.events.StreamEnded):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.close_inbound()
                    if stream.inline:
                        self.server.dispatch(stream)
            elif isinstance(event, h2.events.StreamReset):
                stream = self.streams.pop(event.stream_id, None)
                if stream is not None:
                    stream.close_inbound(reset=True)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.alive = False
        with self.out_cond:
            self.out_cond.notify_all()

    def _pump_out(self) -> list:
        """Frame queued messages as far as flow control allows; returns the bytes to write, in order."""
        out = [self.h2.data_to_send()]
        with self.out_cond:
            for stream in list(self.streams.values()):
                if not stream.headers_sent and (stream.outbound or stream.trailers is not None):
                    self.h2.send_headers(stream.id, [(":status", "200"), ("content-type", "application/grpc")])
                    stream.headers_sent = True
                    out.append(self.h2.data_to_send())
                if stream.outbound:
                    out += self._data_frames(stream)
                if not stream.outbound and stream.trailers is not None:
                    self.h2.send_headers(stream.id, stream.trailers, end_stream=True)
                    if stream.refused:  # stop the daemon sending the rest, as grpc servers do
                        try:
                            self.h2.reset_stream(stream.id, h2.errors.ErrorCodes.NO_ERROR)
                        except h2.exceptions.ProtocolError:  # it had ended its side already
                            pass
                    out.append(self.h2.data_to_send())
                    stream.trailers, stream.active = None, False
                    del self.streams[stream.id]
            self.out_cond.notify_all()
        return out

    def _data_frames(self, stream: _Stream) -> list:
        """DATA frames for the stream's queue, debiting h2's windows as its send_data would."""
        window = min(self.h2.local_flow_control_window(stream.id), stream.outbound_bytes)
        if window <= 0:
            return []
        frame_size = self.h2.max_outbound_frame_size
        out = []
        for start in range(0, window, frame_size):
            size = min(frame_size, window - start)
            out.append(_DATA_FRAME.pack(size << 8, 0, stream.id))
            out += stream.take(size)
        stream.outbound_bytes -= window
        self.h2.outbound_flow_control_window -= window
        self.h2.streams[stream.id].outbound_flow_control_window -= window
        return out

    def _flush(self, pieces: list) -> None:
        data = b"".join(pieces)  # one write: a copy costs less than a syscall per frame
        if data:
            self.sock.sendall(data)


class H2Server:
    """grpc.Server look-alike (the parts Session uses) serving one or more h2c connections.

    Calls run on ``max_workers`` threads; the methods in ``inline_paths`` (cheap, never blocking: the
    Health check) are answered in the connection's I/O thread, so however many long streams hold
    the workers, the daemon's health checks are answered and it keeps the session.
    """

    def __init__(self, max_workers: int = 16, inline_paths: frozenset[str] = frozenset({HEALTH_CHECK_PATH})):
        self.inline_paths = inline_paths
        self.max_workers = max_workers
        self.executor = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="envd-h2")
        self.handlers: list = []
        self.stopping = False
        self._listeners: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._connections: list[_Connection] = []
        self._wake_r, self._wake_w = socket.socketpair()  # stop() wakes the accept loops through it

    def add_generic_rpc_handlers(self, handlers) -> None:
        self.handlers.extend(handlers)

    def add_insecure_port(self, address: str) -> int:
        path = address.removeprefix("unix:").removeprefix("//")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(8)
        self._listeners.append(listener)
        return 0

    def start(self) -> None:
        for listener in self._listeners:
            self._spawn(self._accept, listener)

    def serve_socket(self, sock: socket.socket, *, received: bytes = b"") -> None:
        """Serve an already connected socket (e.g. a hijacked dockerd /session stream).

        ``received``: bytes already read from it (what followed the upgrade reply).
        """
        connection = _Connection(sock, self, received)
        self._connections.append(connection)
        self._spawn(connection.run)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, name="envd-h2-io", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self, listener: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self.stopping:
                ready = {key.fileobj for key, _ in selector.select()}
                if listener in ready and not self.stopping:
                    try:
                        sock, _ = listener.accept()
                    except OSError:
                        return
                    self.serve_socket(sock)

    def _method(self, path: str):
        details = _CallDetails(path)
        for handler in self.handlers:
            method = handler.service(details)
            if method is not None:
                return method
        return None

    def dispatch(self, stream: _Stream) -> None:
        method = self._method(stream.path)
        if method is None:
            stream.finish(grpc.StatusCode.UNIMPLEMENTED, f"method {stream.path} not served by this session")
            return
        context = _Context(stream)
        serialize = method.response_serializer or (lambda value: value)
        try:
            requests = stream.requests(method.request_deserializer)
            if method.unary_unary:
                stream.send(serialize(method.unary_unary(next(iter(requests)), context)))
            elif method.stream_stream:
                for response in method.stream_stream(requests, context):
                    stream.send(serialize(response))
            elif method.unary_stream:
                for response in method.unary_stream(next(iter(requests)), context):
                    stream.send(serialize(response))
            else:
                stream.send(serialize(method.stream_unary(requests, context)))
            stream.finish(grpc.StatusCode.OK)
        except _Abort as exc:
            stream.finish(exc.code, exc.details)
        except Exception as exc:  # a broken handler fails its call, not the session
            # Its type only: an exception's text may hold anything (a path, a value) the daemon must not see.
            stream.finish(grpc.StatusCode.UNKNOWN, type(exc).__name__)

    def stop(self, grace: float | None = None) -> threading.Event:
        """Close listeners and connections; the returned event is set once every thread has ended."""
        self.stopping = True
        self._wake_w.send(b"x")
        for connection in list(self._connections):
            connection.alive = False
            try:
                connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        done = threading.Event()

        def finish() -> None:
            for thread in self._threads:
                thread.join(grace or 1.0)
            for sock in (*self._listeners, self._wake_r, self._wake_w):
                sock.close()
            self.executor.shutdown(wait=True, cancel_futures=True)  # handlers notice within ~1 s
            done.set()

        threading.Thread(target=finish, name="envd-h2-stop", daemon=True).start()
        return done


class _CallDetails(grpc.HandlerCallDetails):
    def __init__(self, method: str):
        self.method = method
        self.invocation_metadata = ()
