"""FileOp: mkdir / mkfile / rm / copy / symlink, alone or chained into one op (Go fileop.go).

``llb.mkdir(...).mkfile(...).copy(...)`` is a FileActions chain; ``State.file(chain)``
makes ONE FileOp. A chain bound to another State with ``chain.with_state(st)`` (Go's
``WithState``) can be a copy source: its actions join the same FileOp. Relative paths
resolve against the bound State's workdir, copy sources against the source's workdir;
timestamps and copy mode default to -1. Like Go v0.26.3 the op's capabilities are just
``file.base`` (Go's per-action caps loop runs over an empty list), so metadata matches.
"""

from __future__ import annotations

from . import _wire
from ._fileaction import check_path, encode_action, parse_owner, timestamp, utf8
from ._op import CONSTRAINTS, Op, current_locations, op_meta
from ._errors import ValidationError, check_mode
from ._state import State, go_clean, go_join, require_state

_SKIP = -1


class FileActions:
    """An immutable chain of file actions; each method returns a longer chain."""

    __slots__ = ("actions",)

    def __init__(self, actions: tuple = ()):
        self.actions = actions

    def mkdir(self, path, mode=0o755, *, parents=False, owner=None, created=None) -> "FileActions":
        return FileActions(self.actions + (("mkdir", check_path(path), check_mode(mode), bool(parents),
                                            parse_owner(owner), timestamp(created)),))

    def mkfile(self, path, data, mode=0o644, *, owner=None, created=None) -> "FileActions":
        if isinstance(data, str):
            data = utf8(data, "mkfile data")
        if not isinstance(data, (bytes, bytearray)):
            raise ValidationError(f"mkfile data must be bytes or str, got {type(data).__name__}")
        return FileActions(self.actions + (("mkfile", check_path(path), check_mode(mode), bytes(data),
                                            parse_owner(owner), timestamp(created)),))

    def rm(self, path, *, allow_not_found=False, allow_wildcard=False) -> "FileActions":
        return FileActions(self.actions + (("rm", check_path(path), bool(allow_not_found), bool(allow_wildcard)),))

    def symlink(self, oldpath, newpath, *, owner=None, created=None) -> "FileActions":
        return FileActions(self.actions + (("symlink", check_path(oldpath, "oldpath"), check_path(newpath, "newpath"),
                                            parse_owner(owner), timestamp(created)),))

    def copy(self, src, src_path, dest_path, *, mode=None, follow_symlinks=False,
             copy_dir_contents_only=False, include_patterns=(), exclude_patterns=(), required_paths=(),
             attempt_unpack=False, create_dest_path=False, allow_wildcard=False, allow_empty_wildcard=False,
             owner=None, created=None, always_replace_existing_dest_paths=False) -> "FileActions":
        """Copy ``src_path`` of ``src`` (a State or a bound chain) to ``dest_path``; options as Go's CopyInfo."""
        if isinstance(src, BoundActions):
            source, src_dir = src, src.dir
        else:
            source, src_dir = require_state(src, "copy source")._out, src._settings.dir
        if mode is not None and not isinstance(mode, str):
            check_mode(mode)
        for name, pats in (("include_patterns", include_patterns), ("exclude_patterns", exclude_patterns),
                           ("required_paths", required_paths)):
            if isinstance(pats, str):
                raise ValidationError(f"{name} must be a list of patterns, not a str")
        path = go_clean(check_path(src_path, "copy source path"))
        if not path.startswith("/"):
            path = go_join(src_dir or "/", path)
        info = (mode, bool(follow_symlinks), bool(copy_dir_contents_only), tuple(include_patterns),
                tuple(exclude_patterns), tuple(required_paths), bool(attempt_unpack), bool(create_dest_path),
                bool(allow_wildcard), bool(allow_empty_wildcard), parse_owner(owner), timestamp(created),
                bool(always_replace_existing_dest_paths))
        return FileActions(self.actions + (("copy", source, path, check_path(dest_path, "copy dest"), info),))

    def with_state(self, state: State) -> "BoundActions":
        """This chain applied to ``state``, usable as a copy source (Go's FileAction.WithState)."""
        require_state(state, "with_state() target")
        if not self.actions:
            raise ValidationError("with_state() needs a non-empty chain")
        return BoundActions(self.actions, state)


class BoundActions:
    """A chain bound to the State it applies to: the FileOp's own chain or a copy source."""

    __slots__ = ("actions", "out", "dir")

    def __init__(self, actions: tuple, state: State):
        self.actions, self.out, self.dir = actions, state._out, state._settings.dir


def mkdir(path, mode=0o755, **kw) -> FileActions:
    return FileActions().mkdir(path, mode, **kw)


def mkfile(path, data, mode=0o644, **kw) -> FileActions:
    return FileActions().mkfile(path, data, mode, **kw)


def rm(path, **kw) -> FileActions:
    return FileActions().rm(path, **kw)


def symlink(oldpath, newpath, **kw) -> FileActions:
    return FileActions().symlink(oldpath, newpath, **kw)


def copy(src, src_path, dest_path, **kw) -> FileActions:
    return FileActions().copy(src, src_path, dest_path, **kw)


def _all_outputs(bound: BoundActions, seen: set, outs: list) -> list:
    """Go's allOutputs: from the last action back, its State, then its copy source."""
    for action in reversed(bound.actions):
        sources = (bound.out, action[1]) if action[0] == "copy" else (bound.out,)
        for out in sources:
            if isinstance(out, BoundActions):
                _all_outputs(out, seen, outs)
            elif out is not None and out not in seen:
                seen.add(out)
                outs.append(out)
    return outs


class _Rows:
    """Go's marshalState: inputs de-duplicated by (digest, index), actions in add order."""

    __slots__ = ("digest_of", "inputs", "index_of", "rows", "visited")

    def __init__(self, digest_of):
        self.digest_of, self.inputs, self.index_of, self.rows, self.visited = digest_of, [], {}, [], {}

    def add_input(self, out) -> int:
        key = (self.digest_of[out[0]], out[1])
        i = self.index_of.get(key)
        if i is None:
            i = self.index_of[key] = len(self.inputs)
            self.inputs.append(key)
        return i

    def add_chain(self, bound: BoundActions) -> int:
        """Add every action of ``bound`` once; the target (row) of its last action."""
        target = -1
        for position, action in enumerate(bound.actions):
            known = self.visited.get((id(bound), position))
            if known is not None:
                target = known
                continue
            base = self.add_input(bound.out) if bound.out is not None else _SKIP
            first = (False, base) if position == 0 else (True, target)
            second = (False, _SKIP)
            if action[0] == "copy":
                if isinstance(action[1], BoundActions):
                    second = (True, self.add_chain(action[1]))
                elif action[1] is not None:
                    second = (False, self.add_input(action[1]))
            target = len(self.rows)
            self.rows.append((first, second, encode_action(action, bound.dir, base)))
            self.visited[(id(bound), position)] = target
        return target


class FileOp(Op):
    __slots__ = ("chain", "_walk")

    def __init__(self, state: State, actions: tuple, meta, locations):
        self.chain = BoundActions(actions, state)
        self._walk = [o[0] for o in _all_outputs(self.chain, set(), [])]
        self.init_op(meta, locations, self._walk)

    def walk_inputs(self):
        return self._walk

    def encode(self, ctx, digest_of) -> bytes:
        rows = _Rows(digest_of)
        rows.add_chain(self.chain)
        n, last, parts = len(rows.inputs), len(rows.rows) - 1, []
        for i, ((rel1, v1), (rel2, v2), body) in enumerate(rows.rows):
            parts.append(_wire.len_field(2, _wire.int_field(1, n + v1 if rel1 else v1)
                                         + _wire.int_field(2, n + v2 if rel2 else v2)
                                         + _wire.int_field(3, 0 if i == last else _SKIP) + body))
        head = b"".join([ctx.input_field(d, x) for d, x in rows.inputs])
        return head + CONSTRAINTS + _wire.len_field(4, b"".join(parts))


def file_op(state: State, actions, *, name=None, ignore_cache=False, location=None) -> State:
    require_state(state, "file() target")
    if not isinstance(actions, FileActions) or not actions.actions:
        raise ValidationError("file() needs a non-empty chain such as llb.mkdir(...).mkfile(...)")
    op = FileOp(state, actions.actions, op_meta({"file.base"}, name=name, ignore_cache=ignore_cache),
                current_locations(location))
    return state.with_output((op, 0))
