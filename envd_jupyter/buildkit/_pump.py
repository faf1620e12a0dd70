"""One background thread that copies bytes between socket pairs (the hijack/session bridges).

A single selector thread serves every pair, so the number of threads stays constant however
many connections grpcio opens, and closing the pump closes every socket it owns. Every socket is
non-blocking: bytes a peer cannot take yet wait in that direction's buffer, and reading from the
other side pauses while the buffer is full, so one slow peer slows its own pair only. A peer that
takes nothing for SEND_TIMEOUT while bytes wait for it is treated as dead and its pair closed.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import threading
import time
from typing import Callable

CHUNK = 256 * 1024
HIGH_WATER = 4 * CHUNK  # buffered bytes per direction past which the source is not read
SEND_TIMEOUT = 30.0  # a peer that stops reading for this long is treated as dead
POLL = 0.5  # seconds between stop-flag and stalled-peer checks
# A TLS socket that needs the other direction first is not ready, exactly like a full buffer.
_NOT_READY = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class Pump:
    """Pipes sockets in pairs; a listener may hand it new pairs as connections arrive."""

    def __init__(self, name: str):
        self._name = name
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._stopping = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._pending: list[Callable[[], None]] = []
        self._pairs: set[_Pair] = set()
        self._thread: threading.Thread | None = None

    def _call_in_loop(self, action: Callable[[], None]) -> None:
        with self._lock:
            if self._stopping:
                raise RuntimeError(f"{self._name}: pump is closed")
            self._pending.append(action)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def add_pair(self, a: socket.socket, b: socket.socket, *, to_a: bytes = b"", to_b: bytes = b"") -> None:
        """Copy a<->b until either side closes; ``to_a``/``to_b`` are bytes already read for them."""
        for sock in (a, b):
            sock.setblocking(False)

        def register() -> None:
            pair = _Pair(a, b)
            pair.out[a] += to_a
            pair.out[b] += to_b
            self._pairs.add(pair)
            for sock in (a, b):
                self._update(sock, pair)

        self._call_in_loop(register)

    def add_listener(self, listener: socket.socket, on_accept: Callable[[socket.socket], None]) -> None:
        """Call ``on_accept(conn)`` in the pump thread for each connection to ``listener`` (it must not block)."""
        listener.setblocking(False)
        self._call_in_loop(lambda: self._selector.register(listener, selectors.EVENT_READ,
                                                           ("listen", (listener, on_accept))))

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and close every socket it serves."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if thread is None:
            self._shutdown()

    def _run(self) -> None:
        try:
            while not self._stopping:
                for key, mask in self._selector.select(POLL):
                    kind, data = key.data
                    if kind == "wake":
                        self._drain_wake()
                    elif kind == "listen":
                        self._accept(*data)
                    elif not data.closed:
                        self._service(key.fileobj, data, mask)
                self._close_stalled()
        finally:
            self._shutdown()

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        with self._lock:
            pending, self._pending = self._pending, []
        for action in pending:
            action()

    def _accept(self, listener: socket.socket, on_accept: Callable[[socket.socket], None]) -> None:
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._unregister(listener)
            return
        conn.setblocking(True)
        on_accept(conn)

    def _service(self, sock: socket.socket, pair: "_Pair", mask: int) -> None:
        peer = pair.peer(sock)
        try:
            if mask & selectors.EVENT_WRITE:
                pair.flush(sock)
            if mask & selectors.EVENT_READ:
                data = receive(sock)
                if not data:
                    pair.eof.add(sock)
                else:
                    pair.out[peer] += data
                    pair.flush(peer)
        except _NOT_READY:
            pass
        except OSError:
            self._close(pair)
            return
        if pair.finished():
            self._close(pair)
            return
        for side in (sock, peer):
            self._update(side, pair)

    def _update(self, sock: socket.socket, pair: "_Pair") -> None:
        """Watch ``sock`` for what its pair can do with it now (nothing: not watched at all)."""
        events = pair.events(sock)
        if sock in pair.watched:
            if events:
                self._selector.modify(sock, events, ("pipe", pair))
            else:
                self._selector.unregister(sock)
                pair.watched.discard(sock)
        elif events:
            self._selector.register(sock, events, ("pipe", pair))
            pair.watched.add(sock)

    def _close_stalled(self) -> None:
        now = time.monotonic()
        for pair in [p for p in self._pairs if p.stalled(now)]:
            self._close(pair)

    def _close(self, pair: "_Pair") -> None:
        self._pairs.discard(pair)
        self._unregister(pair.a)
        self._unregister(pair.b)
        pair.close()

    def _unregister(self, sock: socket.socket) -> None:
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass

    def _shutdown(self) -> None:
        for key in list(self._selector.get_map().values()):
            kind, data = key.data
            if kind == "pipe":
                data.close()
            else:
                key.fileobj.close()
        self._selector.close()
        self._wake_w.close()


def receive(sock: socket.socket, size: int = CHUNK) -> bytes:
    """``recv``, plus what a TLS socket has already decrypted (the selector cannot see it)."""
    data = sock.recv(size)
    pending = getattr(sock, "pending", None)
    while data and pending is not None and pending():
        data += sock.recv(pending())
    return data


class _Pair:
    """Two sockets, the bytes waiting for each, and which ones have ended their sending side."""

    def __init__(self, a: socket.socket, b: socket.socket):
        self.a, self.b, self.closed = a, b, False
        self.out: dict[socket.socket, bytearray] = {a: bytearray(), b: bytearray()}
        self.eof: set[socket.socket] = set()
        self.watched: set[socket.socket] = set()
        self.waiting_since: dict[socket.socket, float] = {}  # since when bytes for a socket have not moved

    def peer(self, sock: socket.socket) -> socket.socket:
        return self.b if sock is self.a else self.a

    def events(self, sock: socket.socket) -> int:
        """Read while the other direction has room; write while bytes wait for this socket."""
        events = 0
        if sock not in self.eof and len(self.out[self.peer(sock)]) < HIGH_WATER:
            events |= selectors.EVENT_READ
        if self.out[sock]:
            events |= selectors.EVENT_WRITE
        return events

    def flush(self, sock: socket.socket) -> None:
        """Send what waits for ``sock`` as far as it takes it now."""
        pending, sent = self.out[sock], 0
        if pending:
            try:
                sent = sock.send(pending)
            except _NOT_READY:
                pass
            del pending[:sent]
        if not pending:
            self.waiting_since.pop(sock, None)
        elif sent or sock not in self.waiting_since:
            self.waiting_since[sock] = time.monotonic()

    def finished(self) -> bool:
        """Either side ended and everything it sent has reached the other side (the bridge closes both, as before)."""
        return any(not self.out[self.peer(side)] for side in self.eof)

    def stalled(self, now: float) -> bool:
        return any(now - since > SEND_TIMEOUT for since in self.waiting_since.values())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for sock in (self.a, self.b):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
