"""File actions: argument validation and the pb.FileAction* encodings (Go client/llb fileop.go).

Paths are normalised like Go's normalizePath, owners parsed like WithUser/WithUIDGID,
times written as Unix nanoseconds with -1 for "keep", exactly as toProtoAction does.
"""

from __future__ import annotations

import datetime as _dt

from . import _wire
from ._errors import ValidationError
from ._state import go_clean, go_join


def check_path(p, what="path") -> str:
    if not isinstance(p, str) or not p:
        raise ValidationError(f"{what} must be a non-empty string, got {p!r}")
    utf8(p, what)
    return p


def utf8(text: str, what: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        raise ValidationError(f"{what} must be valid UTF-8 text: {exc.reason}") from None


def timestamp(created) -> int:
    if created is None:
        return -1
    if isinstance(created, _dt.datetime):
        if created.tzinfo is None:
            raise ValidationError("created must be a timezone-aware datetime")
        delta = created - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
        return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000
    if isinstance(created, int):
        return created
    raise ValidationError(f"created must be a datetime or nanoseconds since the epoch, got {created!r}")


def _parse_id(part: str):
    if part == "root":
        return 0
    try:
        value = int(part, 10)
    except ValueError:
        return part
    return value if -(2**31) <= value < 2**31 else part


def parse_owner(owner):
    """Go's WithUser("user[:group]") / WithUIDGID: (user, group), each an int, a name or None."""
    if owner is None:
        return None
    if isinstance(owner, bool):
        raise ValidationError(f"owner must be 'user[:group]', a uid or (uid, gid), got {owner!r}")
    if isinstance(owner, int):
        return (owner, None)
    if isinstance(owner, tuple) and len(owner) == 2 and all(isinstance(v, (int, str)) for v in owner):
        return owner
    if isinstance(owner, str) and owner:
        parts = owner.split(":", 1)
        return (_parse_id(parts[0]), _parse_id(parts[1]) if len(parts) > 1 else None)
    raise ValidationError(f"owner must be 'user[:group]', a uid or (uid, gid), got {owner!r}")


def _encode_user(value, base: int) -> bytes:
    if isinstance(value, str):
        return _wire.len_field(1, _wire.str_field(1, value) + _wire.int_field(2, base))
    return _wire.key(2, 0) + _wire.varint(value & 0xFFFFFFFF)


def _encode_owner(field: int, owner, base: int) -> bytes:
    if owner is None:
        return b""
    user, group = owner
    out = b""
    if user is not None:
        out += _wire.len_field(1, _encode_user(user, base))
    if group is not None:
        out += _wire.len_field(2, _encode_user(group, base))
    return _wire.len_field(field, out)


def normalize_path(parent: str, p: str, keep_slash: bool) -> str:
    """Go's normalizePath: clean, resolve against ``parent``, optionally keep "/" or "/."."""
    orig = p
    p = go_clean(p)
    if not p.startswith("/"):
        p = go_join("/", parent, p)
    if keep_slash:
        if orig.endswith("/") and not p.endswith("/"):
            p += "/"
        elif orig.endswith("/."):
            if p != "/":
                p += "/"
            p += "."
    return p


def encode_action(action, parent: str, base: int) -> bytes:
    kind = action[0]
    if kind == "mkdir":
        _, path, mode, parents, owner, ts = action
        return _wire.len_field(6, _wire.str_field(1, normalize_path(parent, path, False)) + _wire.int_field(2, mode)
                               + _wire.int_field(3, parents) + _encode_owner(4, owner, base) + _wire.int_field(5, ts))
    if kind == "mkfile":
        _, path, mode, data, owner, ts = action
        return _wire.len_field(5, _wire.str_field(1, normalize_path(parent, path, False)) + _wire.int_field(2, mode)
                               + _wire.bytes_field(3, data) + _encode_owner(4, owner, base) + _wire.int_field(5, ts))
    if kind == "rm":
        _, path, not_found, wildcard = action
        return _wire.len_field(7, _wire.str_field(1, normalize_path(parent, path, False))
                               + _wire.int_field(2, not_found) + _wire.int_field(3, wildcard))
    if kind == "symlink":
        _, old, new, owner, ts = action
        return _wire.len_field(8, _wire.str_field(1, old) + _wire.str_field(2, new) + _encode_owner(3, owner, base)
                               + _wire.int_field(4, ts))
    _, _, src, dest, info = action
    (mode, follow, contents, inc, exc, req, unpack, create, wild, empty_wild, owner, ts, replace) = info
    mode_int = -1 if mode is None else (0 if isinstance(mode, str) else mode)
    return _wire.len_field(4, _wire.str_field(1, src) + _wire.str_field(2, normalize_path(parent, dest, True))
                           + _encode_owner(3, owner, base) + _wire.int_field(4, mode_int) + _wire.int_field(5, follow)
                           + _wire.int_field(6, contents) + _wire.int_field(7, unpack) + _wire.int_field(8, create)
                           + _wire.int_field(9, wild) + _wire.int_field(10, empty_wild) + _wire.int_field(11, ts)
                           + _wire.repeated_str(12, inc) + _wire.repeated_str(13, exc) + _wire.int_field(14, replace)
                           + _wire.str_field(15, mode if isinstance(mode, str) else "")
                           + _wire.repeated_str(16, req))
