"""Cache export then import on a daemon that lost the steps: the rebuilt steps come from the imported cache.

"Pruned" means this test's own cache records (found by its unique token) are pruned, so other
tests sharing the daemons keep their cache. After that prune a plain rebuild would run every
step again; ``cached`` on each step in the progress model proves the import served it.

What each daemon supports (measured here): dockerd 26 with the containerd store exports and
imports registry, local and inline cache; dockerd 26 classic and 20.10 export only inline cache
and refuse registry/local exports with a clear error; every flavour imports inline cache.
"""

from __future__ import annotations

import json
import uuid

import pytest

from envd_jupyter.buildkit import CacheSpec, Image, PushViaDocker, SolveError

from llbdefs import chain

FLAVOURS = ["current", "classic", "old"]


def _steps(busybox, unique):
    return chain(busybox, [f"echo {i} {unique} > /step{i}" for i in range(3)], network="none")


def _prune_steps(client, unique) -> None:
    """Remove every cache record of this test's steps (and only those), then check they are gone."""
    ids = [record.id for record in client.disk_usage() if unique in record.description]
    assert ids, "the first build left cache records"
    client.prune(all=True, filters=tuple(f"id=={record_id}" for record_id in ids))
    assert not [record for record in client.disk_usage() if unique in record.description]


def _step_vertices(result, unique):
    steps = [v for v in result.model.vertices.values() if unique in v.name and "> /step" in v.name]
    assert len(steps) == 3
    return steps


def _roundtrip(client, busybox, unique, *, export_spec, import_spec, first_exports=()):
    first = client.solve(_steps(busybox, unique), exports=list(first_exports), cache_exports=[export_spec])
    assert not any(v.cached for v in _step_vertices(first, unique))
    _prune_steps(client, unique)
    again = client.solve(_steps(busybox, unique), cache_imports=[import_spec])
    assert all(v.cached for v in _step_vertices(again, unique)), "every step came from the imported cache"
    return first


def test_registry_cache_roundtrip_after_prune(docker_current, client_for, daemon_env, busybox, unique):
    ref = f"{daemon_env['ENVD_REGISTRY']}/envd-jupyter-test/cache-roundtrip:{unique}"
    _roundtrip(client_for(docker_current), busybox, unique,
               export_spec=CacheSpec.registry(ref, mode="max"), import_spec=CacheSpec.registry(ref))


def test_local_cache_roundtrip_after_prune(docker_current, client_for, busybox, unique, tmp_path):
    cache_dir = tmp_path / "cache"
    first = _roundtrip(client_for(docker_current), busybox, unique,
                       export_spec=CacheSpec.local(str(cache_dir)), import_spec=CacheSpec.local(str(cache_dir),
                                                                                               export=False))
    index = json.loads((cache_dir / "index.json").read_text())
    (manifest,) = index["manifests"]
    assert manifest["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    assert manifest["digest"] == json.loads(first.exporter_response["cache.manifest"])["digest"]
    assert (cache_dir / "blobs" / "sha256" / manifest["digest"].split(":")[1]).is_file()
    assert not (cache_dir / "ingest").exists()


def test_local_cache_export_retags_latest(docker_current, client_for, busybox, unique, tmp_path):
    """A second export into the same directory moves the tag; blobs both builds share are written once."""
    client, cache_dir = client_for(docker_current), tmp_path / "cache"
    for round_ in range(2):
        client.solve(_steps(busybox, f"{unique}-{round_}"), cache_exports=[CacheSpec.local(str(cache_dir))])
    (manifest,) = json.loads((cache_dir / "index.json").read_text())["manifests"]
    assert (cache_dir / "blobs" / "sha256" / manifest["digest"].split(":")[1]).is_file()


def test_local_cache_import_of_an_empty_directory_builds_normally(docker_current, client_for, busybox, unique,
                                                                  tmp_path):
    result = client_for(docker_current).solve(_steps(busybox, unique),
                                              cache_imports=[CacheSpec.local(str(tmp_path), export=False)])
    assert not any(v.cached for v in _step_vertices(result, unique))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_inline_cache_roundtrip_through_the_registry(request, flavour, client_for, daemon_env, busybox, unique):
    """Inline cache rides in the pushed image's config; importing that image restores the steps anywhere."""
    socket_path = request.getfixturevalue(f"docker_{flavour}")
    name = f"{daemon_env['ENVD_REGISTRY']}/envd-jupyter-test/inline-{flavour}:{unique}"
    export = Image(name, push=True) if flavour == "current" else PushViaDocker(name, socket_path)
    _roundtrip(client_for(socket_path), busybox, unique, export_spec=CacheSpec.inline(),
               import_spec=CacheSpec.registry(name), first_exports=[export])


@pytest.mark.parametrize("flavour", ["classic", "old"])
@pytest.mark.parametrize("kind", ["registry", "local"])
def test_unsupported_cache_export_is_a_clear_error(request, flavour, kind, client_for, daemon_env, busybox, unique,
                                                   tmp_path):
    client = client_for(request.getfixturevalue(f"docker_{flavour}"))
    spec = (CacheSpec.registry(f"{daemon_env['ENVD_REGISTRY']}/envd-jupyter-test/never:{unique}") if kind == "registry"
            else CacheSpec.local(str(tmp_path / "cache")))
    with pytest.raises(SolveError) as failure:
        client.solve(_steps(busybox, unique), cache_exports=[spec])
    message = str(failure.value)
    assert f"cache export type {kind!r} is not supported" in message
    assert "CacheSpec.inline()" in message and "\n" not in message


@pytest.mark.parametrize("route", ["plain", "gateway"])
def test_local_cache_from_current_serves_the_classic_store(route, docker_current, docker_classic, client_for, busybox,
                                                           unique, tmp_path):
    """The cache directory is the client's: one daemon exports it, another (same BuildKit line) imports it.

    ``gateway``: an image export with a config solves through LLBBridge, whose Solve must name the imports.
    """
    cache_dir = str(tmp_path / "cache")
    client_for(docker_current).solve(_steps(busybox, unique), cache_exports=[CacheSpec.local(cache_dir)])
    exports = [Image(f"envd-jupyter-test/from-cache:{unique}", attrs={"containerimage.config": "{}"})]
    result = client_for(docker_classic).solve(_steps(busybox, unique), exports=exports if route == "gateway" else [],
                                              cache_imports=[CacheSpec.local(cache_dir, export=False)])
    assert all(v.cached for v in _step_vertices(result, unique))
