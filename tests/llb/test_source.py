"""Source ops. Expected values are derived from Go client/llb v0.26.3 source.go (named per test)."""

import json

import pytest

from envd_jupyter import llb

from ._support import caps, head_op, marshal


# -- Image(): reference.ParseNormalizedNamed + TagNameOnly, CapSourceImage --------------------------
@pytest.mark.parametrize("ref,identifier", [
    ("busybox", "docker-image://docker.io/library/busybox:latest"),
    ("alpine:3.20", "docker-image://docker.io/library/alpine:3.20"),
    ("user/repo", "docker-image://docker.io/user/repo:latest"),
    ("index.docker.io/library/ubuntu", "docker-image://docker.io/library/ubuntu:latest"),
    ("localhost:5000/app", "docker-image://localhost:5000/app:latest"),
    ("ghcr.io/o/r@sha256:" + "a" * 64, "docker-image://ghcr.io/o/r@sha256:" + "a" * 64),
])
def test_image_identifier_is_normalised_like_docker(ref, identifier):
    op, meta = head_op(llb.image(ref))
    assert op.source.identifier == identifier
    assert dict(op.source.attrs) == {}
    assert caps(meta) == {"source.image"}


def test_image_carries_marshal_platform_and_empty_constraints():
    # SourceOp.Marshal keeps the platform only for docker-image:// and oci-layout://
    op, _ = head_op(llb.image("busybox"), platform="linux/arm64")
    assert (op.platform.OS, op.platform.Architecture, op.platform.Variant) == ("linux", "arm64", "")
    assert op.HasField("constraints") and not op.constraints.filter


def test_image_own_platform_wins_and_is_inherited_by_run():
    # Image(..., llb.Platform(p)): constraints platform on the op, ensurePlatform on the State
    st = llb.image("busybox", platform="linux/arm/v7")
    op, _ = head_op(st, platform="linux/amd64")
    assert (op.platform.Architecture, op.platform.Variant) == ("arm", "v7")
    exec_op, _ = head_op(st.run(["true"]), platform="linux/amd64")
    assert exec_op.platform.Architecture == "arm"


@pytest.mark.parametrize("mode,attrs,extra_caps", [
    ("default", {}, set()),  # ResolveModeDefault is 0: no attribute
    ("pull", {"image.resolvemode": "pull"}, {"source.image.resolvemode"}),
    ("local", {"image.resolvemode": "local"}, set()),  # only force-pull requires the cap
])
def test_image_resolve_mode(mode, attrs, extra_caps):
    op, meta = head_op(llb.image("busybox", resolve_mode=mode))
    assert dict(op.source.attrs) == attrs
    assert caps(meta) == {"source.image"} | extra_caps


def test_image_checksum_and_layer_limit():
    op, meta = head_op(llb.image("busybox", checksum="sha256:" + "b" * 64, layer_limit=2))
    assert dict(op.source.attrs) == {"image.checksum": "sha256:" + "b" * 64, "image.layerlimit": "2"}
    assert caps(meta) == {"source.image", "source.image.checksum", "source.image.layerlimit"}


# -- Local(): attrs, JSON-encoded patterns, local.unique added in SourceOp.Marshal ------------------
def test_local_attrs_and_caps():
    st = llb.local("context", include=["src/", "a<b"], exclude=["*.pyc"], follow_paths=["x"],
                   shared_key_hint="ctx", unique_id="u1")
    op, meta = head_op(st)
    assert op.source.identifier == "local://context"
    assert not op.HasField("platform")  # local:// is not platform specific
    assert dict(op.source.attrs) == {
        "local.includepattern": '["src/","a\\u003cb"]',  # json.Marshal escapes < like Go
        "local.excludepatterns": '["*.pyc"]',
        "local.followpaths": '["x"]',
        "local.sharedkeyhint": "ctx",
        "local.unique": "u1",
    }
    assert json.loads(op.source.attrs["local.includepattern"]) == ["src/", "a<b"]
    assert caps(meta) == {"source.local", "source.local.unique", "source.local.includepatterns",
                          "source.local.excludepatterns", "source.local.followpaths", "source.local.sharedkeyhint"}


def test_local_unique_is_random_per_marshal_unless_given():
    st = llb.local("ctx")
    a, b = st.marshal(), st.marshal()
    assert a.digests[0] != b.digests[0]
    assert len(a.ops[0].source.attrs["local.unique"]) == 25
    fixed = llb.local("ctx", unique_id="same")
    assert fixed.marshal().digests == fixed.marshal().digests
    assert st.marshal(local_unique_id="x").digests == st.marshal(local_unique_id="x").digests


def test_local_with_session_has_no_unique():
    op, meta = head_op(llb.local("ctx", session_id="s1"))
    assert dict(op.source.attrs) == {"local.session": "s1"}
    assert caps(meta) == {"source.local", "source.local.sessionid"}


# -- Git(): id = host + path.Join("/", path) [+ "#ref[:subdir]"], default auth secret attrs ---------
def test_git_https_attrs():
    op, meta = head_op(llb.git("https://github.com/moby/buildkit.git", "v0.26.3"))
    assert op.source.identifier == "git://github.com/moby/buildkit.git#v0.26.3"
    assert not op.HasField("platform")
    assert dict(op.source.attrs) == {
        "git.fullurl": "https://github.com/moby/buildkit.git",
        "git.authtokensecret": "GIT_AUTH_TOKEN",
        "git.authheadersecret": "GIT_AUTH_HEADER",
    }
    assert caps(meta) == {"source.git", "source.git.fullurl"}


def test_git_without_scheme_gets_https_and_keep_dir_subdir():
    op, meta = head_op(llb.git("github.com/moby/buildkit", "main", subdir="docs", keep_git_dir=True))
    assert op.source.identifier == "git://github.com/moby/buildkit#main:docs"
    assert op.source.attrs["git.fullurl"] == "https://github.com/moby/buildkit"
    assert op.source.attrs["git.keepgitdir"] == "true"
    assert caps(meta) == {"source.git", "source.git.fullurl", "source.git.keepgitdir"}


def test_git_scp_style_is_ssh_with_agent_socket():
    op, meta = head_op(llb.git("git@github.com:moby/buildkit.git", known_ssh_hosts="github.com ssh-ed25519 AAA"))
    assert op.source.identifier == "git://github.com/moby/buildkit.git"
    attrs = dict(op.source.attrs)
    assert attrs["git.fullurl"] == "git@github.com:moby/buildkit.git"
    assert attrs["git.mountsshsock"] == "default"
    assert attrs["git.knownsshhosts"] == "github.com ssh-ed25519 AAA\n"
    assert {"source.git.knownsshhosts", "source.git.mountsshsock"} <= caps(meta)


def test_git_custom_auth_secret_adds_httpauth_cap():
    op, meta = head_op(llb.git("https://example.com/r.git", auth_token_secret="TOK"))
    assert op.source.attrs["git.authtokensecret"] == "TOK"
    assert "source.git.httpauth" in caps(meta)


# -- HTTP(): identifier is the URL, perm as "0" + octal, the "soruce.http.uidgid" cap spelling -------
def test_http_attrs_and_caps():
    st = llb.http("https://example.com/f.tgz", filename="f.tgz", checksum="sha256:" + "c" * 64,
                  perm=0o644, uid=1000, gid=100)
    op, meta = head_op(st)
    assert op.source.identifier == "https://example.com/f.tgz"
    assert not op.HasField("platform")
    assert dict(op.source.attrs) == {"http.filename": "f.tgz", "http.checksum": "sha256:" + "c" * 64,
                                     "http.perm": "0644", "http.uid": "1000", "http.gid": "100"}
    assert caps(meta) == {"source.http", "source.http.checksum", "source.http.perm", "soruce.http.uidgid"}


# -- OCILayout(): platform specific, CapSourceOCILayout ---------------------------------------------
def test_oci_layout():
    op, meta = head_op(llb.oci_layout("app@sha256:" + "d" * 64, session_id="s", store_id="st"), platform="linux/amd64")
    assert op.source.identifier == "oci-layout://app@sha256:" + "d" * 64
    assert op.platform.Architecture == "amd64"
    assert dict(op.source.attrs) == {"oci.session": "s", "oci.store": "st"}
    assert caps(meta) == {"source.ocilayout"}


def test_scratch_marshals_to_an_empty_definition():
    definition = llb.scratch().marshal()
    assert definition.digests == [] and definition.to_bytes() == b"" and definition.head is None


def test_source_name_sets_customname_description():
    definition = marshal(llb.image("busybox", name="base image"))
    assert definition.metadata[definition.digests[0]].description == {"llb.customname": "base image"}
    assert "meta.description" in definition.metadata[definition.digests[-1]].caps


@pytest.mark.parametrize("kwargs,identifier", [
    ({"ref": "ref"}, "git://github.com/foo/bar.git#ref"),
    ({"ref": "ref:subdir"}, "git://github.com/foo/bar.git#ref:subdir"),
    ({"ref": "ref", "subdir": "subdir"}, "git://github.com/foo/bar.git#ref:subdir"),
    ({"ref": "v1.0", "subdir": "dir"}, "git://github.com/foo/bar.git#v1.0:dir"),
    ({"subdir": "dir"}, "git://github.com/foo/bar.git#:dir"),
])
def test_go_git_identifiers(kwargs, identifier):
    # Go client/llb git_test.go TestGit
    op, _ = head_op(llb.git("github.com/foo/bar.git", **kwargs))
    assert op.source.identifier == identifier
    assert dict(op.source.attrs) == {"git.authheadersecret": "GIT_AUTH_HEADER", "git.authtokensecret": "GIT_AUTH_TOKEN",
                                     "git.fullurl": "https://github.com/foo/bar.git"}
