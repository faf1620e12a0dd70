"""FileOp. Expected values follow Go client/llb v0.26.3 fileop.go (FileOp.Marshal, marshalState.add,
normalizePath, fileActionCopy.sourcePath, ChownOpt.marshal, marshalTime)."""

import datetime as dt

import pytest

from envd_jupyter import llb

from ._support import BUSYBOX, caps, head_op, marshal

SKIP = -1


def test_single_mkdir_defaults():
    op, meta = head_op(BUSYBOX.mkdir("/app"))
    assert not op.HasField("platform")  # "file op is not platform specific"
    (action,) = op.file.actions
    assert (action.input, action.secondaryInput, action.output) == (0, SKIP, 0)
    assert (action.mkdir.path, action.mkdir.mode, action.mkdir.makeParents, action.mkdir.timestamp) == (
        "/app", 0o755, False, -1)
    assert caps(meta) == {"file.base"}


def test_chain_indexes_point_at_previous_action():
    # getIndex: relative inputs are len(inputs) + target of the previous action
    chain = llb.mkdir("/a").mkfile("/a/f", b"x").rm("/a/g").copy(llb.image("alpine"), "/etc", "/a/etc")
    op, _ = head_op(BUSYBOX.file(chain))
    rows = [(a.input, a.secondaryInput, a.output) for a in op.file.actions]
    assert rows == [(0, SKIP, SKIP), (2, SKIP, SKIP), (3, SKIP, SKIP), (4, 1, 0)]


def test_inputs_order_and_walk_order_differ_like_go():
    # Inputs() walks from the last action back (base, then copy sources) while pb inputs
    # are added first action first: copy(A) then copy(B) -> pb [base, A, B], defs [base, B, A]
    a, b = llb.image("alpine"), llb.image("debian")
    definition = BUSYBOX.file(llb.copy(a, "/x", "/x").copy(b, "/y", "/y")).marshal(platform="linux/amd64")
    op = definition.op(definition.digests[-2])
    ids = {d: definition.op(d).source.identifier for d in definition.digests[:3]}
    assert [ids[i.digest] for i in op.inputs] == [
        "docker-image://docker.io/library/busybox:latest", "docker-image://docker.io/library/alpine:latest",
        "docker-image://docker.io/library/debian:latest"]
    assert [ids[d] for d in definition.digests[:3]] == [
        "docker-image://docker.io/library/busybox:latest", "docker-image://docker.io/library/debian:latest",
        "docker-image://docker.io/library/alpine:latest"]


def test_relative_paths_resolve_against_workdir():
    op, _ = head_op(BUSYBOX.workdir("/app").file(llb.mkdir("d").mkfile("./d/f", "x").rm("../tmp/x")))
    assert [op.file.actions[0].mkdir.path, op.file.actions[1].mkfile.path, op.file.actions[2].rm.path] == [
        "/app/d", "/app/d/f", "/tmp/x"]


@pytest.mark.parametrize("dest,expected", [
    ("/out/", "/out/"), ("/out/.", "/out/."), ("/.", "/."), ("rel/", "/w/rel/"), ("/a//b", "/a/b")])
def test_copy_dest_keeps_trailing_slash_and_dot(dest, expected):
    op, _ = head_op(BUSYBOX.workdir("/w").copy(BUSYBOX, "/etc/hosts", dest))
    assert op.file.actions[0].copy.dest == expected


def test_copy_source_relative_to_source_workdir_and_cleaned():
    src = llb.image("alpine").workdir("/srv")
    op, _ = head_op(BUSYBOX.copy(src, "data/", "/d"))
    assert op.file.actions[0].copy.src == "/srv/data"


def test_copy_options():
    when = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    op, meta = head_op(BUSYBOX.copy(
        llb.image("alpine"), "/src", "/dst", mode=0o600, follow_symlinks=True, copy_dir_contents_only=True,
        include_patterns=["*.py"], exclude_patterns=["test_*"], required_paths=["a.py"], attempt_unpack=True,
        create_dest_path=True, allow_wildcard=True, allow_empty_wildcard=True, created=when,
        always_replace_existing_dest_paths=True))
    c = op.file.actions[0].copy
    assert (c.mode, c.followSymlink, c.dirCopyContents, c.attemptUnpackDockerCompatibility, c.createDestPath,
            c.allowWildcard, c.allowEmptyWildcard, c.alwaysReplaceExistingDestPaths) == (
        0o600, True, True, True, True, True, True, True)
    assert (list(c.include_patterns), list(c.exclude_patterns), list(c.required_paths)) == (
        ["*.py"], ["test_*"], ["a.py"])
    assert c.timestamp == 1577836800 * 10**9
    assert caps(meta) == {"file.base"}  # Go v0.26.3 never runs its per-action caps loop


def test_copy_mode_defaults_to_minus_one_and_string_mode_uses_modestr():
    op, _ = head_op(BUSYBOX.copy(BUSYBOX, "/a", "/b"))
    assert op.file.actions[0].copy.mode == -1 and op.file.actions[0].copy.timestamp == -1
    op, _ = head_op(BUSYBOX.copy(BUSYBOX, "/a", "/b", mode="u+x"))
    assert op.file.actions[0].copy.mode == 0 and op.file.actions[0].copy.modeStr == "u+x"


def test_owner_by_name_refers_to_base_input_and_ids_are_numeric():
    # WithUser: "root" and integers are IDs, other names NamedUserOpt{input: base}
    op, _ = head_op(BUSYBOX.mkdir("/d", owner="app:1000"))
    owner = op.file.actions[0].mkdir.owner
    assert (owner.user.byName.name, owner.user.byName.input) == ("app", 0)
    assert owner.group.WhichOneof("user") == "byID" and owner.group.byID == 1000
    op, _ = head_op(BUSYBOX.mkfile("/f", "x", owner="root"))
    owner = op.file.actions[0].mkfile.owner
    assert owner.user.WhichOneof("user") == "byID" and owner.user.byID == 0 and not owner.HasField("group")
    op, _ = head_op(llb.scratch().mkdir("/d", owner="app"))
    assert op.file.actions[0].mkdir.owner.user.byName.input == SKIP  # scratch base


def test_file_on_scratch_and_symlink():
    op, _ = head_op(llb.scratch().file(llb.mkfile("/a", "a").symlink("/a", "/b")))
    assert len(op.inputs) == 0
    assert [(a.input, a.output) for a in op.file.actions] == [(SKIP, SKIP), (0, 0)]
    assert (op.file.actions[1].symlink.oldpath, op.file.actions[1].symlink.newpath) == ("/a", "/b")


def test_mkfile_data_and_mode():
    op, _ = head_op(BUSYBOX.mkfile("/f", b"\x00\x01", 0o600))
    assert (op.file.actions[0].mkfile.data, op.file.actions[0].mkfile.mode) == (b"\x00\x01", 0o600)


@pytest.mark.parametrize("bad,error", [
    (lambda: llb.mkdir("/a", 0o1000), llb.InvalidModeError),
    (lambda: llb.mkfile("/a", "x", -1), llb.InvalidModeError),
    (lambda: llb.mkfile("/a", 3), llb.ValidationError),
    (lambda: llb.copy("busybox", "/a", "/b"), llb.NotAStateError),
    (lambda: BUSYBOX.file(llb.FileActions()), llb.ValidationError),
    (lambda: BUSYBOX.file("mkdir /a"), llb.ValidationError),
    (lambda: llb.mkdir("/a", owner=1.5), llb.ValidationError),
    (lambda: llb.rm(""), llb.ValidationError),
    (lambda: llb.mkdir("/a", created=dt.datetime(2020, 1, 1)), llb.ValidationError),
])
def test_invalid_file_actions(bad, error):
    with pytest.raises(error) as info:
        bad()
    assert "\n" not in str(info.value)


def _ops(definition):
    return {d: op for d, op in zip(definition.digests, definition.ops)}, definition.ops


def test_go_file_pipeline_with_bound_chain():
    # Go client/llb fileop_test.go TestFilePipeline, ported assertion by assertion
    st = (llb.image("foo").workdir("/out")
          .file(llb.copy(llb.mkdir("foo", 0o700).mkfile("foo/bar", b"dt", 0o600).with_state(llb.image("bar").workdir("/tmp")),
                         "foo/bar", "baz").rm("foo/bax"))
          .file(llb.mkdir("/bar", 0o701).copy(llb.image("foo"), "in", "out")
                .copy(llb.image("baz").workdir("/base"), "in2", "out2")))
    m, arr = _ops(marshal(st))
    assert len(arr) == 6  # 3 images + 2 file ops + terminal
    assert m[arr[-1].inputs[0].digest] == arr[4] and arr[-1].inputs[0].index == 0
    f = arr[4].file
    assert len(arr[4].inputs) == 3
    assert m[arr[4].inputs[1].digest].source.identifier == "docker-image://docker.io/library/foo:latest"
    assert m[arr[4].inputs[2].digest].source.identifier == "docker-image://docker.io/library/baz:latest"
    assert [(a.input, a.secondaryInput, a.output) for a in f.actions] == [(0, -1, -1), (3, 1, -1), (4, 2, 0)]
    assert (f.actions[0].mkdir.path, f.actions[0].mkdir.mode) == ("/bar", 0o701)
    assert (f.actions[1].copy.src, f.actions[1].copy.dest) == ("/in", "/out/out")
    assert (f.actions[2].copy.src, f.actions[2].copy.dest) == ("/base/in2", "/out/out2")
    op = m[arr[4].inputs[0].digest]
    f = op.file
    assert len(op.inputs) == 2 and len(f.actions) == 4
    assert m[op.inputs[1].digest].source.identifier == "docker-image://docker.io/library/bar:latest"
    assert [(a.input, a.secondaryInput, a.output) for a in f.actions] == [(1, -1, -1), (2, -1, -1), (0, 3, -1), (4, -1, 0)]
    assert (f.actions[0].mkdir.path, f.actions[0].mkdir.mode) == ("/tmp/foo", 0o700)
    assert (f.actions[1].mkfile.path, f.actions[1].mkfile.mode, f.actions[1].mkfile.data) == ("/tmp/foo/bar", 0o600, b"dt")
    assert arr[4].inputs[1].digest == op.inputs[0].digest
    assert (f.actions[2].copy.src, f.actions[2].copy.dest) == ("/tmp/foo/bar", "/out/baz")
    assert f.actions[3].rm.path == "/out/foo/bax"


def test_go_file_copy_owner():
    # Go client/llb fileop_test.go TestFileCopyOwner
    st = llb.scratch().file(
        llb.mkdir("/foo", 0o700, owner="user1")
        .copy(llb.image("foo"), "src1", "dst", owner="user2")
        .copy(llb.copy(llb.scratch(), "src0", "src2", owner="user3").with_state(llb.image("foo")), "src2", "dst",
              owner="user4")
        .copy(llb.image("foo"), "src3", "dst", owner=(1, 2)))
    m, arr = _ops(marshal(st))
    assert len(arr) == 3 and m[arr[-1].inputs[0].digest] == arr[1]
    f = arr[1].file
    assert len(arr[1].inputs) == 1 and m[arr[1].inputs[0].digest] == arr[0] and len(f.actions) == 5
    owners = [f.actions[0].mkdir.owner] + [f.actions[i].copy.owner for i in range(1, 5)]
    assert [(o.user.byName.name, o.user.byName.input) for o in owners[:4]] == [
        ("user1", -1), ("user2", -1), ("user3", 0), ("user4", -1)]
    assert all(not o.HasField("group") for o in owners[:4])
    assert [f.actions[i].copy.src for i in range(1, 5)] == ["/src1", "/src0", "/src2", "/src3"]
    assert (owners[4].user.byID, owners[4].group.byID) == (1, 2)


def test_go_file_simple_chains():
    # Go client/llb fileop_test.go TestFileSimpleChains
    st = (llb.image("foo").workdir("/tmp")
          .file(llb.mkdir("foo/bar/", 0o700).rm("abc").mkfile("foo/bar/baz", b"d0", 0o777))
          .workdir("sub").file(llb.rm("foo").mkfile("/abc", b"d1", 0o701)))
    m, arr = _ops(marshal(st))
    assert len(arr) == 4 and m[arr[-1].inputs[0].digest] == arr[2]
    f = arr[2].file
    assert len(arr[2].inputs) == 1 and m[arr[2].inputs[0].digest] == arr[1]
    assert [(a.input, a.secondaryInput, a.output) for a in f.actions] == [(0, -1, -1), (1, -1, 0)]
    assert (f.actions[0].rm.path, f.actions[1].mkfile.path) == ("/tmp/sub/foo", "/abc")
    f = arr[1].file
    assert m[arr[1].inputs[0].digest] == arr[0]
    assert [(a.input, a.secondaryInput, a.output) for a in f.actions] == [(0, -1, -1), (1, -1, -1), (2, -1, 0)]
    assert (f.actions[0].mkdir.path, f.actions[1].rm.path, f.actions[2].mkfile.path) == (
        "/tmp/foo/bar", "/tmp/abc", "/tmp/foo/bar/baz")


def test_go_file_copy_from_action_on_scratch():
    # Go client/llb fileop_test.go TestFileCopyFromAction
    st = llb.image("foo").workdir("/out").file(
        llb.copy(llb.mkdir("foo", 0o700).mkfile("foo/bar", b"dt", 0o600).with_state(llb.scratch().workdir("/tmp")),
                 "foo/bar", "baz"))
    m, arr = _ops(marshal(st))
    assert len(arr) == 3 and m[arr[-1].inputs[0].digest] == arr[1]
    f = arr[1].file
    assert len(arr[1].inputs) == 1 and m[arr[1].inputs[0].digest] == arr[0]
    assert [(a.input, a.secondaryInput, a.output) for a in f.actions] == [(-1, -1, -1), (1, -1, -1), (0, 2, 0)]
    assert (f.actions[0].mkdir.path, f.actions[1].mkfile.path) == ("/tmp/foo", "/tmp/foo/bar")
    assert (f.actions[2].copy.src, f.actions[2].copy.dest) == ("/tmp/foo/bar", "/out/baz")
