"""Walk a local context the way fsutil's sender does: the same entries, order and stat fields.

BuildKit hashes what it receives, so any difference from Go's walk (order, mode bits, hardlink
encoding, which parent dirs appear when only a child is included) changes cache keys or makes
the daemon's receiver reject the stream ("changes out of order").
"""

from __future__ import annotations

import os
import posixpath
import stat as st
from dataclasses import dataclass
from typing import Iterator

from envd_jupyter._proto import fsutil_pb2
from envd_jupyter.buildkit._session.patterns import PatternMatcher, clean

# Go os.FileMode bits: fsutil puts these (not unix S_IF* bits) into Stat.mode.
GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27
GO_MODE_DEVICE = 1 << 26
GO_MODE_NAMED_PIPE = 1 << 25
GO_MODE_SOCKET = 1 << 24
GO_MODE_SETUID = 1 << 23
GO_MODE_SETGID = 1 << 22
GO_MODE_CHAR_DEVICE = 1 << 21
GO_MODE_STICKY = 1 << 20
GO_MODE_IRREGULAR = 1 << 19
GO_MODE_TYPE = (
    GO_MODE_DIR | GO_MODE_SYMLINK | GO_MODE_NAMED_PIPE | GO_MODE_SOCKET | GO_MODE_DEVICE
    | GO_MODE_CHAR_DEVICE | GO_MODE_IRREGULAR
)


def go_mode(unix_mode: int) -> int:
    """Unix st_mode → Go os.FileMode, with the socket bit cleared as fsutil's mkstat does."""
    mode = unix_mode & 0o777
    kind = st.S_IFMT(unix_mode)
    mode |= {
        st.S_IFDIR: GO_MODE_DIR,
        st.S_IFLNK: GO_MODE_SYMLINK,
        st.S_IFIFO: GO_MODE_NAMED_PIPE,
        st.S_IFBLK: GO_MODE_DEVICE,
        st.S_IFCHR: GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE,
    }.get(kind, 0)
    if unix_mode & st.S_ISUID:
        mode |= GO_MODE_SETUID
    if unix_mode & st.S_ISGID:
        mode |= GO_MODE_SETGID
    if unix_mode & st.S_ISVTX:
        mode |= GO_MODE_STICKY
    return mode


def unix_mode(go: int) -> int:
    """Go os.FileMode → unix st_mode (for the receiving side)."""
    mode = go & 0o777
    if go & GO_MODE_DIR:
        mode |= st.S_IFDIR
    elif go & GO_MODE_SYMLINK:
        mode |= st.S_IFLNK
    elif go & GO_MODE_NAMED_PIPE:
        mode |= st.S_IFIFO
    elif go & GO_MODE_CHAR_DEVICE:
        mode |= st.S_IFCHR
    elif go & GO_MODE_DEVICE:
        mode |= st.S_IFBLK
    elif go & GO_MODE_SOCKET:
        mode |= st.S_IFSOCK
    else:
        mode |= st.S_IFREG
    if go & GO_MODE_SETUID:
        mode |= st.S_ISUID
    if go & GO_MODE_SETGID:
        mode |= st.S_ISGID
    if go & GO_MODE_STICKY:
        mode |= st.S_ISVTX
    return mode


def is_regular(go: int) -> bool:
    """fsutil's fileCanRequestData: only regular files get an id the receiver may request."""
    return go & GO_MODE_TYPE == 0


@dataclass
class Entry:
    stat: fsutil_pb2.Stat
    abspath: str


def make_stat(abspath: str, relpath: str, info: os.stat_result) -> fsutil_pb2.Stat:
    is_dir = st.S_ISDIR(info.st_mode)
    stat = fsutil_pb2.Stat(
        path=relpath, mode=go_mode(info.st_mode), uid=info.st_uid, gid=info.st_gid, modTime=info.st_mtime_ns
    )
    if not is_dir:
        stat.size = info.st_size
        if st.S_ISCHR(info.st_mode) or st.S_ISBLK(info.st_mode):
            stat.devmajor = (info.st_rdev >> 8) & 0xFFF
            stat.devminor = (info.st_rdev & 0xFF) | ((info.st_rdev >> 12) & 0xFFF00)
        if st.S_ISLNK(info.st_mode):
            stat.linkname = os.readlink(abspath)
    try:
        names = os.listxattr(abspath, follow_symlinks=False)
    except OSError:
        names = []
    for name in names:
        if not name.startswith("com.apple."):
            try:
                stat.xattrs[name] = os.getxattr(abspath, name, follow_symlinks=False)
            except OSError:
                pass
    return stat


def _sort_key(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


@dataclass
class _Dir:
    abspath: str
    rel: str
    info: os.stat_result
    include_info: list[bool] | None
    exclude_info: list[bool] | None
    client_info: list[bool] | None
    emitted: bool


class Walker:
    """One filtered walk of ``root`` (include/exclude/followpaths as the daemon sent them).

    ``client_excludes`` (``.dockerignore``, the user's excludes) are a filter of their own, applied
    before the daemon's patterns, as fsutil's FilterFS under BuildKit's client: nothing the daemon
    sends (a ``!secret.env`` negation, include patterns, follow paths) brings back what they exclude.
    """

    def __init__(self, root: str, includes=(), excludes=(), follow_paths=(), client_excludes=()):
        self.root = os.path.realpath(root)
        if not os.path.isdir(self.root):
            raise NotADirectoryError(f"local context {root!r} is not a directory")
        includes = list(includes) + resolve_follow_paths(self.root, follow_paths)
        self.include = PatternMatcher(includes) or None
        self.exclude = PatternMatcher(list(excludes)) or None
        self.client = PatternMatcher(list(client_excludes)) or None
        # A directory the client excludes is skipped whole unless one of its own negations may reach inside.
        self._client_negations_literal = bool(self.client) and self.client.only_literal_prefixes(exclusions=True)
        self._prune_includes = bool(self.include) and self.include.only_literal_prefixes(exclusions=False)
        self._prune_excludes = bool(self.exclude) and self.exclude.only_literal_prefixes(exclusions=True)
        self._hardlinks: dict[tuple[int, int], str] = {}

    def __iter__(self) -> Iterator[Entry]:
        self._hardlinks = {}
        return self._walk_dir(self.root, "", [])

    def _walk_dir(self, directory: str, rel_dir: str, parents: list[_Dir]) -> Iterator[Entry]:
        """Depth-first with names sorted bytewise per directory, as Go's filepath.WalkDir."""
        try:
            names = sorted(os.listdir(directory), key=_sort_key)
        except (FileNotFoundError, NotADirectoryError):
            return
        parent = parents[-1] if parents else None
        for name in names:
            abspath, rel = directory + "/" + name, rel_dir + name
            try:
                info = os.lstat(abspath)
            except FileNotFoundError:
                continue
            is_dir = st.S_ISDIR(info.st_mode)
            skip, include_info, exclude_info, client_info = False, None, None, None
            if self.client:
                matched, client_info = self.client.matches_with_parent(rel, parent and parent.client_info)
                if matched:
                    if is_dir and not self._client_may_reinclude(rel):
                        continue
                    skip = True
            if self.include:
                matched, include_info = self.include.matches_with_parent(rel, parent and parent.include_info)
                if not matched:
                    if is_dir and self._prune_includes and not self.include.may_match_inside(rel, False):
                        continue
                    skip = True
            if self.exclude:
                matched, exclude_info = self.exclude.matches_with_parent(rel, parent and parent.exclude_info)
                if matched:
                    if is_dir and self._prune_excludes and not (
                        self.exclude.has_exclusions and self.exclude.may_match_inside(rel, True)
                    ):
                        continue
                    skip = True
            if not skip:
                for ancestor in parents:
                    if not ancestor.emitted:
                        ancestor.emitted = True
                        yield Entry(make_stat(ancestor.abspath, ancestor.rel, ancestor.info), ancestor.abspath)
                yield self._entry(abspath, rel, info)
            if is_dir:
                here = _Dir(abspath, rel, info, include_info, exclude_info, client_info, emitted=not skip)
                yield from self._walk_dir(abspath, rel + "/", parents + [here])

    def _client_may_reinclude(self, directory: str) -> bool:
        if not self.client.has_exclusions:
            return False
        return not self._client_negations_literal or self.client.may_match_inside(directory, True)

    def _entry(self, abspath: str, rel: str, info: os.stat_result) -> Entry:
        stat = make_stat(abspath, rel, info)
        if st.S_ISREG(info.st_mode) and info.st_nlink > 1:
            first = self._hardlinks.setdefault((info.st_dev, info.st_ino), rel)
            if first != rel:
                stat.linkname, stat.size = first, 0
        return Entry(stat, abspath)


def resolve_follow_paths(root: str, paths) -> list[str]:
    """Paths plus the in-context targets of any symlinks along them (fsutil FollowLinks)."""
    resolved: set[str] = set()

    def follow(path: str, depth: int) -> None:
        if depth > 40:
            return
        parts = clean(posixpath.join(".", path)).split("/")
        current = ""
        for i, part in enumerate(parts):
            current = posixpath.join(current, part) if current else part
            full = os.path.join(root, current)
            rest = "/".join(parts[i + 1 :])
            if os.path.islink(full):
                resolved.add(current)
                target = os.readlink(full)
                base = "" if target.startswith("/") else posixpath.dirname(current)
                joined = clean(posixpath.join("/", base, target)).lstrip("/")
                follow(posixpath.join(joined, rest) if rest else joined, depth + 1)
                return
        resolved.add(current)

    for path in paths:
        follow(path, 0)
    ordered = sorted(p for p in resolved if p and p != ".")
    return [p for p in ordered if not any(p.startswith(q + "/") for q in ordered if q != p)]
