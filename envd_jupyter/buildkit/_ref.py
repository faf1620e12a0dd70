"""A solved result inside an interactive build, and what reading a directory in it returns."""

from __future__ import annotations

import stat as st
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from envd_jupyter.buildkit._session.localwalk import unix_mode

if TYPE_CHECKING:
    from envd_jupyter.buildkit._container import ExecResult
    from envd_jupyter.buildkit._gateway import Build


@dataclass(frozen=True)
class FileStat:
    """One file in a ref, as the daemon's ``fsutil`` stat reports it; ``mode`` is a unix ``st_mode``."""

    path: str
    mode: int
    size: int
    mod_time: float  # seconds since the epoch
    uid: int
    gid: int
    linkname: str = ""

    @classmethod
    def from_pb(cls, stat) -> "FileStat":
        return cls(stat.path, unix_mode(stat.mode), stat.size, stat.modTime / 1e9, stat.uid, stat.gid, stat.linkname)

    @property
    def is_dir(self) -> bool:
        return st.S_ISDIR(self.mode)

    @property
    def is_symlink(self) -> bool:
        return st.S_ISLNK(self.mode)

    @property
    def is_file(self) -> bool:
        return st.S_ISREG(self.mode)


@dataclass(frozen=True)
class Ref:
    """A solved state inside an interactive build (readable until the build ends).

    ``elapsed``: seconds the daemon took to answer the solve; ``cached``: whether the Status stream
    reported the state's last step served from the daemon's cache (None: not evaluated, or not reported).
    """

    id: str
    build: "Build" = field(repr=False, compare=False)
    elapsed: float = 0.0
    cached: bool | None = None

    def read_file(self, path: str, *, offset: int | None = None, length: int | None = None) -> bytes:
        return self.build.read_file(self, path, offset=offset, length=length)

    def read_dir(self, path: str = "/", *, include: str | None = None) -> list[FileStat]:
        return self.build.read_dir(self, path, include=include)

    def stat(self, path: str) -> FileStat:
        return self.build.stat(self, path)

    def exec(self, argv, **options) -> "ExecResult":
        """Run a command in a container over this ref's filesystem (``Build.exec``'s options)."""
        return self.build.exec(self, argv, **options)
