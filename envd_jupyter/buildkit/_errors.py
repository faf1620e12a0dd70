"""Typed, one-line errors for everything the BuildKit client can fail at.

Notebook front ends print ``_render_traceback_()`` instead of a traceback, so a failed RUN shows
as a short block (step, exit code, last log lines) rather than forty lines of grpc internals.
"""

from __future__ import annotations

from envd_jupyter._errors import ShortError


class BuildKitError(ShortError):
    """Base class: any failure talking to a BuildKit daemon."""


class ConnectError(BuildKitError):
    """No daemon answered: lists every address tried, why it failed, and what to run."""


class DaemonError(BuildKitError):
    """The daemon went away or answered with an unexpected gRPC error mid-call."""


class CapsError(BuildKitError):
    """The definition needs capabilities the daemon lacks and cannot be lowered for it."""


class InvalidDefinitionError(BuildKitError, ValueError):
    """What was given to solve is not an LLB Definition (or a State that marshals to one)."""


class RegistryAuthError(BuildKitError):
    """Registry credentials could not be had (credential helper missing, failing, hanging) or were refused."""


class SolveCancelled(BuildKitError):
    """The solve was cancelled by the caller (``cancel()`` on its handle or build, or a failing sibling)."""


class GatewayError(BuildKitError):
    """A call inside an interactive build failed (reading a missing file, a ref the daemon forgot)."""


class ExportError(BuildKitError):
    """An export that could not be completed on the client side (e.g. a push dockerd refused)."""


class SolveError(BuildKitError):
    """The daemon rejected or failed the build; for a failing step, which one and its last output."""

    def __init__(self, message: str, *, step: str = "", exit_code: int | None = None,
                 log_tail: tuple[str, ...] = (), detail: str = "", location: str = "", digest: str = ""):
        super().__init__(message)
        self.step = step
        self.digest = digest  # the failed step's op digest, when the Status stream named it
        # In an interactive build, where the daemon reports them: the failed run step's filesystems as they
        # were when it failed, ((dest, result id), ...) with "/" first; ``Build.exec(error, argv)`` runs there.
        self.mounts: tuple[tuple[str, str], ...] = ()
        self.location = location  # "file:line" of the user's code that made the step, when known
        self.exit_code = exit_code
        self.log_tail = log_tail
        self.detail = detail

    def __str__(self) -> str:
        head = self.args[0]
        if not self.log_tail:
            return head
        return head + "\n" + "\n".join(f"  | {line}" for line in self.log_tail)
