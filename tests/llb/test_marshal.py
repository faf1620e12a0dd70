"""The marshal walk: order, de-duplication, metadata, source maps, depth (Go State.Marshal)."""

from envd_jupyter import llb

from ._support import BUSYBOX, marshal


def test_terminal_op_is_last_and_points_at_result():
    definition = marshal(BUSYBOX.run(["true"]))
    terminal = definition.ops[-1]
    assert terminal.WhichOneof("op") is None and not terminal.HasField("platform")
    assert definition.head == (definition.digests[-2], 0)
    assert definition.metadata[definition.digests[-1]].caps == {"constraints", "platform"}


def test_equal_ops_from_different_calls_are_stored_once_and_metadata_merged():
    a = llb.image("busybox", name="first")
    b = llb.image("busybox", name="second", ignore_cache=True)
    definition = marshal(llb.merge([a.run(["a"]), b.run(["b"])]))
    image_digest = definition.digests[0]
    assert definition.digests.count(image_digest) == 1 and len(definition) == 5
    meta = definition.metadata[image_digest]
    assert meta.description == {"llb.customname": "second"} and meta.ignore_cache


def test_deep_chain_has_no_recursion_limit():
    st = BUSYBOX
    for i in range(10_000):
        st = st.run(["echo", str(i)], env={f"K{i}": str(i)})
    definition = st.marshal(platform="linux/amd64")
    assert len(definition) == 10_002
    last = definition.op(definition.digests[-2])
    assert list(last.exec.meta.env) == ["K9999=9999"]


def test_marshal_is_deterministic_and_platform_sensitive():
    st = BUSYBOX.run(["true"]).mkdir("/x")
    assert marshal(st).to_bytes() == marshal(st).to_bytes()
    arm = st.marshal(platform="linux/arm64", local_unique_id="u")
    assert arm.digests != marshal(st).digests
    assert arm.ops[0].platform.Architecture == "arm64"
    assert marshal(st).ops[0].platform.Architecture == "amd64"  # memo is per platform


def test_source_locations_in_source_map():
    loc_a = llb.SourceLocation("cell 3", 2)
    with llb.located(llb.SourceLocation("cell 4", 7, end_line=8, data=b"run(...)")):
        st = BUSYBOX.run(["a"], location=loc_a).mkdir("/x")
    definition = marshal(st)
    exec_digest, file_digest = definition.digests[1], definition.digests[2]
    assert definition.locations(exec_digest) == [loc_a]
    (loc_b,) = definition.locations(file_digest)
    assert (loc_b.filename, loc_b.line, loc_b.end_line, loc_b.data) == ("cell 4", 7, 8, b"run(...)")
    assert definition.locations(definition.digests[0]) == []
    source = definition.source
    assert [info[0] for info in source.infos] == ["cell 3", "cell 4"]
    assert set(source.locations) == set(definition.digests[:-1])  # every vertex keyed, like Go
    round_trip = llb.Definition.from_bytes(definition.to_bytes())
    assert round_trip.locations(file_digest) == [loc_b] and round_trip.to_bytes() == definition.to_bytes()


def test_source_location_reads_as_file_line_and_an_unknown_line_is_zero():
    known, unknown = llb.SourceLocation("cell[3]", 2), llb.SourceLocation("build.envd")
    assert (str(known), known.file) == ("cell[3]:2", "cell[3]")
    assert (str(unknown), unknown.line, unknown.end_line) == ("build.envd", 0, 0)
    same_graph = [BUSYBOX.run(["a"], location=loc) for loc in (known, unknown)]
    assert marshal(same_graph[0]).digests == marshal(same_graph[1]).digests  # source maps stay out of digests
    (read_back,) = marshal(same_graph[1]).locations(marshal(same_graph[1]).digests[1])
    assert read_back == unknown


def test_same_source_file_shares_one_info():
    st = BUSYBOX.run(["a"], location=llb.SourceLocation("f.py", 1)).run(["b"], location=llb.SourceLocation("f.py", 2))
    assert len(marshal(st).source.infos) == 1


def test_go_state_source_map_marshal():
    # Go client/llb state_test.go TestStateSourceMapMarshal (our ranges always carry an end)
    def loc(name, line):
        foo = name == "foo"
        return llb.SourceLocation(name, line, data=b"data1" if foo else b"data2", language="lang1" if foo else "lang2")

    s = llb.image("myimage", location=[loc("foo", 7), loc("bar", 8), loc("foo", 9)])
    definition = marshal(s)
    assert len(definition) == 2
    dgst = definition.digests[0]
    assert definition.source.infos == [("foo", b"data1", "lang1", None), ("bar", b"data2", "lang2", None)]
    assert list(definition.source.locations) == [dgst]
    assert [(i, r[0][0][0]) for i, r in definition.source.locations[dgst]] == [(0, 7), (1, 8), (0, 9)]
    s = llb.merge([s, llb.image("myimage", location=loc("foo", 10))])
    definition = marshal(s)
    assert len(definition) == 3 and len(definition.source.infos) == 2
    assert len(definition.source.locations) == 2
    assert [(i, r[0][0][0]) for i, r in definition.source.locations[definition.digests[0]]] == [
        (0, 7), (1, 8), (0, 9), (0, 10)]


def test_go_platform_from_image():
    # Go client/llb state_test.go TestPlatformFromImage
    s = (llb.image("srcimage", platform="linux/s390x").run(["foo"])
         .file(llb.mkdir("/foo", 0o700).mkfile("/bar", b"bar", 0o600)).run(["afterfile"]))
    dest = llb.image("destimage").file(llb.copy(s, "/", "/")).run(["afterfile"])
    definition = marshal(dest, platform="linux/ppc64le")
    m = dict(zip(definition.digests, definition.ops))
    assert len(definition) == 8
    vtx = m[definition.head[0]]
    assert vtx.WhichOneof("op") == "exec" and vtx.platform.Architecture == "ppc64le"
    main = m[vtx.inputs[0].digest]
    assert main.WhichOneof("op") == "file" and len(main.file.actions) == 1 and not main.HasField("platform")
    src = m[main.inputs[0].digest]
    assert src.source.identifier == "docker-image://docker.io/library/destimage:latest"
    assert src.platform.Architecture == "ppc64le"
    vtx = m[main.inputs[1].digest]
    assert vtx.WhichOneof("op") == "exec" and vtx.platform.Architecture == "s390x"
    vtx = m[vtx.inputs[0].digest]
    assert vtx.WhichOneof("op") == "file" and len(vtx.file.actions) == 2 and not vtx.HasField("platform")
    vtx = m[vtx.inputs[0].digest]
    assert vtx.WhichOneof("op") == "exec" and vtx.platform.Architecture == "s390x"
    vtx = m[vtx.inputs[0].digest]
    assert vtx.source.identifier == "docker-image://docker.io/library/srcimage:latest"
    assert vtx.platform.Architecture == "s390x"


def test_go_platform_from_image_with_merge():
    # Go client/llb state_test.go TestPlatformFromImageWithMerge
    s = llb.image("srcimage", platform="linux/s390x")
    s2 = llb.scratch().file(llb.mkdir("/foo", 0o700).mkfile("/bar", b"bar", 0o600))
    definition = marshal(llb.merge([s, s2]).run(["aftermerge"]), platform="linux/ppc64le")
    m = dict(zip(definition.digests, definition.ops))
    assert len(definition) == 5
    vtx = m[definition.head[0]]
    assert vtx.WhichOneof("op") == "exec" and vtx.platform.Architecture == "s390x"
    merge = m[vtx.inputs[0].digest]
    assert merge.WhichOneof("op") == "merge" and not merge.HasField("platform")
    src = m[merge.inputs[0].digest]
    assert src.source.identifier == "docker-image://docker.io/library/srcimage:latest"
    assert src.platform.Architecture == "s390x"
