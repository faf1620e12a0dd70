"""Run a command in a container over refs' filesystems, through the gateway's container API.

``NewContainer`` mounts refs of the open build (a ref at ``/`` is a stage's root filesystem; its
writes go to a scratch copy the daemon drops on ``ReleaseContainer``, so the build's refs never
change). One ``ExecProcess`` stream then carries the process: we send Init, the daemon answers
Started, then File messages (fd 1 and 2), Exit with the code, and Done last. Our side of the
stream stays open until Done: closing it makes the daemon kill the process.

Output is queued by the stream's reader thread and handed to ``on_output`` in the calling thread
between wait slices, so a notebook prints it into the right cell. Ctrl-C kills the process (a KILL
signal where the daemon takes signals, else by ending the stream), releases the container and
raises KeyboardInterrupt; the build itself stays open.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import grpc

from envd_jupyter._proto import gateway_pb2, ops_pb2
from envd_jupyter.buildkit._errors import BuildKitError
from envd_jupyter.buildkit._interrupt import CANCEL_CONFIRM, Flag, deferred_interrupts, wait
from envd_jupyter.buildkit._session.transport import new_id

if TYPE_CHECKING:
    from envd_jupyter.buildkit._gateway import Build

EXEC_CAP = "gateway.exec"
SIGNALS_CAP = "gateway.exec.signals"
UNKNOWN_EXIT_STATUS = 255  # the daemon's code for "the process did not run to an exit of its own"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # what llb.Run adds too
RELEASE_TIMEOUT = 30.0
STDIN_CHUNK = 64 * 1024
NETWORKS = {"sandbox": ops_pb2.UNSET, "host": ops_pb2.HOST, "none": ops_pb2.NONE}

OutputCallback = Callable[[int, bytes], None]  # (fd: 1 stdout / 2 stderr, data)


class ExecError(BuildKitError):
    """A command could not be run in a container (no container API on the daemon, no such program, timeout)."""


@dataclass(frozen=True)
class ExecResult:
    """How a command run with ``Build.exec`` ended; ``stdout``/``stderr`` are everything it wrote."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def __str__(self) -> str:
        return f"{' '.join(self.argv)}: exit code {self.exit_code}"


def check_capable(build: "Build") -> None:
    if EXEC_CAP not in build.caps:
        raise ExecError(f"the daemon at {build.address} has no gateway container API (cap {EXEC_CAP}): "
                        "running commands in a stage needs BuildKit 0.8 or later")


def run(build: "Build", mounts: Sequence[tuple[str, str]], argv: Sequence[str], *, user: str = "",
        cwd: str = "/", env: Mapping[str, str] | Sequence[str] = (), stdin: bytes | None = None,
        on_output: OutputCallback | None = None, network: str = "sandbox",
        timeout: float | None = None) -> ExecResult:
    """Run ``argv`` in a new container with ``mounts`` ((dest, ref id), the first at ``/``); see ``Build.exec``."""
    if not argv:
        raise ExecError("nothing to run: give the command and its arguments")
    if network not in NETWORKS:
        raise ExecError(f"network {network!r}: expected one of {', '.join(NETWORKS)}")
    check_capable(build)
    with deferred_interrupts():
        container_id = _new_container(build, mounts, NETWORKS[network])
        try:
            return _Process(build, container_id, list(argv), stdin, on_output).run(
                _meta(argv, user, cwd, env), timeout)
        finally:
            _release(build, container_id)


def _meta(argv: Sequence[str], user: str, cwd: str, env: Mapping[str, str] | Sequence[str]) -> ops_pb2.Meta:
    pairs = [f"{k}={v}" for k, v in env.items()] if isinstance(env, Mapping) else list(env)
    if not any(pair.startswith("PATH=") for pair in pairs):
        pairs.insert(0, DEFAULT_PATH)
    return ops_pb2.Meta(args=list(argv), env=pairs, cwd=cwd or "/", user=user)


def _new_container(build: "Build", mounts: Sequence[tuple[str, str]], network: int) -> str:
    container_id = new_id()
    request = gateway_pb2.NewContainerRequest(ContainerID=container_id, Network=network, Mounts=[
        ops_pb2.Mount(dest=dest, resultID=ref_id, mountType=ops_pb2.BIND)
        for dest, ref_id in mounts])
    try:
        build._call("NewContainer", request, on_interrupt=lambda: None)
    except grpc.RpcError as exc:
        raise ExecError(f"NewContainer: {exc.details() or exc.code().name}") from None
    return container_id


def _release(build: "Build", container_id: str) -> None:
    """Drop the container and its scratch writes; an ended build has dropped them already."""
    if build.ended:
        return
    try:
        build._call("ReleaseContainer", gateway_pb2.ReleaseContainerRequest(ContainerID=container_id),
                    RELEASE_TIMEOUT, on_interrupt=lambda: None)
    except (grpc.RpcError, BuildKitError):
        pass  # the build is ending: the daemon releases its containers with it


class _Process:
    """One process on its own ExecProcess stream: send Init, collect output, wait for Done."""

    def __init__(self, build: "Build", container_id: str, argv: list[str], stdin: bytes | None,
                 on_output: OutputCallback | None):
        self._build, self._argv, self._stdin, self._on_output = build, argv, stdin, on_output
        self._container_id = container_id
        self._pid = f"{container_id}:{new_id()}"
        self._outgoing: queue.SimpleQueue = queue.SimpleQueue()
        self._output: queue.SimpleQueue = queue.SimpleQueue()
        self._chunks: dict[int, list[bytes]] = {1: [], 2: []}
        self._started, self._done = Flag(), Flag()
        self._exit: gateway_pb2.ExitMessage | None = None
        self._failure = ""
        self._stream = None

    def run(self, meta: ops_pb2.Meta, timeout: float | None) -> ExecResult:
        self._stream = self._build._bridge.ExecProcess(self._requests(), metadata=self._build._metadata)
        reader = threading.Thread(target=self._read, name=f"envd-exec-{self._pid[-6:]}", daemon=True)
        reader.start()
        fds = [0, 1, 2] if self._stdin is not None else [1, 2]
        self._send(Init=gateway_pb2.InitMessage(ContainerID=self._container_id, Meta=meta, Fds=fds))
        try:
            if self._stdin is not None:
                self._feed_stdin()
            finished = wait(self._done, timeout, on_interrupt=self._kill, check=self._check)
            if not finished:
                self._kill()
                self._done.wait(CANCEL_CONFIRM)
                raise ExecError(f"{self._argv[0]}: still running after {timeout}s; killed")
        finally:
            self._outgoing.put(None)  # ends our side of the stream (the daemon then kills what still runs)
            if not self._done.is_set():
                self._stream.cancel()
            reader.join(CANCEL_CONFIRM)
            self._deliver()
        return self._result()

    # -- the stream -----------------------------------------------------------------------------
    def _requests(self):
        while True:
            message = self._outgoing.get()
            if message is None:
                return
            yield message

    def _send(self, **input_message) -> None:
        self._outgoing.put(gateway_pb2.ExecMessage(ProcessID=self._pid, **input_message))

    def _read(self) -> None:
        try:
            for message in self._stream:
                if message.ProcessID != self._pid:
                    continue
                which = message.WhichOneof("Input")
                if which == "Started":
                    self._started.set()
                elif which == "File" and message.File.Data:
                    self._output.put((message.File.Fd, message.File.Data))
                elif which == "Exit":
                    self._exit = message.Exit
                elif which == "Done":
                    return
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                self._failure = exc.details() or exc.code().name
        finally:
            self._done.set()

    def _feed_stdin(self) -> None:
        wait(self._started, None, on_interrupt=self._kill, check=self._check)
        for offset in range(0, len(self._stdin), STDIN_CHUNK):
            self._send(File=gateway_pb2.FdMessage(Fd=0, Data=self._stdin[offset:offset + STDIN_CHUNK]))
        self._send(File=gateway_pb2.FdMessage(Fd=0, EOF=True))

    def _check(self) -> None:
        """Between wait slices: hand over output; stop when the build itself ended."""
        self._deliver()
        reason = self._build._lifecycle.stop_reason()
        if reason is not None:
            raise reason

    def _deliver(self) -> None:
        while True:
            try:
                fd, data = self._output.get_nowait()
            except queue.Empty:
                return
            self._chunks.setdefault(fd, []).append(data)
            if self._on_output is not None:
                self._on_output(fd, data)

    def _kill(self) -> None:
        if SIGNALS_CAP in self._build.caps and self._started.is_set():
            self._send(Signal=gateway_pb2.SignalMessage(Name="KILL"))
        else:  # BuildKit 0.8 takes no signals: ending the stream kills the process
            self._outgoing.put(None)
            self._stream.cancel()

    def _result(self) -> ExecResult:
        if self._exit is None:
            raise ExecError(f"{self._argv[0]}: the daemon ended the process stream without an exit code"
                            + (f" ({self._failure})" if self._failure else ""))
        code, error = self._exit.Code, self._exit.Error
        if code == UNKNOWN_EXIT_STATUS and error.message and "exit code" not in error.message:
            raise ExecError(f"{self._argv[0]}: {error.message}")
        return ExecResult(tuple(self._argv), code, b"".join(self._chunks.get(1, [])),
                          b"".join(self._chunks.get(2, [])))
