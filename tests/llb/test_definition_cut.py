"""Cutting a Definition at a step's input: what the step started from, with the digests it had."""

from envd_jupyter.llb import BREAKPOINT_KEY, Definition, bind_mount, image, mkfile, scratch


def _vertex(definition, name):
    return next(v for v in definition.vertices() if v.name == name)


def test_up_to_a_steps_root_input_keeps_its_ancestors_and_their_digests():
    data = image("busybox").run("echo data > /d", name="data")
    state = (image("busybox").run("echo a", name="a")
             .run("exit 3", name="fails", mounts=[bind_mount("/data", data)]).run("echo c", name="after"))
    definition = state.marshal()
    failing = _vertex(definition, "fails")
    root = definition.root_input(failing.digest)
    assert root == (_vertex(definition, "a").digest, 0)

    before = definition.up_to(*root)
    assert before.head == root
    assert {v.name for v in before.vertices()} == {"image busybox:latest", "a"}
    assert set(before.digests[:-1]) <= set(definition.digests)
    assert Definition.from_bytes(before.to_bytes()).digests == before.digests
    assert before.to_bytes() == image("busybox").run("echo a", name="a").marshal().to_bytes()


def test_root_input_of_file_ops_sources_and_scratch_runs():
    definition = image("busybox").file(mkfile("/x", b"x"), name="write").marshal()
    write = _vertex(definition, "write")
    assert definition.root_input(write.digest) == (write.inputs[0], 0)
    assert definition.root_input(write.inputs[0]) is None  # a source: nothing before it
    over_scratch = scratch().run(["/bin/true"], name="on scratch").marshal()
    assert over_scratch.root_input(_vertex(over_scratch, "on scratch").digest) is None


def test_a_breakpoint_marks_metadata_and_changes_no_digest():
    plain = image("busybox").run("echo a", name="a").run("echo b", name="b")
    marked = image("busybox").run("echo a", name="a").breakpoint().run("echo b", name="b")
    assert marked.marshal().digests == plain.marshal().digests
    assert marked.marshal().to_bytes() != plain.marshal().to_bytes()  # the mark travels in the metadata
    a = _vertex(marked.marshal(), "a")
    assert marked.marshal().metadata[a.digest].description == {"llb.customname": "a", BREAKPOINT_KEY: "true"}
    assert BREAKPOINT_KEY not in (plain.marshal().metadata[a.digest].description or {})
