"""ExecOp: ``State.run`` and its mounts (Go client/llb exec.go).

Mounts are sorted by destination, writable bind mounts get output indexes in that order
(the root "/" is output 0), cache/tmpfs/readonly mounts output -1, and secret and ssh
mounts follow the sorted ones in the order given, as in Go's ExecOp.Marshal.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _wire
from ._op import CONSTRAINTS, Op, current_locations, op_meta
from ._execmeta import add_env, argv, encode_meta
from ._errors import DuplicateMountError, InvalidMountError, ValidationError, check_mode
from ._platform import Platform
from ._state import State, join_dir, net_mode, require_state, security_mode

_SKIP = -1
SHARING = {"shared": 0, "private": 1, "locked": 2}


def _dest(dest) -> str:
    if not isinstance(dest, str) or not dest.startswith("/"):
        raise InvalidMountError(f"mount destination must be an absolute path, got {dest!r}")
    return dest


def _id(value, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
        raise ValidationError(f"{what} must be an int in 0..2**32-1, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class BindMount:
    dest: str
    state: State
    source: str = "/"
    readonly: bool = False


@dataclass(frozen=True, slots=True)
class CacheMount:
    dest: str
    id: str
    sharing: str = "shared"


@dataclass(frozen=True, slots=True)
class TmpfsMount:
    dest: str
    size: int | None = None


@dataclass(frozen=True, slots=True)
class SecretMount:
    dest: str
    id: str
    uid: int = 0
    gid: int = 0
    mode: int = 0o400
    optional: bool = False


@dataclass(frozen=True, slots=True)
class SecretEnv:
    name: str
    id: str
    optional: bool = False


@dataclass(frozen=True, slots=True)
class SSHMount:
    dest: str | None = None
    id: str | None = None
    uid: int = 0
    gid: int = 0
    mode: int = 0o600
    optional: bool = False


def bind_mount(dest, state, *, source="/", readonly=False) -> BindMount:
    """Mount ``state`` (at its path ``source``; "/" means the whole fs, no selector) on ``dest``."""
    require_state(state, "bind_mount state")
    if not isinstance(source, str) or not source:
        raise InvalidMountError(f"bind_mount source must be a path, got {source!r}")
    return BindMount(_dest(dest), state, source, bool(readonly))


def cache_mount(dest, id, sharing="shared") -> CacheMount:
    if not isinstance(id, str) or not id:
        raise InvalidMountError(f"cache_mount needs a non-empty id, got {id!r}")
    if sharing not in SHARING:
        raise InvalidMountError(f"unknown cache sharing {sharing!r}: use shared, private or locked")
    return CacheMount(_dest(dest), id, sharing)


def tmpfs_mount(dest, size=None) -> TmpfsMount:
    if size is not None and (not isinstance(size, int) or size < 0):
        raise InvalidMountError(f"tmpfs size must be a non-negative int of bytes, got {size!r}")
    return TmpfsMount(_dest(dest), size)


def secret_mount(dest, id, *, uid=0, gid=0, mode=0o400, optional=False) -> SecretMount:
    if not isinstance(id, str) or not id:
        raise InvalidMountError(f"secret_mount needs a non-empty id, got {id!r}")
    return SecretMount(_dest(dest), id, _id(uid, "uid"), _id(gid, "gid"), check_mode(mode, maximum=0o7777), bool(optional))


def secret_env(name, id, *, optional=False) -> SecretEnv:
    """Expose secret ``id`` as environment variable ``name`` (cap exec.secretenv)."""
    if not isinstance(name, str) or not name or "=" in name:
        raise ValidationError(f"secret_env needs a variable name without '=', got {name!r}")
    if not isinstance(id, str) or not id:
        raise ValidationError(f"secret_env needs a non-empty secret id, got {id!r}")
    return SecretEnv(name, id, bool(optional))


def ssh_mount(dest=None, id=None, *, uid=0, gid=0, mode=0o600, optional=False) -> SSHMount:
    """Forward the client's ssh agent; default socket /run/buildkit/ssh_agent.N."""
    return SSHMount(None if dest is None else _dest(dest), id, _id(uid, "uid"), _id(gid, "gid"), check_mode(mode, maximum=0o7777),
                    bool(optional))


class _Mount:
    """One filesystem mount of an exec after validation (Go's ``mount``)."""

    __slots__ = ("target", "state", "out", "readonly", "selector", "cache_id", "sharing", "tmpfs",
                 "tmpfs_size", "output_index")

    def __init__(self, target, state=None, readonly=False, selector="", cache_id="", sharing=0,
                 tmpfs=False, tmpfs_size=0):
        self.target, self.state, self.readonly, self.selector = target, state, readonly, selector
        self.out = state._out if state is not None else None
        self.cache_id, self.sharing, self.tmpfs, self.tmpfs_size = cache_id, sharing, tmpfs, tmpfs_size
        self.output_index = _SKIP

    def has_output(self) -> bool:
        return not (self.readonly or self.tmpfs or self.cache_id)

    def static_bytes(self) -> bytes:
        """Every pb.Mount field after ``input`` (field 1)."""
        mount_type = 3 if self.cache_id else 4 if self.tmpfs else 0
        out = (_wire.str_field(2, self.selector) + _wire.str_field(3, self.target)
               + _wire.int_field(4, self.output_index) + _wire.int_field(5, self.readonly)
               + _wire.int_field(6, mount_type))
        if self.tmpfs:
            out += _wire.len_field(19, _wire.int_field(1, self.tmpfs_size))
        if self.cache_id:
            out += _wire.len_field(20, _wire.str_field(1, self.cache_id) + _wire.int_field(2, self.sharing))
        return out


def _opt_mount(mount_type: int, opt_field: int, dest: str, spec) -> bytes:
    opt = (_wire.str_field(1, spec.id or "") + _wire.int_field(2, spec.uid) + _wire.int_field(3, spec.gid)
           + _wire.int_field(4, spec.mode) + _wire.int_field(5, spec.optional))
    return _wire.len_field(2, _wire.int_field(1, _SKIP) + _wire.str_field(3, dest)
                           + _wire.int_field(6, mount_type) + _wire.len_field(opt_field, opt))


class ExecOp(Op):
    __slots__ = ("mounts", "platform", "_body", "_mount_tails", "_walk")

    def __init__(self, mounts, body_parts, platform, meta, locations):
        self.mounts, self.platform = mounts, platform
        self._body = body_parts  # (meta bytes, secret/ssh mount bytes, trailing ExecOp fields)
        self._mount_tails = None
        seen, walk = set(), []
        for m in mounts:
            if m.out is not None and m.out not in seen:
                seen.add(m.out)
                walk.append(m.out[0])
        self._walk = walk
        self.init_op(meta, locations, walk)

    def walk_inputs(self):
        return self._walk

    def encode(self, ctx, digest_of) -> bytes:
        tails = self._mount_tails
        if tails is None:
            tails = self._mount_tails = [m.static_bytes() for m in self.mounts]
        inputs, index_of, mounts = [], {}, []
        for m, tail in zip(self.mounts, tails):
            if m.out is None:
                i = _SKIP
            else:
                key = (digest_of[m.out[0]], m.out[1])
                i = index_of.get(key)
                if i is None:
                    i = index_of[key] = len(inputs)
                    inputs.append(key)
            mounts.append(_wire.len_field(2, _wire.int_field(1, i) + tail))
        meta, extra_mounts, trailer = self._body
        body = _wire.len_field(1, meta) + b"".join(mounts) + extra_mounts + trailer
        head = b"".join([ctx.input_field(d, x) for d, x in inputs])
        return head + (self.platform or ctx.platform).op_field() + CONSTRAINTS + _wire.len_field(2, body)


def _mounts(state, specs, readonly_rootfs):
    """Validated filesystem mounts (sorted by target), secrets and ssh sockets, in Go's order."""
    fs_mounts = [_Mount("/", state, readonly=bool(readonly_rootfs))]
    secrets, sshs, targets = [], [], {"/"}
    if isinstance(specs, (BindMount, CacheMount, TmpfsMount, SecretMount, SecretEnv, SSHMount)):
        specs = (specs,)
    for spec in specs:
        if isinstance(spec, BindMount):
            m = _Mount(spec.dest, spec.state, spec.readonly, "" if spec.source == "/" else spec.source)
        elif isinstance(spec, CacheMount):
            m = _Mount(spec.dest, cache_id=spec.id, sharing=SHARING[spec.sharing])
        elif isinstance(spec, TmpfsMount):
            m = _Mount(spec.dest, tmpfs=True, tmpfs_size=spec.size or 0)
        elif isinstance(spec, (SecretMount, SecretEnv)):
            secrets.append(spec)
            continue
        elif isinstance(spec, SSHMount):
            sshs.append(spec)
            continue
        else:
            raise InvalidMountError(f"mounts must come from bind_mount/cache_mount/tmpfs_mount/secret_mount/"
                                    f"secret_env/ssh_mount, got {type(spec).__name__}")
        _claim(targets, m.target)
        fs_mounts.append(m)
    if len(fs_mounts) > 1:
        fs_mounts.sort(key=lambda m: m.target)
    return fs_mounts, secrets, sshs, targets


def _mount_caps(fs_mounts, caps: set) -> None:
    """Assign output indexes (writable mounts, in target order) and add the mount caps."""
    out_index = 0
    for m in fs_mounts:
        if m.has_output():
            m.output_index = out_index
            out_index += 1
        if m.selector:
            caps.add("exec.mount.selector")
        if m.cache_id:
            caps.update(("exec.mount.cache", "exec.mount.cache.sharing"))
        elif m.tmpfs:
            caps.add("exec.mount.tmpfs")
            if m.tmpfs_size > 0:
                caps.add("exec.mount.tmpfs.size")
        elif m.out is not None:
            caps.add("exec.mount.bind")


def run(state: State, cmd, *, env=None, workdir=None, user=None, mounts=(), network=None, security=None,
        readonly_rootfs=False, ignore_cache=False, name=None, location=None, hostname=None,
        valid_exit_codes=None, extra_hosts=None, ulimits=None, cgroup_parent=None, proxy_env=None,
        platform=None) -> State:
    """Build the ExecOp for ``state.run(...)``; see State.run."""
    args = argv(cmd)
    s = state._settings
    env_list = add_env(s.env, env)
    cwd = join_dir(s.dir, workdir) if workdir is not None else s.dir
    net = s.network if network is None else net_mode(network)
    sec = s.security if security is None else security_mode(security)
    fs_mounts, secrets, sshs, targets = _mounts(state, mounts, readonly_rootfs)
    caps = {"exec.meta.base"}
    _mount_caps(fs_mounts, caps)

    extra, secret_envs = [], b""
    for spec in secrets:
        if isinstance(spec, SecretEnv):
            secret_envs += _wire.len_field(5, _wire.str_field(1, spec.id) + _wire.str_field(2, spec.name)
                                           + _wire.int_field(3, spec.optional))
            caps.add("exec.secretenv")
        else:
            _claim(targets, spec.dest)
            extra.append(_opt_mount(1, 21, spec.dest, spec))
    if secrets:
        caps.add("exec.mount.secret")
    for i, spec in enumerate(sshs):
        dest = spec.dest or f"/run/buildkit/ssh_agent.{i}"
        _claim(targets, dest)
        extra.append(_opt_mount(2, 22, dest, spec))
    if sshs:
        caps.add("exec.mount.ssh")
        if "SSH_AUTH_SOCK" not in env_list.items():
            env_list = env_list.add("SSH_AUTH_SOCK", sshs[0].dest or "/run/buildkit/ssh_agent.0")
    if net:
        caps.add("exec.meta.network")
    if sec:
        caps.add("exec.meta.security")
    try:
        meta = encode_meta(args, env_list, cwd, s.user if user is None else user,
                           s.hostname if hostname is None else hostname, extra_hosts=extra_hosts, ulimits=ulimits,
                           cgroup_parent=cgroup_parent, proxy_env=proxy_env, valid_exit_codes=valid_exit_codes,
                           caps=caps)
    except UnicodeEncodeError as exc:
        raise ValidationError(f"run() text must be valid UTF-8: {exc.reason} in {exc.object[:40]!r}") from None
    trailer = _wire.int_field(3, net) + _wire.int_field(4, sec) + secret_envs
    run_platform = Platform.parse(platform) if platform is not None else None
    op = ExecOp(fs_mounts, (meta, b"".join(extra), trailer), run_platform or s.platform,
                op_meta(caps, name=name, ignore_cache=ignore_cache), current_locations(location))
    root = fs_mounts[0]
    out = root.out if root.readonly else (op, root.output_index)
    # Go: the exec's own platform becomes the result's (ensurePlatform on the exec output)
    return state.with_output(out, None if root.readonly else run_platform, exec_op=op)


def _claim(targets: set, dest: str) -> None:
    if dest in targets:
        raise DuplicateMountError(f"two mounts at {dest!r}")
    targets.add(dest)


def mount_output(state: State, dest: str) -> State:
    """The writable mount at ``dest`` of the exec that produced ``state``."""
    op = state._exec
    if op is None:
        raise InvalidMountError("mount_output() needs a State returned by run()")
    for m in op.mounts:
        if m.target == dest:
            if m.readonly:
                return m.state if m.state is not None else State()
            if not m.has_output():
                kind = "cache" if m.cache_id else "tmpfs"
                raise InvalidMountError(f"the {kind} mount at {dest!r} has no output")
            base = m.state if m.state is not None else State()
            return base.with_output((op, m.output_index), exec_op=op)
    raise InvalidMountError(f"the run has no mount at {dest!r}")
