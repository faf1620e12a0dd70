"""to_json / to_dot, shaped like `buildctl debug dump-llb` (cmd/buildctl/debug/dumpllb.go, solver/pb/json.go)."""

import json

from envd_jupyter import llb

from ._support import BUSYBOX, marshal


def _lines(definition):
    return [json.loads(line) for line in definition.to_json().splitlines()]


def test_exec_json_shape_and_omitted_zero_values():
    st = BUSYBOX.run(["sh", "-c", "a > b"], mounts=[llb.cache_mount("/c", "id", sharing="private")])
    text = marshal(st).to_json()
    assert "\\u003e" in text  # Go's HTML-safe escaping
    exec_line = _lines(marshal(st))[1]
    mounts = exec_line["Op"]["Op"]["exec"]["mounts"]
    assert mounts[0] == {"dest": "/"}
    assert mounts[1] == {"input": -1, "dest": "/c", "output": -1, "mountType": 3, "cacheOpt": {"ID": "id", "sharing": 1}}
    assert exec_line["OpMetadata"]["caps"]["exec.mount.cache"] is True


def test_file_action_and_user_opt_custom_shapes():
    st = BUSYBOX.file(llb.mkdir("/a", owner="app:7").symlink("/a", "/b"))
    actions = _lines(marshal(st))[1]["Op"]["Op"]["file"]["actions"]
    assert actions[0]["Action"]["mkdir"]["owner"] == {
        "user": {"User": {"byName": {"name": "app"}}}, "group": {"User": {"byId": 7}}}
    assert actions[1] == {"input": 1, "secondaryInput": -1, "output": 0, "Action": {}}  # json.go knows no symlink


def test_dot_labels_and_edges():
    st = BUSYBOX.run(["make", "all"], mounts=[llb.bind_mount("/src", llb.image("alpine"))]).mkdir("/out")
    definition = marshal(st)
    dot = definition.to_dot()
    assert dot.startswith("digraph {\n") and dot.endswith("}\n")
    assert '[label="make all" shape="box"];' in dot
    assert '[label="mkdir{path=/out}" shape="note"];' in dot
    assert f'"{definition.digests[1]}" -> "{definition.digests[2]}" [label="/src"];' in dot
    assert f'[label="{definition.digests[-1]}" shape="plaintext"];' in dot
