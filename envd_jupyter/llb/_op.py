"""The vertex base class and the per-op data that is not part of the op digest.

Every op kind (source.py, exec.py, fileop.py, merge.py, diff.py) subclasses ``Op``: it
names its inputs in Go's ``Vertex.Inputs()`` order (which fixes the definition order)
and encodes its ``pb.Op`` bytes given the digests of its inputs.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass

from . import _wire

CONSTRAINTS = b"\x5a\x00"  # Op.constraints: an empty WorkerConstraints, always present


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """Where in the user's source an op came from (a cell, a file), for error messages.

    Marshalled into the Definition's ``Source`` (BuildKit source maps). ``line`` and
    ``end_line`` are 1-based, 0 when unknown; ``data`` optionally carries the source text itself.
    ``lang.Location`` is this class, so envd errors and op source maps share one type.
    """

    filename: str
    line: int = 0
    end_line: int | None = None
    column: int = 0
    end_column: int = 0
    data: bytes | None = None
    language: str = ""

    def __post_init__(self):
        if not isinstance(self.filename, str) or not isinstance(self.line, int):
            from ._errors import ValidationError

            raise ValidationError(f"SourceLocation needs a filename str and an int line, got {self.filename!r}:{self.line!r}")
        if self.end_line is None:
            object.__setattr__(self, "end_line", self.line)

    @property
    def file(self) -> str:
        return self.filename

    def __str__(self) -> str:
        """``file:line``, or ``file`` alone when the line is unknown (0)."""
        return f"{self.filename}:{self.line}" if self.line else self.filename

    def source_key(self) -> tuple:
        """Locations with equal keys share one SourceInfo (Go's equalSourceMap)."""
        return (self.filename, self.language, self.data or b"")


_CURRENT_LOCATION: contextvars.ContextVar[SourceLocation | None] = contextvars.ContextVar(
    "envd_jupyter_llb_location", default=None
)


@contextmanager
def located(location: SourceLocation):
    """Attach ``location`` to every op created inside the ``with`` block."""
    token = _CURRENT_LOCATION.set(location)
    try:
        yield location
    finally:
        _CURRENT_LOCATION.reset(token)


_META_CACHE: dict = {}


BREAKPOINT_KEY = "envd.breakpoint"  # in an op's description: steppers pause after it (State.breakpoint)


class OpMeta:
    """pb.OpMetadata of one op: cache flags, description (llb.customname), caps."""

    __slots__ = ("ignore_cache", "description", "caps", "export_cache", "progress_group")

    def __init__(self, caps=(), *, ignore_cache=False, description=None, export_cache=None, progress_group=None):
        self.ignore_cache = bool(ignore_cache)
        self.description = dict(description) if description else None
        self.caps = frozenset(caps)
        self.export_cache = export_cache
        self.progress_group = progress_group

    def merged(self, other: "OpMeta") -> "OpMeta":
        """Go's mergeMetadata: flags OR-ed, later description keys win, caps united."""
        desc = self.description
        if other.description:
            desc = {**(desc or {}), **other.description}
        return OpMeta(
            self.caps | other.caps,
            ignore_cache=self.ignore_cache or other.ignore_cache,
            description=desc,
            export_cache=other.export_cache if other.export_cache is not None else self.export_cache,
            progress_group=other.progress_group or self.progress_group,
        )

    def encode(self) -> bytes:
        """pb.OpMetadata bytes; ops of one kind share caps, so the bytes are cached by content."""
        key = (self.caps, self.ignore_cache, tuple(sorted(self.description.items())) if self.description else (),
               self.export_cache, self.progress_group)
        data = _META_CACHE.get(key)
        if data is None:
            if len(_META_CACHE) > 4096:
                _META_CACHE.clear()
            data = _META_CACHE[key] = self._encode()
        return data

    def _encode(self) -> bytes:
        out = _wire.int_field(1, self.ignore_cache)
        if self.description:
            out += _wire.str_map(2, self.description)
        if self.export_cache is not None:
            out += _wire.len_field(4, _wire.int_field(1, self.export_cache))
        out += _wire.bool_map(5, {c: True for c in self.caps})
        if self.progress_group is not None:
            pid, name, weak = self.progress_group
            out += _wire.len_field(6, _wire.str_field(1, pid) + _wire.str_field(2, name) + _wire.int_field(3, weak))
        return out

    def __eq__(self, other):
        return isinstance(other, OpMeta) and all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __repr__(self):
        return f"OpMeta(caps={sorted(self.caps)}, ignore_cache={self.ignore_cache}, description={self.description})"


def op_meta(caps, *, name=None, ignore_cache=False) -> OpMeta:
    return OpMeta(caps, ignore_cache=ignore_cache, description={"llb.customname": name} if name else None)


def current_locations(location) -> tuple[SourceLocation, ...]:
    """The op's locations: ``location`` (one or a sequence) or else the ``located()`` one."""
    if location is None:
        location = _CURRENT_LOCATION.get()
    if location is None:
        return ()
    locs = (location,) if isinstance(location, SourceLocation) else tuple(location) if isinstance(
        location, (list, tuple)) else None
    if locs is None or not all(isinstance(loc, SourceLocation) for loc in locs):
        from ._errors import ValidationError

        raise ValidationError(f"location must be a SourceLocation or a list of them, not {type(location).__name__}")
    return locs


def encode_input(digest: str, index: int) -> bytes:
    """One Op.inputs entry (pb.Input)."""
    d = digest.encode()
    inner = b"\x0a" + _wire.varint(len(d)) + d + (_wire.int_field(2, index) if index else b"")
    return b"\x0a" + _wire.varint(len(inner)) + inner


class Op:
    """A vertex. Subclasses set ``meta`` and ``locations`` and implement the two hooks."""

    __slots__ = ("meta", "locations", "uses_local", "_memo_key", "_memo")

    def init_op(self, meta: OpMeta, locations, upstream) -> None:
        self.meta = meta
        self.locations = locations
        self.uses_local = any(op.uses_local for op in upstream)
        self._memo_key = None
        self._memo = None

    def walk_inputs(self) -> list["Op"]:
        """Input vertices in Go's Inputs() order (duplicates allowed; the walk skips them)."""
        raise NotImplementedError

    def encode(self, ctx, digest_of) -> bytes:
        """The pb.Op bytes; ``digest_of(op)`` gives each input's digest."""
        raise NotImplementedError
