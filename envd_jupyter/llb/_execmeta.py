"""pb.Meta of an exec (argv, env, cwd, user, proxy, hosts, ulimits, ...), validated and encoded.

Field values and the caps they need follow Go client/llb v0.26.3 ExecOp.Marshal: extra
hosts and the cgroup parent add no cap, ulimits add exec.meta.ulimit, a proxy env
exec.meta.proxyenv, valid exit codes exec.validexitcode.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from . import _wire
from ._errors import EmptyCommandError, ValidationError
from ._state import add_env_pairs

PROXY_FIELDS = ("http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy")


def argv(cmd) -> list[str]:
    if isinstance(cmd, str):
        if not cmd.strip():
            raise EmptyCommandError("run() needs a command, got an empty string")
        return ["/bin/sh", "-c", cmd]
    if not isinstance(cmd, (list, tuple)) or not cmd:
        raise EmptyCommandError(f"run() needs a non-empty argv list or a shell string, got {cmd!r}")
    if not all(isinstance(a, str) for a in cmd):
        raise ValidationError(f"run() argv items must all be str, got {cmd!r}")
    return list(cmd)


def add_env(base, env):
    """``base`` (an EnvList) with ``env`` added for this exec only."""
    if not env:
        return base
    if not isinstance(env, Mapping):
        raise ValidationError(f"env must be a dict of str to str, got {type(env).__name__}")
    return add_env_pairs(base, env.items())


def _ip(value: str) -> str:
    """Go's net.IP.String(): IPv4-mapped IPv6 addresses print as IPv4."""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise ValidationError(f"extra host IP {value!r} is not an IP address") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def encode_meta(args, env_list, cwd, user, hostname, *, extra_hosts=None, ulimits=None, cgroup_parent=None,
                proxy_env=None, valid_exit_codes=None, caps: set) -> bytes:
    out = _wire.repeated_str(1, args) + _wire.repeated_str(2, env_list.to_list()) + _wire.str_field(3, cwd)
    out += _wire.str_field(4, user)
    if proxy_env:
        unknown = set(proxy_env) - set(PROXY_FIELDS)
        if unknown:
            raise ValidationError(f"unknown proxy_env keys {sorted(unknown)}: use {', '.join(PROXY_FIELDS)}")
        out += _wire.len_field(5, b"".join(_wire.str_field(i + 1, proxy_env.get(k, ""))
                                           for i, k in enumerate(PROXY_FIELDS)))
        caps.add("exec.meta.proxyenv")
    for host, ip in (extra_hosts or {}).items():
        out += _wire.len_field(6, _wire.str_field(1, host) + _wire.str_field(2, _ip(ip)))
    out += _wire.str_field(7, hostname)
    for limit in ulimits or ():
        if len(limit) != 3 or not isinstance(limit[0], str):
            raise ValidationError(f"ulimits items are (name, soft, hard), got {limit!r}")
        name, soft, hard = limit
        out += _wire.len_field(9, _wire.str_field(1, name) + _wire.int_field(2, int(soft)) + _wire.int_field(3, int(hard)))
        caps.add("exec.meta.ulimit")
    out += _wire.str_field(10, cgroup_parent or "") + _wire.int_field(11, 1)  # removeMountStubsRecursive
    if valid_exit_codes is not None:
        out += _wire.packed_ints(12, [int(c) for c in valid_exit_codes])
        caps.add("exec.validexitcode")
    return out
