"""Process-stdio connections: a child process whose stdin/stdout is the byte stream.

BuildKit's connection helpers (``docker exec -i NAME buildctl dial-stdio``, ``kubectl exec``,
``ssh HOST buildctl dial-stdio``) and the docker CLI's ssh transport (``ssh HOST docker system
dial-stdio``) all work this way: one child per connection. The child gets one end of a socketpair as
its stdin and stdout, so the rest of the client handles it as any socket: the pump copies it to
grpcio's local connection (``_stdio_transport``), ``hijack`` upgrades it to dockerd's /grpc or /session.

Closing our end ends the child: its stdin reaches EOF and it gets GRACE seconds to leave, then TERM,
then KILL, and a short-lived reaper thread waits for it, so no child or zombie stays behind. A child
that dies closes the stream, which ends whatever rode on it (a solve fails, it does not hang). Its
stderr goes to an unlinked temp file; ``HelperProcess.failure`` turns it into one line. Children run
in their own session (no controlling terminal), as the docker CLI starts them: ssh cannot stop to
prompt on the terminal the notebook server was started from.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import threading

from envd_jupyter.buildkit._address import Address, helper_argv

GRACE = 3.0  # seconds a child gets after EOF (and after TERM) before the next, harder stop
STDERR_TAIL = 4096  # bytes of a child's stderr read back to explain its failure
MAX_LINE = 300
_NOISE = ("Warning: Permanently added",)  # ssh's first-contact notice, never the reason


class HelperProcess:
    """One child whose stdio is ``socket``; its exit explained by ``failure()``."""

    def __init__(self, argv: list[str], *, timeout: float | None = None):
        self.argv = list(argv)
        self._lock = threading.Lock()
        self._tail: str | None = None  # stderr's last bytes, kept once the temp file is closed
        self._released = False
        ours, theirs = socket.socketpair()
        self._stderr = tempfile.TemporaryFile()
        try:
            self.process = subprocess.Popen(self.argv, stdin=theirs, stdout=theirs, stderr=self._stderr,
                                            start_new_session=True, close_fds=True)
        except OSError as exc:
            ours.close()
            self._stderr.close()
            raise OSError(f"cannot run {self.argv[0]}: {exc.strerror or exc}") from None
        finally:
            theirs.close()  # the child holds its own copy; ours must go or its exit would never read as EOF
        self.socket = HelperSocket(fileno=ours.detach())
        self.socket.helper = self
        self.socket.settimeout(timeout)

    def failure(self, wait: float = GRACE) -> str:
        """Why the stream ended, in one line ("" while the child runs on, or if it left cleanly and silently)."""
        try:
            code = self.process.wait(wait)
        except subprocess.TimeoutExpired:
            return ""
        line = _last_line(self._read_tail())
        if code == 0 and not line:
            return ""
        status = f"exited with {code}" if code >= 0 else f"was killed by signal {-code}"
        return f"{os.path.basename(self.argv[0])} {status}" + (f": {line}" if line else "")

    def release(self) -> None:
        """Our end is closed: let the child go (EOF, then TERM, then KILL), reaped in the background."""
        with self._lock:
            if self._released:
                return
            self._released = True
        threading.Thread(target=self._reap, name="envd-helper-reaper", daemon=True).start()

    def _reap(self) -> None:
        for stop in (None, signal.SIGTERM, signal.SIGKILL):
            if stop is not None:
                self.process.send_signal(stop)  # a no-op once the child has been waited for
            try:
                self.process.wait(GRACE)
                break
            except subprocess.TimeoutExpired:
                continue
        self._read_tail()
        with self._lock:
            self._stderr.close()

    def _read_tail(self) -> str:
        with self._lock:
            if self._stderr.closed:
                return self._tail or ""
            size = self._stderr.seek(0, os.SEEK_END)
            self._stderr.seek(max(0, size - STDERR_TAIL))
            self._tail = self._stderr.read().decode("utf-8", "replace")
            return self._tail


class HelperSocket(socket.socket):
    """Our end of a helper's stdio: closing it (and every file made from it) lets the helper go."""

    helper: HelperProcess | None = None  # None on a dup(), which shares the fd but not the child

    def _real_close(self, *args) -> None:
        super()._real_close(*args)
        if self.helper is not None:
            self.helper.release()


def _last_line(text: str) -> str:
    """The last line of stderr that says something, printable and short."""
    lines = [line.strip() for line in text.replace("\r", "\n").split("\n")]
    lines = [line for line in lines if line and not line.startswith(_NOISE)]
    if not lines:
        return ""
    line = "".join(ch if ch.isprintable() else " " for ch in lines[-1])
    return line if len(line) <= MAX_LINE else line[:MAX_LINE - 1] + "…"


def open_helper(address: Address, timeout: float) -> HelperSocket:
    """A new helper process for one connection to ``address``: its socket, ``timeout`` on every wait."""
    return HelperProcess(helper_argv(address, connect_timeout=timeout), timeout=timeout).socket


def exit_reason(sock: socket.socket, wait: float = GRACE) -> str:
    """For a helper's socket whose stream ended: the helper's one-line failure ("" for any other socket)."""
    return sock.helper.failure(wait) if isinstance(sock, HelperSocket) else ""
