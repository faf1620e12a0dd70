"""The client's excludes win over anything the daemon sends (issue 17 item 3), as in fsutil's FilterFS.

A fake daemon asks for the context with hostile metadata: negations of the client's patterns,
``override-excludes``, include patterns and follow paths naming the excluded files. The real
FileSync sender must offer none of them.
"""

from __future__ import annotations

import pytest

from envd_jupyter.buildkit._session.filesync import FileSyncService, LocalDir

from hostile import FakeDaemon


@pytest.fixture
def context(tmp_path):
    ctx = tmp_path / "ctx"
    (ctx / "private").mkdir(parents=True)
    (ctx / "src").mkdir()
    (ctx / "keep.txt").write_text("public")
    (ctx / "secret.env").write_text("TOKEN=1")
    (ctx / "private" / "key").write_text("k")
    (ctx / "src" / "app.py").write_text("print()")
    (ctx / "src" / "signing.key").write_text("k")
    (ctx / "link-to-secret").symlink_to("secret.env")
    (ctx / ".dockerignore").write_text("secret.env\nprivate\n")
    return ctx


HOSTILE = {
    "negations": [("exclude-patterns", "!secret.env"), ("exclude-patterns", "!private/key"),
                  ("exclude-patterns", "!**")],
    "override": [("override-excludes", "true")],
    "includes": [("include-patterns", "secret.env"), ("include-patterns", "private/key"),
                 ("include-patterns", "src/signing.key"), ("include-patterns", "keep.txt")],
    "followpaths": [("followpaths", "link-to-secret"), ("followpaths", "private/key")],
    "everything": [("override-excludes", "true"), ("exclude-patterns", "!**"), ("exclude-patterns", "!*"),
                   ("followpaths", "secret.env"), ("include-patterns", "**")],
}
EXCLUDED = {"secret.env", "private", "private/key", "src/signing.key"}


@pytest.mark.parametrize("attack", list(HOSTILE))
def test_daemon_patterns_never_bring_back_what_the_client_excludes(context, attack):
    service = FileSyncService({"ctx": LocalDir(context, excludes=("**/*.key",))})
    with FakeDaemon([service]) as daemon:
        offered = daemon.list_context([("dir-name", "ctx"), *HOSTILE[attack]])
    assert not EXCLUDED & set(offered), offered
    assert offered, "the walk offered something, so the attack was really evaluated"


def test_without_attacks_the_walk_offers_the_rest(context):
    service = FileSyncService({"ctx": LocalDir(context, excludes=("**/*.key",))})
    with FakeDaemon([service]) as daemon:
        offered = daemon.list_context([("dir-name", "ctx")])
    assert offered == [".dockerignore", "keep.txt", "link-to-secret", "src", "src/app.py"]


def test_the_clients_own_negation_still_reincludes(context):
    (context / ".dockerignore").write_text("private\n!private/key\n")
    service = FileSyncService({"ctx": LocalDir(context)})
    with FakeDaemon([service]) as daemon:
        offered = daemon.list_context([("dir-name", "ctx"), ("exclude-patterns", "src")])
    assert "private/key" in offered and "private" in offered  # its parent comes with it, as fsutil sends it
    assert not any(path.startswith("src") for path in offered)


def test_a_dir_name_the_client_did_not_offer_is_refused(context):
    service = FileSyncService({"ctx": LocalDir(context)})
    with FakeDaemon([service]) as daemon:
        with pytest.raises(Exception, match="no access allowed"):
            daemon.list_context([("dir-name", "../ctx")])
