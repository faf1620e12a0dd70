"""Docker image reference normalisation (distribution/reference ParseNormalizedNamed + TagNameOnly).

``busybox`` -> ``docker.io/library/busybox:latest``: Go's llb.Image writes the normalised
form into the op, so ours must match byte for byte.
"""

from __future__ import annotations

import re

from ._errors import InvalidReferenceError

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_HEX64 = re.compile(r"^[a-f0-9]{64}$")


def normalize_image_ref(ref: str) -> str:
    """The fully qualified reference, with ``:latest`` added when neither tag nor digest is given."""
    if not isinstance(ref, str) or not ref:
        raise InvalidReferenceError(f"invalid image reference {ref!r}")
    if _HEX64.match(ref):
        raise InvalidReferenceError(f"invalid image reference {ref!r}: cannot use a 64-byte hexadecimal string as a name")
    domain, remainder = split_domain(ref)
    name_part = remainder.split("@", 1)[0]
    if ":" in name_part:
        name_part = name_part.rsplit(":", 1)[0]
    if name_part.lower() != name_part:
        raise InvalidReferenceError(f"invalid image reference {ref!r}: repository name must be lowercase")
    full = f"{domain}/{remainder}"
    m = _REFERENCE.match(full)
    if not m:
        raise InvalidReferenceError(f"invalid image reference {ref!r}")
    if len(m.group("name")) > 255:
        raise InvalidReferenceError(f"invalid image reference {ref!r}: repository name too long")
    if m.group("tag") is None and m.group("digest") is None:
        full += ":latest"
    return full


def split_domain(ref: str) -> tuple[str, str]:
    i = ref.find("/")
    if i == -1 or (not any(c in ref[:i] for c in ".:") and ref[:i] != "localhost" and ref[:i].lower() == ref[:i]):
        domain, remainder = "docker.io", ref
    else:
        domain, remainder = ref[:i], ref[i + 1:]
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in remainder:
        remainder = "library/" + remainder
    return domain, remainder
