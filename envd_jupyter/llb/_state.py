"""The immutable State: an op output plus the settings later ops inherit.

Like Go's ``llb.State``: ``env``/``workdir``/``user``/``platform``/``network`` return new
States and every later ``run`` uses them. Settings live in one small record that is
replaced (not copied) on change, and the environment is a persistent list shared
between States, so building a long chain never copies inherited lists.
"""

from __future__ import annotations

import copy
import posixpath

from ._errors import NotAStateError, ValidationError
from ._op import BREAKPOINT_KEY, OpMeta
from ._platform import Platform

NET_MODES = {"sandbox": 0, "default": 0, "host": 1, "none": 2}
SECURITY_MODES = {"sandbox": 0, "insecure": 1}


def go_clean(p: str) -> str:
    """Go's path.Clean (posixpath.normpath keeps a leading "//", Go does not)."""
    if not p:
        return "."
    out = posixpath.normpath(p)
    return "/" + out.lstrip("/") if out.startswith("//") else out


def go_join(*parts: str) -> str:
    """Go's path.Join: join the non-empty parts, then Clean."""
    joined = "/".join(p for p in parts if p)
    return go_clean(joined) if joined else ""


class EnvList:
    """Go's EnvList: a persistent list of KEY=VALUE where re-setting a key moves it last."""

    __slots__ = ("parent", "key", "value", "_items")

    def __init__(self, parent: "EnvList | None" = None, key: str = "", value: str = ""):
        self.parent, self.key, self.value = parent, key, value
        self._items = None if parent is not None else {}

    def add(self, key: str, value: str) -> "EnvList":
        return EnvList(self, key, value)

    def items(self) -> dict:
        """Key -> value in Go's order; computed once per node from the nearest computed ancestor."""
        if self._items is None:
            pending, node = [], self
            while node._items is None:
                pending.append(node)
                node = node.parent
            items = dict(node._items)
            for n in reversed(pending):
                items.pop(n.key, None)
                items[n.key] = n.value
            self._items = items
        return self._items

    def to_list(self) -> list[str]:
        return [f"{k}={v}" for k, v in self.items().items()]


EMPTY_ENV = EnvList()


class Settings:
    """What a State passes on to later ops (Go keeps these as State values)."""

    __slots__ = ("env", "dir", "user", "platform", "network", "security", "hostname")

    def __init__(self, env=EMPTY_ENV, dir="/", user="", platform=None, network=0, security=0, hostname=""):
        self.env, self.dir, self.user, self.platform = env, dir, user, platform
        self.network, self.security, self.hostname = network, security, hostname

    def replace(self, **changes) -> "Settings":
        new = Settings.__new__(Settings)
        for name in Settings.__slots__:
            setattr(new, name, changes[name] if name in changes else getattr(self, name))
        return new


DEFAULT_SETTINGS = Settings()


def join_dir(current: str, path: str) -> str:
    """Go's Dir(): absolute paths are taken as given, relative ones join the current dir."""
    if not isinstance(path, str) or not path:
        raise ValidationError(f"working directory must be a non-empty string, got {path!r}")
    return path if path.startswith("/") else go_join(current or "/", path)


def net_mode(mode) -> int:
    if mode in NET_MODES:
        return NET_MODES[mode]
    raise ValidationError(f"unknown network mode {mode!r}: use sandbox, host or none")


def security_mode(mode) -> int:
    if mode in SECURITY_MODES:
        return SECURITY_MODES[mode]
    raise ValidationError(f"unknown security mode {mode!r}: use sandbox or insecure")


def require_state(value, what: str) -> "State":
    if not isinstance(value, State):
        raise NotAStateError(f"{what} must be an llb State, not {type(value).__name__}")
    return value


_set = object.__setattr__


def add_env_pairs(env, pairs):
    """``env`` (an EnvList) with each (key, value) added; the one env check for State.env and run(env=)."""
    for k, v in pairs:
        if not isinstance(k, str) or not k or "=" in k or not isinstance(v, str):
            raise ValidationError(f"env needs a non-empty key without '=' and a str value, got {k!r}={v!r}")
        env = env.add(k, v)
    return env


class State:
    """One filesystem result in the build graph plus inherited settings; immutable."""

    __slots__ = ("_out", "_settings", "_exec")

    def __init__(self, out=None, settings: Settings = DEFAULT_SETTINGS, exec_op=None):
        _set(self, "_out", out)  # (op, output index) or None for scratch
        _set(self, "_settings", settings)
        _set(self, "_exec", exec_op)

    def __setattr__(self, name, value):
        raise AttributeError(f"State is immutable; use its methods to derive a new State (tried to set {name})")

    def __copy__(self) -> "State":
        return self  # immutable: a copy is the same value

    def __deepcopy__(self, memo) -> "State":
        return self

    # -- inherited settings ---------------------------------------------------------
    def env(self, key: str | None = None, value: str | None = None, /, **kv: str) -> "State":
        """Set environment variables for later runs: ``env("K", "v")`` or ``env(K="v")``."""
        pairs = ([] if key is None else [(key, value)]) + list(kv.items())
        return self._with(env=add_env_pairs(self._settings.env, pairs))

    def workdir(self, path: str) -> "State":
        return self._with(dir=join_dir(self._settings.dir, path))

    def user(self, name: str) -> "State":
        if not isinstance(name, str):
            raise ValidationError(f"user must be a str, got {name!r}")
        return self._with(user=name)

    def platform(self, spec: "str | Platform") -> "State":
        return self._with(platform=Platform.parse(spec))

    def network(self, mode: str) -> "State":
        return self._with(network=net_mode(mode))

    def security(self, mode: str) -> "State":
        return self._with(security=security_mode(mode))

    def hostname(self, name: str) -> "State":
        return self._with(hostname=name)

    def get_env(self, key: str | None = None, default: str | None = None):
        """The value of one variable, or all of them as a dict when ``key`` is None."""
        items = self._settings.env.items()
        return dict(items) if key is None else items.get(key, default)

    def get_workdir(self) -> str:
        return self._settings.dir

    def get_user(self) -> str:
        return self._settings.user

    def get_platform(self) -> Platform | None:
        return self._settings.platform

    def get_network(self) -> str:
        return {0: "sandbox", 1: "host", 2: "none"}[self._settings.network]

    def breakpoint(self) -> "State":
        """Mark the step that made this state as a breakpoint for steppers (``Build.stepper``).

        The mark is op metadata (``envd.breakpoint`` in its description), never op bytes: every digest,
        and so the daemon's cache, stays as it was.
        """
        if self._out is None:
            raise ValidationError("scratch has no step to break at")
        op, index = self._out
        marked = copy.copy(op)
        marked.meta = op.meta.merged(OpMeta(description={BREAKPOINT_KEY: "true"}))
        return State((marked, index), self._settings, self._exec)

    @property
    def is_scratch(self) -> bool:
        return self._out is None

    def _with(self, **changes) -> "State":
        return State(self._out, self._settings.replace(**changes), self._exec)

    def with_output(self, out, out_platform: Platform | None = None, exec_op=None) -> "State":
        """Same settings, new filesystem (Go's WithOutput); an op's own platform wins."""
        settings = self._settings
        if out_platform is not None:
            settings = settings.replace(platform=out_platform)
        return State(out, settings, exec_op)

    # -- ops ------------------------------------------------------------------------
    def run(self, cmd, **options) -> "State":
        """Run ``cmd`` (argv list verbatim, or a str for /bin/sh -c); the root fs after it.

        Options: env, workdir, user, mounts, network, security, readonly_rootfs,
        ignore_cache, name, location, hostname, valid_exit_codes, extra_hosts ({host: ip}),
        ulimits ([(name, soft, hard)]), cgroup_parent, proxy_env ({"http_proxy": ...}),
        platform (this exec's platform; later runs on the result inherit it, as in Go).
        ``env``/``workdir``/``user`` apply to this exec only (Go's RunOption); use
        State.env/workdir/user for settings later runs inherit. With
        ``readonly_rootfs=True`` the result is the unchanged input root (as in Go): use
        ``mount_output`` to reach what the command wrote.
        """
        from ._exec import run

        return run(self, cmd, **options)

    def mount_output(self, dest: str) -> "State":
        """The contents of the writable mount at ``dest`` after the run that made this State."""
        from ._exec import mount_output

        return mount_output(self, dest)

    def file(self, actions, *, name=None, ignore_cache=False, location=None) -> "State":
        """Apply a chain of file actions (``llb.mkdir(...).mkfile(...)``) as one FileOp."""
        from ._fileop import file_op

        return file_op(self, actions, name=name, ignore_cache=ignore_cache, location=location)

    def mkdir(self, path, mode=0o755, *, parents=False, owner=None, created=None, **op_opts) -> "State":
        from ._fileop import mkdir

        return self.file(mkdir(path, mode, parents=parents, owner=owner, created=created), **op_opts)

    def mkfile(self, path, data, mode=0o644, *, owner=None, created=None, **op_opts) -> "State":
        from ._fileop import mkfile

        return self.file(mkfile(path, data, mode, owner=owner, created=created), **op_opts)

    def rm(self, path, *, allow_not_found=False, allow_wildcard=False, **op_opts) -> "State":
        from ._fileop import rm

        return self.file(rm(path, allow_not_found=allow_not_found, allow_wildcard=allow_wildcard), **op_opts)

    def copy(self, src_state, src_path, dest_path, *, name=None, ignore_cache=False, location=None, **copy_opts):
        from ._fileop import copy

        return self.file(copy(src_state, src_path, dest_path, **copy_opts), name=name,
                         ignore_cache=ignore_cache, location=location)

    def symlink(self, oldpath, newpath, *, owner=None, created=None, **op_opts) -> "State":
        from ._fileop import symlink

        return self.file(symlink(oldpath, newpath, owner=owner, created=created), **op_opts)

    def merge(self, *others: "State", **op_opts) -> "State":
        from ._merge import merge

        return merge([self, *others], **op_opts)

    def marshal(self, *, platform=None, local_unique_id: str | None = None):
        """The Definition of this State's graph (see envd_jupyter.llb._marshal)."""
        from ._marshal import marshal

        return marshal(self, platform=platform, local_unique_id=local_unique_id)

    def __repr__(self) -> str:
        if self._out is None:
            return "State(scratch)"
        op, index = self._out
        return f"State({type(op).__name__}#{index}, workdir={self._settings.dir!r})"
