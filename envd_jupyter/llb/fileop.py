"""FileOp: mkdir / mkfile / rm / copy / symlink, alone or chained into one op (Go fileop.go).

``llb.mkdir(...).mkfile(...).copy(...)`` is a FileActions chain; ``State.file(chain)``
makes ONE FileOp. Relative paths resolve against the target State's workdir, copy
sources against the source State's workdir; timestamps and copy mode default to -1.
Like Go v0.26.3 the op's capabilities are just ``file.base`` (Go's per-action caps loop
runs over an empty list), so the metadata bytes match.
"""

from __future__ import annotations

import datetime as _dt

from . import _wire
from ._op import CONSTRAINTS, Op, current_locations, op_meta
from .errors import InvalidModeError, ValidationError
from .state import State, go_clean, go_join, require_state

_SKIP = -1


def _path(p, what="path") -> str:
    if not isinstance(p, str) or not p:
        raise ValidationError(f"{what} must be a non-empty string, got {p!r}")
    _utf8(p, what)
    return p


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        raise ValidationError(f"{what} must be valid UTF-8 text: {exc.reason}") from None


def _mode(mode) -> int:
    if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o777:
        raise InvalidModeError(f"mode {mode!r} out of range 0..0o777")
    return mode


def _timestamp(created) -> int:
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


def _owner(owner):
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


class FileActions:
    """An immutable chain of file actions; each method returns a longer chain."""

    __slots__ = ("actions",)

    def __init__(self, actions: tuple = ()):
        self.actions = actions

    def mkdir(self, path, mode=0o755, *, parents=False, owner=None, created=None) -> "FileActions":
        return FileActions(self.actions + (("mkdir", _path(path), _mode(mode), bool(parents), _owner(owner),
                                            _timestamp(created)),))

    def mkfile(self, path, data, mode=0o644, *, owner=None, created=None) -> "FileActions":
        if isinstance(data, str):
            data = _utf8(data, "mkfile data")
        if not isinstance(data, (bytes, bytearray)):
            raise ValidationError(f"mkfile data must be bytes or str, got {type(data).__name__}")
        return FileActions(self.actions + (("mkfile", _path(path), _mode(mode), bytes(data), _owner(owner),
                                            _timestamp(created)),))

    def rm(self, path, *, allow_not_found=False, allow_wildcard=False) -> "FileActions":
        return FileActions(self.actions + (("rm", _path(path), bool(allow_not_found), bool(allow_wildcard)),))

    def symlink(self, oldpath, newpath, *, owner=None, created=None) -> "FileActions":
        return FileActions(self.actions + (("symlink", _path(oldpath, "oldpath"), _path(newpath, "newpath"),
                                            _owner(owner), _timestamp(created)),))

    def copy(self, src_state, src_path, dest_path, *, mode=None, follow_symlinks=False,
             copy_dir_contents_only=False, include_patterns=(), exclude_patterns=(), required_paths=(),
             attempt_unpack=False, create_dest_path=False, allow_wildcard=False, allow_empty_wildcard=False,
             owner=None, created=None, always_replace_existing_dest_paths=False) -> "FileActions":
        """Copy ``src_path`` of ``src_state`` to ``dest_path``; options as Go's CopyInfo."""
        require_state(src_state, "copy source")
        if mode is not None and not isinstance(mode, str):
            _mode(mode)
        for name, pats in (("include_patterns", include_patterns), ("exclude_patterns", exclude_patterns),
                           ("required_paths", required_paths)):
            if isinstance(pats, str):
                raise ValidationError(f"{name} must be a list of patterns, not a str")
        src = go_clean(_path(src_path, "copy source path"))
        if not src.startswith("/"):
            src = go_join(src_state._settings.dir or "/", src)
        info = (mode, bool(follow_symlinks), bool(copy_dir_contents_only), tuple(include_patterns),
                tuple(exclude_patterns), tuple(required_paths), bool(attempt_unpack), bool(create_dest_path),
                bool(allow_wildcard), bool(allow_empty_wildcard), _owner(owner), _timestamp(created),
                bool(always_replace_existing_dest_paths))
        return FileActions(self.actions + (("copy", src_state._out, src, _path(dest_path, "copy dest"), info),))


def mkdir(path, mode=0o755, **kw) -> FileActions:
    return FileActions().mkdir(path, mode, **kw)


def mkfile(path, data, mode=0o644, **kw) -> FileActions:
    return FileActions().mkfile(path, data, mode, **kw)


def rm(path, **kw) -> FileActions:
    return FileActions().rm(path, **kw)


def symlink(oldpath, newpath, **kw) -> FileActions:
    return FileActions().symlink(oldpath, newpath, **kw)


def copy(src_state, src_path, dest_path, **kw) -> FileActions:
    return FileActions().copy(src_state, src_path, dest_path, **kw)


def _encode_action(action, parent: str, base: int) -> bytes:
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


class FileOp(Op):
    __slots__ = ("base", "parent", "actions", "_walk", "_action_bytes")

    def __init__(self, state: State, actions: tuple, meta, locations):
        self.base, self.parent, self.actions = state._out, state._settings.dir, actions
        self._walk = [o[0] for o in self._outputs()]
        self._action_bytes = None
        self.init_op(meta, locations, self._walk)

    def _outputs(self):
        """Go's allOutputs: walking from the last action back, base then copy source."""
        seen, outs = set(), []
        for action in reversed(self.actions):
            for out in (self.base, action[1] if action[0] == "copy" else None):
                if out is not None and out not in seen:
                    seen.add(out)
                    outs.append(out)
        return outs

    def walk_inputs(self):
        return self._walk

    def encode(self, ctx, digest_of) -> bytes:
        inputs, index_of = [], {}

        def add(out):
            key = (digest_of[out[0]], out[1])
            i = index_of.get(key)
            if i is None:
                i = index_of[key] = len(inputs)
                inputs.append(key)
            return i

        staged = []
        for action in self.actions:
            base = add(self.base) if self.base is not None else _SKIP
            second = _SKIP
            if action[0] == "copy" and action[1] is not None:
                second = add(action[1])
            staged.append((base, second, action))
        if self._action_bytes is None:  # the base index is 0 or -1, so these never change
            self._action_bytes = [_encode_action(a, self.parent, b) for b, _, a in staged]
        n = len(inputs)
        last = len(staged) - 1
        parts = []
        for i, ((base, second, _), body) in enumerate(zip(staged, self._action_bytes)):
            first = base if i == 0 else n + i - 1
            parts.append(_wire.len_field(2, _wire.int_field(1, first) + _wire.int_field(2, second)
                                         + _wire.int_field(3, 0 if i == last else _SKIP) + body))
        head = b"".join([ctx.input_field(d, x) for d, x in inputs])
        return head + CONSTRAINTS + _wire.len_field(4, b"".join(parts))


def file_op(state: State, actions, *, name=None, ignore_cache=False, location=None) -> State:
    require_state(state, "file() target")
    if not isinstance(actions, FileActions) or not actions.actions:
        raise ValidationError("file() needs a non-empty chain such as llb.mkdir(...).mkfile(...)")
    op = FileOp(state, actions.actions, op_meta({"file.base"}, name=name, ignore_cache=ignore_cache),
                current_locations(location))
    return state.with_output((op, 0))
