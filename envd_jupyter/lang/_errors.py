"""Typed, one-line errors for envd files, so a notebook or CLI shows `file:line: what` and nothing else."""

from __future__ import annotations

from envd_jupyter._errors import ShortError
from envd_jupyter.llb import SourceLocation as Location  # one location type: what errors and source maps name


class EnvdError(ShortError):
    """Base of every envd-language error; ``str()`` is one line starting with ``file:line:`` when known."""

    def __init__(self, message: str, at: Location | None = None):
        self.message = " ".join(str(message).split())
        self.at = at
        super().__init__(f"{at}: {self.message}" if at else self.message)


class EnvdSyntaxError(EnvdError):
    """The Starlark parser or resolver rejected the file."""


class UnknownFunctionError(EnvdError):
    """A name envd v1 does not define (or one that only existed in envd v0)."""


class UnsupportedFunctionError(EnvdError):
    """An envd v1 function this builder deliberately does not implement (e.g. GPU/CUDA)."""


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
