"""The five vectors produced by Go client/llb v0.26.3 (tests/data/golden-llb, see README there)."""

from pathlib import Path

import pytest

from envd_jupyter import llb

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden-llb"
BUSYBOX = "docker.io/library/busybox:latest"


def _cases():
    bb = llb.image(BUSYBOX)
    return {
        "01_image": lambda: bb,
        "02_image_run": lambda: bb.run(["echo", "hi"]),
        "05_file_ops": lambda: bb.file(
            llb.mkdir("/app", 0o755, parents=True)
            .mkfile("/app/hello.txt", "hello\n", 0o644)
            .rm("/etc/motd", allow_not_found=True)
            .copy(llb.image("alpine:3.20"), "/etc/alpine-release", "/app/release", create_dest_path=True)
        ),
        "07_merge3": lambda: llb.merge([
            bb,
            llb.scratch().file(llb.mkfile("/a", "a", 0o644)),
            llb.scratch().file(llb.mkfile("/b", "b", 0o644)),
        ]),
        "12_parallel_merge": lambda: llb.merge([
            bb.run(["sh", "-c", "echo a > /a"]),
            bb.run(["sh", "-c", "echo b > /b"]),
        ]),
    }


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_digests_match_go(name):
    definition = CASES[name]().marshal(platform="linux/amd64")
    assert definition.digests == (GOLDEN / f"{name}.digests").read_text().split()


@pytest.mark.parametrize("name", sorted(CASES))
def test_definition_bytes_match_go(name):
    definition = CASES[name]().marshal(platform="linux/amd64")
    assert definition.to_bytes() == (GOLDEN / f"{name}.det.pb").read_bytes()


@pytest.mark.parametrize("name", sorted(CASES))
def test_to_json_matches_buildctl_dump_llb(name):
    definition = CASES[name]().marshal(platform="linux/amd64")
    assert definition.to_json() == (GOLDEN / f"{name}.dump-llb.json").read_text()


@pytest.mark.parametrize("name", sorted(CASES))
def test_go_bytes_parse_and_reserialise_identically(name):
    data = (GOLDEN / f"{name}.det.pb").read_bytes()
    definition = llb.Definition.from_bytes(data)
    assert definition.to_bytes() == data
    assert definition.digests == (GOLDEN / f"{name}.digests").read_text().split()
    assert definition.to_json() == (GOLDEN / f"{name}.dump-llb.json").read_text()
