"""OCI platforms, parsed and normalised the way containerd's ``platforms`` package does.

BuildKit puts the normalised platform into image and exec ops, so "linux/aarch64" and
"linux/arm64" must give the same bytes.
"""

from __future__ import annotations

import platform as _host
import re
from dataclasses import dataclass
from functools import lru_cache

from . import _wire

from ._errors import InvalidPlatformError

_KNOWN_OS = {
    "aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js", "linux",
    "nacl", "netbsd", "openbsd", "plan9", "solaris", "windows", "zos",
}
_KNOWN_ARCH = {
    "386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "ppc64", "ppc64le", "loong64",
    "mips", "mipsle", "mips64", "mips64le", "mips64p32", "mips64p32le", "ppc", "riscv", "riscv64",
    "s390", "s390x", "sparc", "sparc64", "wasm",
}
_OS_RE = re.compile(r"^([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.-]*)\))?$")
_PART_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True, slots=True)
class Platform:
    """os/architecture[/variant] as BuildKit's pb.Platform carries it.

    ``parse`` gives what Go's ``platforms.Normalize(platforms.Parse(s))`` gives, which is
    what ``State.Platform`` stores: "linux/arm" means arm/v7, "linux/aarch64/v8" arm64.
    """

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()

    @classmethod
    def parse(cls, spec: "str | Platform") -> "Platform":
        if isinstance(spec, Platform):
            return spec
        if not isinstance(spec, str) or not spec or "*" in spec:
            raise InvalidPlatformError(f"invalid platform {spec!r}: expected os[/arch[/variant]]")
        parts = spec.split("/", 3)
        m = _OS_RE.match(parts[0])
        if not m or len(parts) > 3 or not all(_PART_RE.match(p) for p in parts[1:]):
            raise InvalidPlatformError(f"invalid platform {spec!r}: expected os[/arch[/variant]]")
        os_name, os_version = _normalize_os(m.group(1)), m.group(2) or ""
        if len(parts) == 1:
            if os_name in _KNOWN_OS:
                host = default_platform()
                return cls(os_name, host.architecture, host.variant, os_version)
            arch, variant = _normalize_arch(parts[0], "")
            if arch not in _KNOWN_ARCH:
                raise InvalidPlatformError(f"invalid platform {spec!r}: unknown operating system or architecture")
            return cls("linux", arch, variant)
        arch, variant = _normalize_arch(parts[1], parts[2] if len(parts) == 3 else "")
        return cls(os_name, arch, variant, os_version)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def encode(self) -> bytes:
        """pb.Platform bytes."""
        return _encoded(self)

    def op_field(self) -> bytes:
        """The whole ``Op.platform`` field (10), cached: every exec and image op writes it."""
        return _op_field(self)


@lru_cache(maxsize=64)
def _encoded(p: Platform) -> bytes:
    return (_wire.str_field(1, p.architecture) + _wire.str_field(2, p.os) + _wire.str_field(3, p.variant)
            + _wire.str_field(4, p.os_version) + _wire.repeated_str(5, p.os_features))


@lru_cache(maxsize=64)
def _op_field(p: Platform) -> bytes:
    return _wire.len_field(10, _encoded(p))


def _normalize_os(name: str) -> str:
    name = name.lower()
    return "darwin" if name == "macos" else name


def _normalize_arch(arch: str, variant: str) -> tuple[str, str]:
    arch, variant = arch.lower(), variant.lower()
    if arch == "i386":
        return "386", ""
    if arch in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant == "v1" else variant
    if arch in ("aarch64", "arm64"):
        return "arm64", {"8": "", "v8": "", "v8.0": "", "9": "v9", "9.0": "v9", "v9.0": "v9"}.get(variant, variant)
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        if variant in ("", "7"):
            return "arm", "v7"
        if variant in ("5", "6", "8"):
            return "arm", "v" + variant
    return arch, variant


_DEFAULT: Platform | None = None


def default_platform() -> Platform:
    """The host's normalised platform: what Go's platforms.DefaultSpec() gives (linux here)."""
    global _DEFAULT
    if _DEFAULT is None:
        arch, variant = _normalize_arch(_host.machine() or "amd64", "")
        if arch == "armv7l":
            arch, variant = "arm", "v7"
        _DEFAULT = Platform("linux", arch, variant)
    return _DEFAULT
