"""What a build.envd says, recorded call by call (with the user's line) before any graph exists.

Recording first and compiling later (``graph.compile_environment``) is what lets envd-managed
installs become parallel branches: order of calls inside the managed stage never matters, while
the user stage (``run``, ``io.copy``) keeps the order it was written in.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from envd_jupyter import llb
from envd_jupyter.lang._errors import EnvdArgumentError, Location
from envd_jupyter.lang._image_config import ImageConfig

DEFAULT_BASE = "ubuntu:22.04"  # envd v1's default for base(image=...) (pkg/lang/ir/v1/consts.go)
_LANG_DIR = str(Path(__file__).parent)


@dataclass(frozen=True)
class Group:
    """One envd-managed install call: one cacheable step, one parallel branch."""

    role: str  # apt | python | pip | conda | http
    items: tuple[str, ...]
    at: Location
    options: tuple[tuple[str, Any], ...] = ()

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)


@dataclass(frozen=True)
class UserStep:
    """One user-stage statement, applied in written order on top of the managed stage."""

    kind: str  # run | copy | install (a managed install written after a user step in the chaining form)
    at: Location
    group: Group | None = None
    commands: tuple[str, ...] = ()
    mount_host: bool = False
    source: str = ""
    target: str = ""
    image: str = ""


@dataclass(frozen=True)
class Breakpoint:
    """``breakpoint()``: steppers pause once the steps recorded before it are built (op metadata only).

    ``after`` counts the user steps recorded before the call: 0 is the envd-managed stage as a whole.
    """

    after: int
    at: Location


def caller_location() -> Location:
    """The first stack frame outside envd_jupyter.lang: the line of the user's Python that called us."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_LANG_DIR):
        frame = frame.f_back
    if frame is None:
        return Location("<unknown>")
    return Location(frame.f_code.co_filename, frame.f_lineno or 0)


def as_location(at: Location | str | None) -> Location:
    if isinstance(at, Location):
        return at
    if isinstance(at, str):
        file, _, line = at.rpartition(":")
        return Location(file, int(line)) if line.isdigit() and file else Location(at)
    return caller_location()


_STARLARK_TYPES = {str: "string", bool: "bool", int: "int", float: "float", type(None): "NoneType", dict: "dict",
                   list: "list", tuple: "tuple", bytes: "bytes"}


def starlark_type(value: Any) -> str:
    """The name Starlark gives the type of ``value`` (``string``, not ``str``), as envd's errors say it."""
    return _STARLARK_TYPES.get(type(value), type(value).__name__)


def string_list(rule: str, param: str, value: Any, at: Location) -> tuple[str, ...]:
    """envd's ``*starlark.List`` of strings (omitted: empty). A bare string is refused as envd refuses it:
    ``name="git"`` is a mistake for ``name=["git"]``, not a list of one."""
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise EnvdArgumentError(f"{rule}: for parameter {param}: got {starlark_type(value)}, want list", at)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise EnvdArgumentError(f"{rule}: for parameter {param}: item {i} is {starlark_type(item)}, want string", at)
    return tuple(value)


def string_arg(rule: str, param: str, value: Any, at: Location) -> str:
    """A str argument, checked when called, so a wrong type names the user's line and not a later compile."""
    if not isinstance(value, str):
        raise EnvdArgumentError(f"{rule}: for parameter {param}: got {starlark_type(value)}, want string", at)
    return value


def image_arg(rule: str, param: str, value: Any, at: Location) -> str:
    """An image reference, checked now with Docker's own rules: a typo (``"python:3.12 "``) names the
    user's line instead of failing later inside the graph compiler."""
    ref = string_arg(rule, param, value, at)
    try:
        llb.image(ref)
    except llb.InvalidReferenceError as err:
        raise EnvdArgumentError(f"{rule}: for parameter {param}: {err}", at) from None
    return ref


def bool_arg(rule: str, param: str, value: Any, at: Location) -> bool:
    if not isinstance(value, bool):
        raise EnvdArgumentError(f"{rule}: for parameter {param}: got {starlark_type(value)}, want bool", at)
    return value


def int_arg(rule: str, param: str, value: Any, at: Location) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EnvdArgumentError(f"{rule}: for parameter {param}: got {starlark_type(value)}, want int", at)
    return value


def port_arg(rule: str, param: str, value: Any, at: Location, *, allow_zero: bool = False) -> int:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 65536:
        raise EnvdArgumentError(f"{rule}: {param} must be a port number, got {value!r}", at)
    return value


@dataclass(frozen=True)
class RuntimeGraph:
    """How the image is meant to run: envd's ``ir.RuntimeGraph`` (written as its image label, which
    ``envd up`` reads) plus what envd keeps in its general graph (mounts, GPUs, shared memory)."""

    commands: tuple[tuple[str, str], ...] = ()
    daemon: tuple[tuple[str, ...], ...] = ()
    init_script: tuple[tuple[str, ...], ...] = ()
    expose: tuple[tuple[int, int, str, str], ...] = ()  # envd port, host port, service, listen address
    mounts: tuple[tuple[str, str], ...] = ()  # host path (or envd://name for data.envd), envd path
    gpus: int = 0
    shm_size: int = 0

    def with_commands(self, commands: dict[str, str]) -> RuntimeGraph:
        return replace(self, commands=tuple({**dict(self.commands), **commands}.items()))


@dataclass
class Environment:
    """The recorded content of one envd environment.

    ``name`` is only a label: cache mount ids never depend on it, so two environments share
    apt and pip caches. ``context`` is the build context directory (requirements files are read
    from it; ``io.copy`` and ``mount_host`` refer to it through the ``context`` local source).
    """

    name: str = "envd"
    context: Path = field(default_factory=Path.cwd)
    base_image: str | None = None
    # What to start from instead of an image: an llb.State, or a function of ``parallel`` giving one
    # (the chain's merge()/diff() results, whose inputs compile in the form the whole graph takes).
    base_state: Any = None
    base_at: Location | None = None
    dev: bool = False
    python_version: str | None = None
    python_at: Location | None = None
    groups: list[Group] = field(default_factory=list)
    user_steps: list[UserStep] = field(default_factory=list)
    breakpoints: list[Breakpoint] = field(default_factory=list)
    pip_index: dict[str, Any] | None = None
    apt_source: tuple[str, Location] | None = None
    config: ImageConfig = field(default_factory=ImageConfig)
    runtime: RuntimeGraph = field(default_factory=RuntimeGraph)
    shell_name: str = "base"
    conda: tuple[bool, Location] | None = None  # install.conda(use_mamba): the python branch is conda's
    conda_channel: str | None = None  # config.conda_channel: .condarc text of the envd conda env
    cuda: tuple[str, str, Location] | None = None  # install.cuda(version, cudnn): picks the base image
    cran_mirror: str | None = None
    julia_pkg_server: str | None = None
    owner: tuple[int, int] | None = None  # config.owner(uid, gid): owner of copied and downloaded files
    git_config: tuple[str, str, str, Location] | None = None  # name, email, editor (written in dev images)
    build_env: tuple[tuple[str, str], ...] = ()  # variables every build step sees too (cog's environment)

    def clone(self) -> Environment:
        """An independent copy (everything but the lists is an immutable value, so shallow is enough)."""
        return replace(self, groups=list(self.groups), user_steps=list(self.user_steps),
                       breakpoints=list(self.breakpoints),
                       pip_index=dict(self.pip_index) if self.pip_index else None)

    def groups_of(self, role: str) -> list[Group]:
        return [g for g in self.groups if g.role == role]

    def needs_python(self) -> bool:
        return self.python_version is not None or self.conda is not None \
            or any(g.role in ("pip", "conda") for g in self.groups)

    def add_group(self, role: str, items: tuple[str, ...], at: Location, **options: Any) -> None:
        self.groups.append(Group(role, items, at, tuple(sorted(options.items()))))

    def marshal(self, caps=None, *, network: str | None = None, **marshal_options: Any):
        """The llb.Definition in the graph form a daemon with ``caps`` accepts (``Client.caps()`` or its
        ``.llb`` ids): the parallel merge/diff form when it has MergeOp and DiffOp, or ``caps`` is None,
        else the sequential one. ``marshal_options`` go to ``State.marshal`` (platform, local_unique_id)."""
        from envd_jupyter.lang._graph import accepts_merge, compile_environment  # _graph imports this module

        parallel = caps is None or accepts_merge(caps)
        return compile_environment(self, network=network, parallel=parallel).marshal(**marshal_options)

    def to_dot(self, caps=None, **options: Any) -> str:
        """Graphviz text of ``marshal(caps, **options)``."""
        return self.marshal(caps, **options).to_dot()
