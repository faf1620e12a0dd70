"""Source ops: image, scratch, local, git, http, oci_layout (Go client/llb source.go).

Attribute names, which options add which capability, and which sources carry a platform
(only docker-image:// and oci-layout://) follow BuildKit v0.26.3.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit, urlunsplit

from . import _wire
from ._op import CONSTRAINTS, Op, current_locations, op_meta
from ._errors import ValidationError, check_mode
from ._platform import Platform
from ._reference import normalize_image_ref
from ._state import State, go_join

RESOLVE_MODES = {"default": "", "pull": "pull", "force-pull": "pull", "local": "local", "prefer-local": "local"}


class SourceOp(Op):
    """A vertex without inputs, named by an identifier and string attributes."""

    __slots__ = ("identifier", "attrs", "platform", "unique_id")

    def __init__(self, identifier, attrs, caps, *, platform=None, unique_id=None, local=False,
                 name=None, ignore_cache=False, location=None):
        for text in (identifier, *attrs.keys(), *attrs.values()):
            if not isinstance(text, str):
                raise ValidationError(f"source attributes must be str, got {text!r}")
            try:
                text.encode()
            except UnicodeEncodeError as exc:
                raise ValidationError(f"source text must be valid UTF-8: {exc.reason} in {text[:40]!r}") from None
        self.identifier, self.attrs, self.platform = identifier, attrs, platform
        self.unique_id = unique_id
        self.init_op(op_meta(caps, name=name, ignore_cache=ignore_cache), current_locations(location), ())
        self.uses_local = local and unique_id is None

    def walk_inputs(self):
        return ()

    def encode(self, ctx, digest_of) -> bytes:
        attrs = self.attrs
        if self.identifier.startswith("local://") and "local.session" not in attrs:
            attrs = {**attrs, "local.unique": self.unique_id or ctx.local_unique_id}
        body = _wire.str_field(1, self.identifier) + _wire.str_map(2, attrs)
        out = b""
        if self.identifier.startswith(("docker-image://", "oci-layout://")):
            out = (self.platform or ctx.platform).op_field()
        return out + CONSTRAINTS + _wire.len_field(3, body)


def _source_state(op: SourceOp) -> State:
    settings = State()._settings
    if op.platform is not None:
        settings = settings.replace(platform=op.platform)
    return State((op, 0), settings)


def _op_opts(opts: dict) -> dict:
    unknown = set(opts) - {"name", "ignore_cache", "location"}
    if unknown:
        raise ValidationError(f"unknown option(s) {sorted(unknown)}")
    return opts


def scratch() -> State:
    """The empty filesystem."""
    return State()


def image(ref: str, *, platform=None, resolve_mode=None, checksum=None, layer_limit=None, **op_opts) -> State:
    """A registry image; ``busybox`` becomes ``docker.io/library/busybox:latest``."""
    ref = normalize_image_ref(ref)
    attrs, caps = {}, {"source.image"}
    if resolve_mode is not None:
        if resolve_mode not in RESOLVE_MODES:
            raise ValidationError(f"unknown resolve_mode {resolve_mode!r}: use default, pull or local")
        if RESOLVE_MODES[resolve_mode]:
            attrs["image.resolvemode"] = RESOLVE_MODES[resolve_mode]
            if RESOLVE_MODES[resolve_mode] == "pull":
                caps.add("source.image.resolvemode")
    if layer_limit is not None:
        attrs["image.layerlimit"] = str(int(layer_limit))
        caps.add("source.image.layerlimit")
    if checksum:
        attrs["image.checksum"] = checksum
        caps.add("source.image.checksum")
    plat = Platform.parse(platform) if platform is not None else None
    return _source_state(SourceOp("docker-image://" + ref, attrs, caps, platform=plat, **_op_opts(op_opts)))


def go_json_list(values) -> str:
    """json.Marshal of a Go []string: compact, with <, >, & escaped like Go."""
    values = [str(v) for v in values]
    text = json.dumps(values, separators=(",", ":"), ensure_ascii=False)
    return go_escape(text)


def go_escape(text: str) -> str:
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def local(name: str, *, include=None, exclude=None, follow_paths=None, shared_key_hint=None,
          unique_id=None, session_id=None, differ=None, **op_opts) -> State:
    """A directory the client sends through its session (``local://name``).

    Without ``unique_id`` each marshal draws a random ``local.unique`` (as Go does);
    pass ``unique_id`` (or ``marshal(local_unique_id=...)``) for stable digests.
    """
    if not isinstance(name, str) or not name:
        raise ValidationError(f"local name must be a non-empty string, got {name!r}")
    attrs, caps = {}, {"source.local"}
    if session_id:
        attrs["local.session"] = session_id
        caps.add("source.local.sessionid")
    for key, cap, values in (("local.includepattern", "source.local.includepatterns", include),
                             ("local.followpaths", "source.local.followpaths", follow_paths),
                             ("local.excludepatterns", "source.local.excludepatterns", exclude)):
        if isinstance(values, str):
            raise ValidationError(f"{cap.rsplit('.', 1)[1]} must be a list of patterns, not a str")
        if values:
            attrs[key] = go_json_list(values)
            caps.add(cap)
    if shared_key_hint:
        attrs["local.sharedkeyhint"] = shared_key_hint
        caps.add("source.local.sharedkeyhint")
    if differ is not None:
        if differ not in ("none", "metadata"):
            raise ValidationError(f"unknown differ {differ!r}: use none or metadata")
        attrs["local.differ"] = differ
    if not session_id:
        caps.add("source.local.unique")
    op = SourceOp("local://" + name, attrs, caps, unique_id=unique_id, local=True, **_op_opts(op_opts))
    return _source_state(op)


_PROTO_RE = re.compile(r"^[a-zA-Z0-9]+://")
_SCP_RE = re.compile(r"^([a-zA-Z0-9-_]+)@([a-zA-Z0-9-.]+):(.*?)(?:\?(.*?))?(?:#(.*))?$")


def _parse_git_url(url: str):
    """gitutil.ParseURL: (scheme, host, path, remote-without-fragment) or None if unknown."""
    m = _PROTO_RE.match(url)
    if m:
        proto = m.group(0)[:-3].lower()
        if proto not in ("http", "https", "ssh", "git"):
            raise ValidationError(f"invalid git url {url!r}: unsupported protocol {proto}")
        parts = urlsplit(url)
        remote = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        return parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, remote
    m = _SCP_RE.match(url)
    if m:
        user, host, path = m.group(1), m.group(2), m.group(3)
        return "ssh", host, path, f"{user}@{host}:{path}"
    return None


def git(url: str, ref: str | None = None, *, subdir=None, keep_git_dir=False, auth_token_secret=None,
        auth_header_secret=None, known_ssh_hosts=None, mount_ssh_sock=None, checksum=None,
        skip_submodules=False, **op_opts) -> State:
    """A git checkout (``git://host/path#ref:subdir``), like Go's llb.Git(url, "ref:subdir").

    ``ref`` may itself be "ref:subdir" (Go's fragment); ``subdir=`` overrides its subdir.

    For ssh remotes Go runs ssh-keyscan when no known hosts are given; we never touch the
    network while building a graph, so pass ``known_ssh_hosts`` to get that attribute.
    """
    if not isinstance(url, str) or not url:
        raise ValidationError(f"git url must be a non-empty string, got {url!r}")
    parsed = _parse_git_url(url)
    if parsed is None:
        url = "https://" + url
        parsed = _parse_git_url(url)
    scheme, host, path, url = parsed
    ident = host + go_join("/", path)
    frag_ref, _, frag_subdir = (ref or "").partition(":")  # Go's fragment form "ref:subdir"
    subdir = subdir or frag_subdir
    if frag_ref or subdir:
        ident += "#" + frag_ref + (":" + subdir if subdir else "")
    attrs, caps = {}, {"source.git"}
    if keep_git_dir:
        attrs["git.keepgitdir"] = "true"
        caps.add("source.git.keepgitdir")
    attrs["git.fullurl"] = url
    caps.add("source.git.fullurl")
    attrs["git.authtokensecret"] = auth_token_secret or "GIT_AUTH_TOKEN"
    attrs["git.authheadersecret"] = auth_header_secret or "GIT_AUTH_HEADER"
    if auth_token_secret or auth_header_secret:
        caps.add("source.git.httpauth")
    if scheme == "ssh":
        if known_ssh_hosts:
            attrs["git.knownsshhosts"] = known_ssh_hosts.rstrip("\n") + "\n"
        caps.add("source.git.knownsshhosts")
        attrs["git.mountsshsock"] = mount_ssh_sock or "default"
        caps.add("source.git.mountsshsock")
    if checksum:
        attrs["git.checksum"] = checksum
        caps.add("source.git.checksum")
    if skip_submodules:
        attrs["git.skipsubmodules"] = "true"
        caps.add("source.git.skipsubmodules")
    return _source_state(SourceOp("git://" + ident, attrs, caps, **_op_opts(op_opts)))


def http(url: str, *, filename=None, checksum=None, perm=None, uid=None, gid=None,
         auth_header_secret=None, **op_opts) -> State:
    """A file downloaded by the daemon; the identifier is the URL itself."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValidationError(f"http source needs an http(s) URL, got {url!r}")
    attrs, caps = {}, {"source.http"}
    if checksum:
        attrs["http.checksum"] = checksum
        caps.add("source.http.checksum")
    if filename:
        attrs["http.filename"] = filename
    if perm:
        check_mode(perm, what="perm")
        attrs["http.perm"] = "0" + format(perm, "o")
        caps.add("source.http.perm")
    if uid:
        attrs["http.uid"] = str(int(uid))
        caps.add("soruce.http.uidgid")  # BuildKit's historical spelling
    if gid:
        attrs["http.gid"] = str(int(gid))
        caps.add("soruce.http.uidgid")
    if auth_header_secret:
        attrs["http.authheadersecret"] = auth_header_secret
        caps.add("source.http.auth")
    return _source_state(SourceOp(url, attrs, caps, **_op_opts(op_opts)))


def oci_layout(ref: str, *, session_id=None, store_id=None, layer_limit=None, platform=None, **op_opts) -> State:
    """An image from an OCI layout the client exposes (``oci-layout://ref``)."""
    if not isinstance(ref, str) or not ref:
        raise ValidationError(f"oci_layout needs a reference, got {ref!r}")
    attrs = {}
    if session_id:
        attrs["oci.session"] = session_id
    if store_id:
        attrs["oci.store"] = store_id
    if layer_limit is not None:
        attrs["oci.layerlimit"] = str(int(layer_limit))
    plat = Platform.parse(platform) if platform is not None else None
    return _source_state(SourceOp("oci-layout://" + ref, attrs, {"source.ocilayout"}, platform=plat,
                                  **_op_opts(op_opts)))
