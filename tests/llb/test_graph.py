"""Graph views: Definition.vertices() and to_graph() — kinds, names, inputs, locations, attrs."""

import cProfile
import dataclasses
import json
import pstats

import pytest

from envd_jupyter import llb
from envd_jupyter._proto import ops_pb2

from ._support import BUSYBOX, marshal


def views(state, **kw):
    return marshal(state, **kw).vertices()


def head(state) -> llb.Vertex:
    return views(state)[-1]


def test_every_source_kind_follows_its_scheme():
    sources = {
        "image": BUSYBOX,
        "local": llb.local("context"),
        "git": llb.git("https://github.com/moby/buildkit.git", "v0.26.3"),
        "http": llb.http("http://example.com/a.tar"),
        "oci": llb.oci_layout("store/app:1"),
    }
    for kind, state in sources.items():
        assert head(state).kind == kind
    assert head(llb.http("https://example.com/a.tar")).kind == "http"


def test_every_op_kind():
    lower = BUSYBOX.run("echo lower")
    upper = lower.run("echo upper")
    assert head(lower).kind == "exec"
    assert head(BUSYBOX.mkdir("/x")).kind == "file"
    assert head(llb.merge([lower, upper])).kind == "merge"
    assert head(llb.diff(lower, upper)).kind == "diff"
    assert [v.kind for v in _with_build_op().vertices()] == ["image", "build"]


def _with_build_op() -> llb.Definition:
    """A nested build op: llb has no constructor for it, a foreign Definition may carry one."""
    source = ops_pb2.Op(source=ops_pb2.SourceOp(identifier="docker-image://docker.io/library/busybox:latest"))
    source_bytes = source.SerializeToString(deterministic=True)
    digest = llb.Definition([source_bytes], {}, None).digests[0]
    build = ops_pb2.Op(inputs=[ops_pb2.Input(digest=digest)],
                       build=ops_pb2.BuildOp(attrs={"context": "https://user:hunter2@example.com/repo.git"}))
    build_bytes = build.SerializeToString(deterministic=True)
    build_digest = llb.Definition([build_bytes], {}, None).digests[0]
    terminal = ops_pb2.Op(inputs=[ops_pb2.Input(digest=build_digest)]).SerializeToString(deterministic=True)
    pb = ops_pb2.Definition()
    getattr(pb, "def").extend([source_bytes, build_bytes, terminal])
    return llb.Definition.from_bytes(pb.SerializeToString(deterministic=True))


def test_build_op_attrs_lose_url_credentials():
    build = _with_build_op().vertices()[1]
    assert build.name == "build" and build.attrs["context"] == "https://example.com/repo.git"


def test_labels_when_no_custom_name():
    assert head(BUSYBOX).name == "image busybox:latest"
    assert head(llb.image("ghcr.io/org/tool:2")).name == "image ghcr.io/org/tool:2"
    assert head(llb.image("someone/tool:2")).name == "image someone/tool:2"
    assert head(BUSYBOX.run("echo hi")).name == "echo hi"
    assert head(BUSYBOX.run(["/usr/bin/python3", "-V"])).name == "python3 -V"
    assert head(BUSYBOX.copy(llb.local("ctx"), "a.txt", "/app/")).name == "copy /a.txt → /app/"
    assert head(BUSYBOX.mkdir("/data")).name == "mkdir /data"
    assert head(llb.merge([BUSYBOX.run("echo 1"), BUSYBOX.run("echo 2"), BUSYBOX.run("echo 3")])).name == "merge (3)"
    assert head(llb.diff(BUSYBOX, BUSYBOX.run("echo 1"))).name == "diff"
    assert head(llb.local("context")).name == "local context"


def test_long_and_multiline_commands_become_one_short_line():
    name = head(BUSYBOX.run("apt-get update &&\n    apt-get install -y " + " ".join(f"pkg{i}" for i in range(40)))).name
    assert "\n" not in name and len(name) == 60 and name.endswith("…")
    assert name.startswith("apt-get update && apt-get install -y pkg0")


def test_custom_name_wins_over_the_label():
    assert head(BUSYBOX.run("pip install numpy", name="[envd] pip install numpy")).name == "[envd] pip install numpy"
    assert head(llb.image("busybox", name="the base")).name == "the base"
    assert head(llb.merge([BUSYBOX.run("echo 1"), BUSYBOX.run("echo 2")], name="join")).name == "join"
    long = "[envd] pip install " + " ".join(f"package-{i}" for i in range(20))
    assert head(BUSYBOX.run("true", name=long)).name == long  # the user's name is never trimmed


def test_inputs_follow_op_input_order_and_repeat():
    a, b = BUSYBOX.run("echo a"), BUSYBOX.run("echo b")
    definition = marshal(llb.merge([b, a, b]))
    by_digest = {v.digest: v for v in definition.vertices()}
    merged = by_digest[definition.head[0]]
    assert [by_digest[d].name for d in merged.inputs] == ["echo b", "echo a", "echo b"]

    definition = marshal(llb.diff(b, a))
    by_digest = {v.digest: v for v in definition.vertices()}
    diffed = by_digest[definition.head[0]]
    assert [by_digest[d].name for d in diffed.inputs] == ["echo b", "echo a"]
    assert (diffed.attrs["lower"], diffed.attrs["upper"]) == diffed.inputs


def test_exec_mount_inputs_come_after_the_root():
    tools = llb.image("alpine")
    vertices = views(BUSYBOX.run("ls /tools", mounts=[llb.bind_mount("/tools", tools, readonly=True)]))
    by_digest = {v.digest: v for v in vertices}
    assert [by_digest[d].name for d in vertices[-1].inputs] == ["image busybox:latest", "image alpine:latest"]


def test_vertices_are_in_definition_order_without_the_terminal():
    definition = marshal(BUSYBOX.run("echo 1").mkdir("/x"))
    vertices = definition.vertices()
    assert [v.digest for v in vertices] == definition.digests[:-1]
    seen = set()
    for vertex in vertices:
        assert set(vertex.inputs) <= seen
        seen.add(vertex.digest)
    assert llb.scratch().marshal().vertices() == []


def test_locations_and_their_text():
    with llb.located(llb.SourceLocation("cell 3", 2)):
        state = BUSYBOX.run("echo located")
    state = state.mkdir("/x", location=llb.SourceLocation("build.envd", 0))
    definition = marshal(state)
    by_name = {v.name: v for v in definition.vertices()}
    assert [(loc.filename, loc.line) for loc in by_name["echo located"].locations] == [("cell 3", 2)]
    assert by_name["image busybox:latest"].locations == ()
    nodes = {n["name"]: n for n in definition.to_graph()["nodes"]}
    assert nodes["echo located"]["location"] == "cell 3:2"
    assert nodes["mkdir /x"]["location"] == "build.envd"
    assert nodes["image busybox:latest"]["location"] is None
    assert str(llb.SourceLocation("a.py", 7)) == "a.py:7"


def test_exec_attrs_for_a_detail_view():
    state = BUSYBOX.env(PIP_NO_CACHE_DIR="1").workdir("/app").user("builder").run(
        "pip install -r requirements.txt", network="host",
        mounts=[llb.cache_mount("/root/.cache/pip", "pip"), llb.tmpfs_mount("/tmp")])
    attrs = head(state).attrs
    assert attrs["args"] == "/bin/sh -c 'pip install -r requirements.txt'"
    assert attrs["cwd"] == "/app" and attrs["user"] == "builder" and attrs["network"] == "host"
    assert "PIP_NO_CACHE_DIR=1" in attrs["env"].splitlines()
    assert attrs["mounts"].splitlines() == ["/ (bind)", "/root/.cache/pip (cache)", "/tmp (tmpfs)"]
    assert attrs["platform"] == "linux/amd64"
    assert all(isinstance(value, str) for value in attrs.values())


def test_source_and_file_attrs():
    assert head(BUSYBOX).attrs["ref"] == "docker.io/library/busybox:latest"
    copy = head(BUSYBOX.copy(llb.local("ctx"), "a.txt", "/app/").mkdir("/data"))
    assert copy.attrs["actions"] == "mkdir /data"
    chained = head(BUSYBOX.file(llb.mkdir("/data").mkfile("/data/key", "k").symlink("/data/key", "/key")))
    assert chained.attrs["actions"].splitlines() == ["mkdir /data", "mkfile /data/key", "symlink /key → /data/key"]


def test_secrets_never_reach_the_views():
    state = BUSYBOX.run("deploy", mounts=[llb.secret_env("API_TOKEN", "vault-token-id"),
                                          llb.secret_mount("/run/secrets/key", "ssh-key-id")])
    state = llb.merge([state, llb.git("https://deploy:hunter2@example.com/app.git"),
                       llb.http("https://user:pa55word@example.com/f.tar"),
                       BUSYBOX.mkfile("/etc/key", "BEGIN PRIVATE KEY")])
    definition = marshal(state)
    text = json.dumps(definition.to_graph())
    for secret in ("vault-token-id", "hunter2", "pa55word", "deploy:", "BEGIN PRIVATE KEY"):
        assert secret not in text
    exec_vertex = next(v for v in definition.vertices() if v.kind == "exec")
    assert exec_vertex.attrs["secret env"] == "API_TOKEN"
    assert "/run/secrets/key (secret)" in exec_vertex.attrs["mounts"].splitlines()


def test_to_graph_is_json_with_indexed_edges():
    a, b = BUSYBOX.run("echo a"), BUSYBOX.run("echo b")
    definition = marshal(llb.diff(a, llb.merge([a, b, a])))
    graph = definition.to_graph()
    assert json.loads(json.dumps(graph)) == graph
    assert graph["version"] == 1 and graph["head"] == definition.head[0]
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert list(nodes) == definition.digests[:-1]
    merge_id = next(i for i, n in nodes.items() if n["kind"] == "merge")
    into_merge = sorted((e["index"], nodes[e["source"]]["name"]) for e in graph["edges"] if e["target"] == merge_id)
    assert into_merge == [(0, "echo a"), (1, "echo b"), (2, "echo a")]
    assert len(graph["edges"]) == sum(len(v.inputs) for v in definition.vertices())
    assert llb.scratch().marshal().to_graph() == {"version": 1, "head": None, "nodes": [], "edges": []}


def test_vertex_is_frozen_with_read_only_attrs():
    vertex = head(BUSYBOX.run("echo hi"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        vertex.name = "other"
    with pytest.raises(TypeError):
        vertex.attrs["args"] = "rm -rf /"
    assert hash(vertex) == hash(dataclasses.replace(vertex))


class _CountedDigest(str):
    """A digest whose every comparison is a Python call, so a scan of the digest list is counted too."""

    __hash__ = str.__hash__

    def __eq__(self, other):
        return str.__eq__(self, other)


def _calls(definition) -> int:
    """Function calls made building both views: a count, so a quadratic walk shows on any machine."""
    definition.digests = [_CountedDigest(d) for d in definition.digests]
    profile = cProfile.Profile()
    profile.enable()
    vertices, graph = definition.vertices(), definition.to_graph()
    profile.disable()
    assert len(vertices) == len(graph["nodes"]) == len(definition) - 1
    return pstats.Stats(profile).total_calls


def _chain(ops: int) -> llb.Definition:
    state = BUSYBOX
    for n in range(ops - 1):
        state = state.run(f"echo {n}")
    return state.marshal(platform="linux/amd64")


def _fan_in(branches: int) -> llb.Definition:
    return llb.merge([BUSYBOX.run(f"echo {n}") for n in range(branches)]).marshal(platform="linux/amd64")


@pytest.mark.parametrize("build, size", [(_chain, 10_000), (_fan_in, 5_000)], ids=["chain", "merge"])
def test_views_take_linear_work(build, size):
    small, large = build(size // 2), build(size)
    small_calls, large_calls = _calls(small), _calls(large)
    assert large_calls <= 2.1 * small_calls
    assert large_calls <= 100 * len(large)
    edges = large.to_graph()["edges"]
    assert len(edges) == (size - 1 if build is _chain else 2 * size)
