"""One background thread that copies bytes between socket pairs (the hijack/session bridges).

A single selector thread serves every pair, so the number of threads stays constant however
many connections grpcio opens, and closing the pump closes every socket it owns.
"""

from __future__ import annotations

import selectors
import socket
import threading
from typing import Callable

CHUNK = 256 * 1024
SEND_TIMEOUT = 30.0  # a peer that stops reading for this long is treated as dead
POLL = 0.5  # seconds between stop-flag checks


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
            sock.settimeout(SEND_TIMEOUT)

        def register() -> None:
            pair = _Pair(a, b)
            try:
                if to_a:
                    a.sendall(to_a)
                if to_b:
                    b.sendall(to_b)
            except OSError:
                pair.close()
                return
            self._selector.register(a, selectors.EVENT_READ, ("pipe", (pair, b)))
            self._selector.register(b, selectors.EVENT_READ, ("pipe", (pair, a)))

        self._call_in_loop(register)

    def add_listener(self, listener: socket.socket, on_accept: Callable[[socket.socket], None]) -> None:
        """Call ``on_accept(conn)`` in the pump thread for each connection to ``listener``."""
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
                for key, _ in self._selector.select(POLL):
                    kind, data = key.data
                    if kind == "wake":
                        self._drain_wake()
                    elif kind == "listen":
                        self._accept(*data)
                    else:
                        self._copy(key.fileobj, *data)
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

    def _copy(self, src: socket.socket, pair: "_Pair", dst: socket.socket) -> None:
        try:
            data = src.recv(CHUNK)
            if data:
                dst.sendall(data)
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
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
                data[0].close()
            else:
                key.fileobj.close()
        self._selector.close()
        self._wake_w.close()


class _Pair:
    def __init__(self, a: socket.socket, b: socket.socket):
        self.a, self.b, self._closed = a, b, False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sock in (self.a, self.b):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
