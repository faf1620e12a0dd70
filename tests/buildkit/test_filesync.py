"""Local context upload: pattern rules and walk order (unit), then real uploads to every daemon."""

from __future__ import annotations

import os
import stat

import pytest

from envd_jupyter.buildkit._session.localwalk import GO_MODE_DIR, GO_MODE_SYMLINK, Walker, go_mode
from envd_jupyter.buildkit._session.patterns import PatternError, PatternMatcher, parse_dockerignore

# (patterns, path, excluded?) — Docker's patternmatcher answers, with parent-dir matching.
CASES = [
    (["*"], "file", True),
    (["*"], "dir/file", True),  # the parent "dir" matches
    (["*.log"], "dir/x.log", False),
    (["**/*.log"], "x.log", True),
    (["**/*.log"], "a/b/x.log", True),
    (["dir/**"], "dir/a/b", True),
    (["dir/**"], "dirx/a", False),
    (["a?c"], "abc", True),
    (["a?c"], "a/c", False),
    (["[a-c]x"], "bx", True),
    (["[a-c]x"], "dx", False),
    (["**/foo"], "foo", True),
    (["**/foo"], "a/b/foo", True),
    (["a/**/b"], "a/b", True),
    (["a/**/b"], "a/x/y/b", True),
    (["*.txt", "!keep.txt"], "keep.txt", False),
    (["*.txt", "!keep.txt"], "x.txt", True),
    (["docs"], "docs/a/b", True),
    (["docs/"], "docs/a", True),
    (["./build"], "build", True),
    (["\\*"], "*", True),
    (["\\*"], "x", False),
    (["a.b"], "axb", False),
]


@pytest.mark.parametrize(("patterns", "path", "expected"), CASES)
def test_patterns_match_like_docker(patterns, path, expected):
    assert PatternMatcher(patterns).matches_or_parent_matches(path) is expected


def test_bad_patterns_are_refused():
    with pytest.raises(PatternError):
        PatternMatcher(["!"])
    with pytest.raises(PatternError):
        PatternMatcher(["[abc"])


def test_dockerignore_parsing_follows_docker():
    text = "\ufeff# comment\n /abs/path \n\n!keep\n  # not a comment\nsub/../x\n"
    assert parse_dockerignore(text) == ["abs/path", "!keep", "# not a comment", "x"]


def _tree(root, files):
    for rel in files:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(rel)


def test_walk_order_parents_and_hardlinks(tmp_path):
    _tree(tmp_path, ["a/b/c.txt", "a/x.log", "a-b", "a.txt", "B"])
    os.link(tmp_path / "a.txt", tmp_path / "z-hard")
    os.symlink("a.txt", tmp_path / "lnk")
    entries = list(Walker(str(tmp_path)))
    # fsutil order: per directory, names sorted bytewise ("B" < "a"), children right after their dir.
    assert [e.stat.path for e in entries] == ["B", "a", "a/b", "a/b/c.txt", "a/x.log", "a-b", "a.txt", "lnk", "z-hard"]
    by_path = {e.stat.path: e.stat for e in entries}
    assert by_path["a"].mode & GO_MODE_DIR and by_path["a"].size == 0
    assert by_path["lnk"].mode & GO_MODE_SYMLINK and by_path["lnk"].linkname == "a.txt"
    assert by_path["z-hard"].linkname == "a.txt" and by_path["z-hard"].size == 0
    assert by_path["a.txt"].size == len("a.txt") and by_path["a.txt"].modTime == os.lstat(tmp_path / "a.txt").st_mtime_ns

    only_c = [e.stat.path for e in Walker(str(tmp_path), includes=["a/b/c.txt"])]
    assert only_c == ["a", "a/b", "a/b/c.txt"]  # parents appear, siblings do not
    reincluded = [e.stat.path for e in Walker(str(tmp_path), excludes=["a", "!a/b/c.txt"])]
    assert reincluded == ["B", "a", "a/b", "a/b/c.txt", "a-b", "a.txt", "lnk", "z-hard"]


def test_go_mode_bits():
    assert go_mode(stat.S_IFREG | 0o4755) == (1 << 23) | 0o755
    assert go_mode(stat.S_IFDIR | 0o1777) == GO_MODE_DIR | (1 << 20) | 0o777
    assert go_mode(stat.S_IFSOCK | 0o600) == 0o600  # fsutil clears the socket bit


# -- real uploads -------------------------------------------------------------------------------

from envd_jupyter.buildkit import LocalDir as LocalExport  # noqa: E402
from envd_jupyter.buildkit._session.filesync import LocalDir  # noqa: E402
from envd_jupyter.llb._source import image, local, scratch  # noqa: E402

CONTEXT = ["keep.txt", "sub/a.py", "sub/b.log", "node_modules/x.js", "secret.env", "deep/n/node_modules/y.js"]


def _listing_state(busybox, network, name="ctx", **local_opts):
    listed = (
        image(busybox)
        .copy(local(name, **local_opts), "/", "/ctx")
        .run("find /ctx | sort > /listing", network=network)
    )
    return scratch().copy(listed, "/listing", "/listing")


def test_local_context_upload_with_excludes(any_client, busybox, network, tmp_path):
    ctx = tmp_path / "ctx"
    _tree(ctx, CONTEXT)
    (ctx / ".dockerignore").write_text("# client side\nsecret.env\n")
    source = LocalDir(ctx)
    out = tmp_path / "out"
    state = _listing_state(busybox, network, exclude=["**/*.log", "**/node_modules"])
    any_client.solve(state, local_dirs={"ctx": source}, exports=[LocalExport(out)])

    seen_in_build = (out / "listing").read_text().split()
    assert seen_in_build == ["/ctx", "/ctx/.dockerignore", "/ctx/deep", "/ctx/deep/n", "/ctx/keep.txt",
                             "/ctx/sub", "/ctx/sub/a.py"]
    assert sorted(source.transfers[-1].requested_paths) == [".dockerignore", "keep.txt", "sub/a.py"]


def test_reupload_after_touch_sends_only_that_file(any_client, busybox, network, tmp_path):
    ctx = tmp_path / "ctx"
    _tree(ctx, [f"d{i % 5}/f{i}" for i in range(60)])
    source = LocalDir(ctx)
    state = _listing_state(busybox, network, name="reupload")  # its own name: the daemon caches per name
    any_client.solve(state, local_dirs={"reupload": source})
    assert source.transfers[-1].files_requested == 60

    with open(ctx / "d2/f7", "a") as handle:
        handle.write("-changed")
    out = tmp_path / "out"
    any_client.solve(state, local_dirs={"reupload": source}, exports=[LocalExport(out)])
    again = source.transfers[-1]
    assert again.requested_paths == ["d2/f7"]
    assert again.data_bytes == (ctx / "d2/f7").stat().st_size
    assert "/ctx/d2/f7" in (out / "listing").read_text().split()


def test_upload_and_export_through_grpcio_session_server(any_client, busybox, network, tmp_path, monkeypatch):
    """The same services served by grpcio's server (the non-default choice) on every daemon."""
    from envd_jupyter.buildkit._session import transport
    from envd_jupyter.buildkit._session.grpcio_server import GrpcioServer

    monkeypatch.setattr(transport, "DEFAULT_SERVER_FACTORY", GrpcioServer)
    ctx = tmp_path / "ctx"
    _tree(ctx, [f"f{i}" for i in range(300)] + ["big/blob"])
    (ctx / "big" / "blob").write_bytes(os.urandom(3 << 20))
    source = LocalDir(ctx)
    out = tmp_path / "out"
    state = scratch().copy(local("grpcioctx"), "/", "/")
    any_client.solve(state, local_dirs={"grpcioctx": source}, exports=[LocalExport(out)])
    assert (out / "big" / "blob").read_bytes() == (ctx / "big" / "blob").read_bytes()
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == sorted(f"f{i}" for i in range(300))


def test_h2_server_serves_dockerd_session_stream_without_the_pipe(any_client, tmp_path, monkeypatch):
    """The default server takes the hijacked /session socket itself; the pump pipe is for GrpcioServer only."""
    from envd_jupyter.buildkit._transport import DockerTransport

    def no_pipe(*args, **kwargs):
        raise AssertionError("the session was piped through the pump")

    monkeypatch.setattr(DockerTransport, "open_session", no_pipe)
    ctx = tmp_path / "ctx"
    _tree(ctx, ["a", "sub/b"])
    out = tmp_path / "out"
    state = scratch().copy(local("direct"), "/", "/")
    any_client.solve(state, local_dirs={"direct": LocalDir(ctx)}, exports=[LocalExport(out)])
    assert (out / "sub" / "b").read_bytes() == (ctx / "sub" / "b").read_bytes()


def test_large_and_small_files_arrive_intact_when_interleaved(any_client, tmp_path):
    """Blobs over a chunk, walked before hundreds of small files: their DATA interleaves with later STATs."""
    ctx = tmp_path / "ctx"
    _tree(ctx, [f"small/{i:03d}" for i in range(400)])
    (ctx / "a-blobs").mkdir()
    for i in range(3):
        (ctx / "a-blobs" / f"blob{i}").write_bytes(os.urandom((5 << 19) + i))  # 2.5 MiB, odd sizes split frames
    out = tmp_path / "out"
    state = scratch().copy(local("interleaved"), "/", "/")
    source = LocalDir(ctx)
    any_client.solve(state, local_dirs={"interleaved": source}, exports=[LocalExport(out)])
    sent = sorted(str(p.relative_to(ctx)) for p in ctx.rglob("*") if p.is_file())
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sent
    assert all((out / name).read_bytes() == (ctx / name).read_bytes() for name in sent)
    assert source.transfers[-1].data_bytes == sum((ctx / name).stat().st_size for name in sent)
