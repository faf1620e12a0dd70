"""Typed, one-line errors raised while a graph is built, marshalled, parsed or lowered.

Everything is checked when the State is built, so marshal never surfaces a protobuf
traceback. All classes derive from LLBError; value problems also derive from ValueError
and wrong types from TypeError so ordinary ``except`` clauses keep working.
"""

from __future__ import annotations

from envd_jupyter._errors import ShortError


class LLBError(ShortError):
    """Base class of every envd_jupyter.llb error."""


class ValidationError(LLBError, ValueError):
    """An argument that BuildKit would reject or misread."""


class NotAStateError(LLBError, TypeError):
    """A State (or scratch()) was required but something else was given."""


class InvalidPlatformError(ValidationError):
    """A platform string that is not os[/arch[/variant]]."""


class InvalidReferenceError(ValidationError):
    """An image reference Docker's normaliser rejects."""


class EmptyCommandError(ValidationError):
    """run() was given no argv."""


class InvalidModeError(ValidationError):
    """A file mode that is not an int in range (0..0o777 for files, 0..0o7777 for secret/ssh mounts)."""


class InvalidMountError(ValidationError):
    """A mount with a relative destination, unknown option or unusable output."""


class DuplicateMountError(InvalidMountError):
    """Two mounts of one exec share a destination."""


class DefinitionError(LLBError, ValueError):
    """Bytes that are not a well-formed, topologically ordered LLB Definition."""


class MissingCapabilityError(LLBError):
    """The daemon lacks a capability the graph needs and no lowering exists."""


def check_mode(mode, *, what: str = "mode", maximum: int = 0o777) -> int:
    """The one permission-bits check (file actions, http perm, secret/ssh mounts)."""
    if not isinstance(mode, int) or isinstance(mode, bool):
        raise InvalidModeError(f"{what} must be an int such as 0o644, got {mode!r}")
    if not 0 <= mode <= maximum:
        raise InvalidModeError(f"{what} {mode:#o} out of range 0..{maximum:#o}")
    return mode
