"""The process that runs Starlark for ``lang._sandbox``: go.starlark.net and nothing of ours.

Run as ``python _starlark_worker.py READ_FD WRITE_FD MEMORY_BYTES`` (a file path, so starting it
imports only the standard library and starlark_go). The memory limit (RLIMIT_DATA) is set before
the Go runtime starts and never changes: lowered later, memory the heap already holds would not count. It evaluates what the parent sends and forwards every call
of a Python function (an envd rule, a chain method) and every ``print`` back to the parent, which
holds all state. The parent may kill it at any moment: an endless loop, a memory bomb or a Go
runtime crash end here and never in the notebook kernel.

Messages are tuples over ``multiprocessing.connection`` (parent → worker):
``("open", callable_names, values)`` a fresh interpreter; ``("exec", source, filename)``;
``("eval", expr, filename)``; ``("globals",)``. The worker answers each with ``("ok", value)``,
``("error", starlark_go_exception)`` or ``("failed", text)`` (the binding raised something else), sending ``("call", name, args, kwargs)`` (answered by
``("return", value)`` or ``("raise", text)``) and ``("print", text)`` before that.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection

if __name__ == "__main__":  # before starlark_go starts the Go runtime
    resource.setrlimit(resource.RLIMIT_DATA, (int(sys.argv[3]), resource.getrlimit(resource.RLIMIT_DATA)[1]))

import starlark_go  # noqa: E402

# envd's resolver options (pkg/lang/frontend/starlark/v1/interpreter.go) except recursion, which
# envd compiles in: go.starlark.net has no depth limit, so an unbounded recursion ends the
# process with Go's "fatal error: stack overflow". Refused, it is an EvalError naming the line.
starlark_go.configure_starlark(allow_set=False, allow_global_reassign=False, allow_recursion=False)


class CallbackError(Exception):
    """The parent's function raised; its text becomes the Starlark error (the parent keeps the typed one)."""


def _exit_with_parent(parent: int) -> None:
    """The parent holds the only reason to live: once it is gone (reparented), stop, even mid-loop."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


class Worker:
    def __init__(self, requests: Connection, replies: Connection):
        self.requests, self.replies = requests, replies
        self.starlark: starlark_go.Starlark | None = None
        self.stubs: dict = {}

    def stub(self, name: str):
        def call(*args, **kwargs):
            self.replies.send(("call", name, args, kwargs))
            kind, value = self.requests.recv()
            if kind == "raise":
                raise CallbackError(value)
            return value
        return call

    def forward_print(self, text: str) -> None:
        self.replies.send(("print", text))

    def handle(self, request: tuple):
        kind, *args = request
        if kind == "open":
            names, values = args
            # starlark-go does not keep Python callables alive (a freed one is a segfault): hold them here
            self.stubs = {name: self.stub(name) for name in names}
            self.starlark = starlark_go.Starlark(globals={**values, **self.stubs}, print=self.forward_print)
            return None
        if kind == "exec":
            return self.starlark.exec(args[0], filename=args[1])
        if kind == "eval":
            return self.starlark.eval(args[0], filename=args[1])
        if kind == "globals":
            return self.starlark.globals()
        raise ValueError(f"unknown request {kind!r}")

    def serve(self) -> None:
        while True:
            try:
                request = self.requests.recv()
            except EOFError:
                return
            try:
                reply = ("ok", self.handle(request))
            except starlark_go.StarlarkError as err:
                reply = ("error", err)
            except Exception as err:  # the binding refusing its input (a NUL in the source, say): not fatal
                reply = ("failed", f"{type(err).__name__}: {err}")
            self.replies.send(reply)


def main(read_fd: int, write_fd: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt stops
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    Worker(Connection(read_fd, writable=False), Connection(write_fd, readable=False)).serve()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
