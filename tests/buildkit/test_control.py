"""Control API on the real daemons: workers, info with its fallback, disk usage, prune, caps."""

from envd_jupyter.buildkit import BuildKitInfo


def test_workers_report_platforms(any_client):
    workers = any_client.workers()
    assert workers and all(w.id for w in workers)
    assert any(p.startswith("linux/") for p in workers[0].platforms)


def test_info_on_current_daemon(docker_current, client_for):
    info = client_for(docker_current).info()
    assert info.source == "info"
    assert info.package == "github.com/moby/buildkit"


def test_info_falls_back_on_buildkit_0_8(docker_old, client_for):
    """dockerd 20.10 has no Control.Info: no exception, an explicit 'none' source."""
    assert client_for(docker_old).info() == BuildKitInfo("", "", "", "none")


def test_disk_usage_lists_records(any_client):
    records = any_client.disk_usage()
    assert all(r.id and r.size >= 0 for r in records)


def test_prune_with_unmatched_filter_removes_nothing(any_client):
    before = {r.id for r in any_client.disk_usage()}
    assert any_client.prune(filters=("id==no-such-record",)) == []
    assert before <= {r.id for r in any_client.disk_usage()} | before


def test_caps_differ_between_daemons(docker_current, docker_classic, docker_old, client_for):
    current = client_for(docker_current).caps()
    classic = client_for(docker_classic).caps()
    old = client_for(docker_old).caps()
    assert {"mergeop", "diffop"} <= current.llb
    assert "mergeop" not in classic.llb and "mergeop" not in old.llb
    assert "exporter.multiple" in current.llb and "exporter.multiple" not in old.llb
    assert "exec.meta.base" in old.llb and "source.image" in old.llb
    assert old.gateway and current.gateway, "gateway caps come from the same Ping"
    assert len(current.llb) > len(old.llb)


def test_caps_are_cached_per_client(docker_old, client_for):
    client = client_for(docker_old)
    assert client.caps() is client.caps()
    assert client.caps(refresh=True) == client.caps()
