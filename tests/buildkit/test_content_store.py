"""The session content store behind local cache export/import: checked writes, reads, index.json tags.

Pure logic with a stand-in for the gRPC context; the real-daemon round trips are in test_cache.py.
"""

from __future__ import annotations

import hashlib
import json

import grpc
import pytest

from envd_jupyter._proto import content_pb2
from envd_jupyter.buildkit._cache import plan_cache
from envd_jupyter.buildkit import CacheSpec
from envd_jupyter.buildkit._session.content import STORE_ID_METADATA, ContentStoreService, LayoutStore


class Aborted(Exception):
    pass


class Context:
    def __init__(self, store_id):
        self.metadata = ((STORE_ID_METADATA, store_id),)

    def invocation_metadata(self):
        return self.metadata

    def abort(self, code, details):
        raise Aborted(code, details)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def service(tmp_path):
    return ContentStoreService({f"local:{tmp_path}": LayoutStore(tmp_path)})


def _write(service, context, chunks, *, expected="", total=0):
    ref = "layer-1"
    requests = [content_pb2.WriteContentRequest(action=content_pb2.STAT, ref=ref, total=total, expected=expected)]
    offset = 0
    for chunk in chunks:
        requests.append(content_pb2.WriteContentRequest(action=content_pb2.WRITE, offset=offset, data=chunk))
        offset += len(chunk)
    requests.append(content_pb2.WriteContentRequest(action=content_pb2.COMMIT, offset=offset, total=total,
                                                    expected=expected))
    handler = service._guard(service._write, streaming=True)
    return list(handler(iter(requests), context))


def test_write_commits_a_checked_blob_then_reads_it_back(service, tmp_path):
    data = b"hello " * 1000
    context = Context(f"local:{tmp_path}")
    responses = _write(service, context, [data[:100], data[100:]], expected=_digest(data), total=len(data))
    assert responses[-1].digest == _digest(data) and responses[-1].offset == len(data)
    assert (tmp_path / "blobs" / "sha256" / _digest(data).split(":")[1]).read_bytes() == data
    assert not (tmp_path / "ingest").exists()
    info = service._info(content_pb2.InfoRequest(digest=_digest(data)), context).info
    assert info.size == len(data)
    read = service._guard(service._read, streaming=True)(
        content_pb2.ReadContentRequest(digest=_digest(data), offset=6, size=12), context)
    assert b"".join(r.data for r in read) == data[6:18]


def test_a_wrong_digest_is_refused_and_leaves_nothing(service, tmp_path):
    with pytest.raises(Aborted) as failure:
        _write(service, Context(f"local:{tmp_path}"), [b"data"], expected=_digest(b"other"))
    assert failure.value.args[0] == grpc.StatusCode.FAILED_PRECONDITION
    assert not (tmp_path / "blobs").exists() and not (tmp_path / "ingest").exists()


def test_existing_blob_answers_already_exists(service, tmp_path):
    context = Context(f"local:{tmp_path}")
    _write(service, context, [b"once"], expected=_digest(b"once"))
    with pytest.raises(Aborted) as failure:
        _write(service, context, [b"once"], expected=_digest(b"once"))
    assert failure.value.args[0] == grpc.StatusCode.ALREADY_EXISTS  # the daemon treats this as done


@pytest.mark.parametrize("digest", ["sha256:../../etc/passwd", "md5:abc", ""])
def test_digests_that_are_not_sha256_hex_are_refused(service, tmp_path, digest):
    with pytest.raises(Aborted) as failure:
        service._guard(service._info)(content_pb2.InfoRequest(digest=digest), Context(f"local:{tmp_path}"))
    assert failure.value.args[0] == grpc.StatusCode.INVALID_ARGUMENT


def test_unknown_store_and_missing_blob(service, tmp_path):
    with pytest.raises(Aborted) as failure:
        service._guard(service._info)(content_pb2.InfoRequest(digest=_digest(b"x")), Context("local:/elsewhere"))
    assert failure.value.args[0] == grpc.StatusCode.NOT_FOUND and "local:/elsewhere" in failure.value.args[1]
    with pytest.raises(Aborted) as failure:
        list(service._guard(service._read, streaming=True)(content_pb2.ReadContentRequest(digest=_digest(b"x")),
                                           Context(f"local:{tmp_path}")))
    assert failure.value.args[0] == grpc.StatusCode.NOT_FOUND


def test_index_tags_are_replaced_and_read_back(tmp_path):
    store = LayoutStore(tmp_path)
    first = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": _digest(b"1"), "size": 1}
    second = {**first, "digest": _digest(b"2")}
    store.tag(first, "latest")
    store.tag({**first, "digest": _digest(b"keep")}, "other")
    store.tag(second, "latest")
    index = json.loads((tmp_path / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [_digest(b"keep"), _digest(b"2")]
    assert store.tagged("latest") == _digest(b"2") and store.tagged("absent") is None
    assert json.loads((tmp_path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}


def test_cache_plan_pins_local_imports_and_skips_empty_ones(tmp_path):
    exported, empty = tmp_path / "exported", tmp_path / "empty"
    LayoutStore(exported).tag({"digest": _digest(b"m"), "size": 1, "mediaType": "x"}, "latest")
    plan = plan_cache([CacheSpec.local(str(exported), export=False), CacheSpec.local(str(empty), export=False)],
                      [CacheSpec.local(str(tmp_path / "out")), CacheSpec.inline()])
    (imported,) = plan.imports
    assert imported.Attrs["digest"] == _digest(b"m")
    assert [e.Type for e in plan.exports] == ["local", "inline"]
    assert sorted(plan.stores) == sorted(f"local:{p}" for p in (tmp_path / "out", exported, empty))
    assert len(plan.session_services()) == 1


def test_concurrent_tags_in_one_directory_are_all_kept(tmp_path):
    import threading

    def tag(n):
        LayoutStore(tmp_path).tag({"digest": _digest(str(n).encode()), "size": 1, "mediaType": "x"}, f"t{n}")

    threads = [threading.Thread(target=tag, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(LayoutStore(tmp_path).tagged(f"t{n}") for n in range(8)) == sorted(
        _digest(str(n).encode()) for n in range(8))


def test_a_second_write_to_a_ref_in_progress_is_refused_until_the_first_ends(service, tmp_path):
    context = Context(f"local:{tmp_path}")
    handler = service._guard(service._write, streaming=True)
    stat = content_pb2.WriteContentRequest(action=content_pb2.STAT, ref="layer-1")
    first = handler(iter([stat, stat]), context)
    next(first)  # the first write is open, waiting for its next message
    with pytest.raises(Aborted) as refused:
        list(handler(iter([stat]), context))
    assert refused.value.args[0] == grpc.StatusCode.UNAVAILABLE and "in progress" in refused.value.args[1]
    first.close()  # the first write ends: the ref is free again
    assert len(list(handler(iter([stat]), context))) == 1
