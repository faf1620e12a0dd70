"""LLB in Python: build BuildKit graphs whose op bytes and digests equal Go's client/llb.

    from envd_jupyter import llb
    base = llb.image("python:3.11-slim").env(PIP_NO_CACHE_DIR="1").workdir("/app")
    app = base.copy(llb.local("context"), "requirements.txt", "/app/")
    app = app.run("pip install -r requirements.txt",
                  mounts=[llb.cache_mount("/root/.cache/pip", "pip")])
    definition = app.marshal()          # Definition: .digests, .to_bytes(), .to_json()
    definition.vertices()               # [llb.Vertex(digest, kind, name, inputs, locations, attrs)]
    definition.to_graph()               # {"version", "head", "nodes", "edges"}: JSON for views

Parity: for the same graph ``State.marshal()`` gives the bytes Go's ``State.Marshal``
gives at BuildKit v0.26.3 (tests/llb pin each op kind against the Go source).
``local()`` draws a random ``local.unique`` per marshal like Go; pass ``unique_id=`` or
``marshal(local_unique_id=...)`` for stable digests.

Source locations: every op-creating call takes ``location=SourceLocation(file, line)``,
and ``with llb.located(SourceLocation("cell 3", 2)):`` applies one to every op created
inside the block. They land in the Definition's source map (pb.Source), where BuildKit
reports them with errors; ``Definition.locations(digest)`` reads them back.

Capabilities: ``Definition.required_caps``; ``Definition.lower_for(daemon_caps)``
rewrites merges for daemons without ``mergeop`` (see envd_jupyter.llb._caps).

Where we knowingly differ from Go (none changes the bytes of a graph both accept):
validation is stricter (duplicate mount destinations, relative mount paths, modes
above 0o777, unknown modes raise LLBError at build time instead of failing in the
daemon); ``git()`` over ssh never runs ssh-keyscan (pass ``known_ssh_hosts``);
``bind_mount(source="/")`` writes no selector (Go's default); ``str`` commands run
through ``/bin/sh -c`` (Go's Shlex splits instead: pass a list for argv).
"""

from ._op import BREAKPOINT_KEY, OpMeta, SourceLocation, located
from ._caps import lower_for
from ._definition import Definition
from ._diff import diff
from ._errors import (
    DefinitionError,
    DuplicateMountError,
    EmptyCommandError,
    InvalidModeError,
    InvalidMountError,
    InvalidPlatformError,
    InvalidReferenceError,
    LLBError,
    MissingCapabilityError,
    NotAStateError,
    ValidationError,
)
from ._exec import bind_mount, cache_mount, secret_env, secret_mount, ssh_mount, tmpfs_mount
from ._graph import Vertex
from ._fileop import BoundActions, FileActions, copy, mkdir, mkfile, rm, symlink
from ._merge import merge
from ._platform import Platform, default_platform
from ._source import git, http, image, local, oci_layout, scratch
from ._state import State

__all__ = [
    "BREAKPOINT_KEY", "BoundActions", "Definition", "FileActions", "OpMeta", "Platform", "SourceLocation", "State",
    "Vertex", "bind_mount", "cache_mount", "copy", "default_platform", "diff", "git", "http", "image", "local",
    "located", "lower_for", "merge", "mkdir", "mkfile", "oci_layout", "rm", "scratch", "secret_env",
    "secret_mount", "ssh_mount", "symlink", "tmpfs_mount",
    "DefinitionError", "DuplicateMountError", "EmptyCommandError", "InvalidModeError", "InvalidMountError",
    "InvalidPlatformError", "InvalidReferenceError", "LLBError", "MissingCapabilityError", "NotAStateError",
    "ValidationError",
]
