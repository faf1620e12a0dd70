"""Typed, one-line errors for envd files, so a notebook or CLI shows `file:line: what` and nothing else."""

from __future__ import annotations

from envd_jupyter._errors import ShortError
from envd_jupyter.llb import SourceLocation as Location  # one location type: what errors and source maps name


class EnvdError(ShortError):
    """Base of every envd-language error; ``str()`` is one line starting with ``file:line:`` when known.

    ``others`` are further errors found in the same pass (every undefined name of a file, not only
    the first), each told with its own ``file:line`` after ``; also``, so one run shows them all.
    """

    def __init__(self, message: str, at: Location | None = None, *, others: tuple[EnvdError, ...] = ()):
        self.message = " ".join(str(message).split())
        self.at = at
        self.others = tuple(others)
        text = f"{at}: {self.message}" if at else self.message
        super().__init__(text + "".join(f"; also {other}" for other in self.others))

    @classmethod
    def first_of(cls, errors: list[EnvdError]) -> EnvdError:
        """The first of ``errors`` (its own type) carrying the rest as ``others``."""
        first, rest = errors[0], errors[1:]
        return type(first)(first.message, first.at, others=tuple(rest)) if rest else first


class EnvdSyntaxError(EnvdError):
    """The Starlark parser or resolver rejected the file."""


class UnknownFunctionError(EnvdError):
    """A name envd v1 does not define (or one that only existed in envd v0)."""


class EnvdArgumentError(EnvdError):
    """A known function called with wrong or missing arguments."""


class EnvdLoadError(EnvdError):
    """A ``load()`` that cannot be satisfied (missing file, cycle, remote module)."""


class CogConfigError(EnvdError):
    """A cog.yaml this mapping cannot express."""


class PipConflictError(EnvdError):
    """Two pip groups installed different versions of one distribution into the shared venv."""


class CellError(EnvdError):
    """A notebook cell's Python body raised, or did not end with a state; names the cell line."""
