"""Pure graph tests: the staged shape, stable digests, per-group caching, shared cache ids, image config."""

import json

import pytest

from envd_jupyter.buildkit import Caps
from envd_jupyter.lang import EnvdArgumentError, EnvdFunctions, Environment, exec_cell
from envd_jupyter.lang._chain import diff, image, merge
from envd_jupyter.lang._cog import from_cog_yaml
from envd_jupyter.lang._graph import CACHE_IDS, compile_environment, compile_for_caps
from envd_jupyter.lang._layers import layers_label

UNIQUE = "test-local-unique"


def record(name="envd", *, apt=(("git", "curl"), ("vim",)), pip=(("numpy",), ("pandas", "scipy")), runs=("echo hi",)):
    fns = EnvdFunctions(Environment(name=name))
    fns.base(image="python:3.11")
    for group in apt:
        fns.install.apt_packages(name=list(group))
    for group in pip:
        fns.install.python_packages(name=list(group))
    for command in runs:
        fns.run([command])
    return fns.env


def kinds(definition):
    return [op.WhichOneof("op") for op in definition.ops]


def head(state):
    return state.marshal(local_unique_id=UNIQUE).head[0]


def exec_ops(definition):
    return [op.exec for op in definition.ops if op.WhichOneof("op") == "exec"]


def test_staged_shape_parallel_branches_joined_by_merge():
    build = compile_environment(record())
    definition = build.marshal(local_unique_id=UNIQUE)
    ks = kinds(definition)
    assert ks.count("exec") == 2 + 1 + 2 + 1  # apt groups, python venv, pip groups, user run
    assert ks.count("diff") == 4 and ks.count("merge") == 1 and ks.count("source") == 1
    by_digest = dict(zip(definition.digests, definition.ops))
    (merge_op,) = [op for op in definition.ops if op.WhichOneof("op") == "merge"]
    assert len(merge_op.inputs) == 5  # base + apt chain + venv + 2 pip groups
    base = head(build.stages["base"])
    python_root = head(build.steps["python"])
    for key in ("apt[0]", "python"):
        assert by_digest[head(build.steps[key])].inputs[0].digest == base
    # apt groups share dpkg's status file: the second one installs on top of the first
    assert by_digest[head(build.steps["apt[1]"])].inputs[0].digest == head(build.steps["apt[0]"])
    for key in ("pip[0]", "pip[1]"):
        assert by_digest[head(build.steps[key])].inputs[0].digest == python_root
    user_run = by_digest[head(build.stages["user"])]
    assert user_run.inputs[0].digest == head(build.stages["managed"])


def test_digests_are_stable_and_independent_of_name_and_managed_call_order():
    first = compile_environment(record("a")).marshal(local_unique_id=UNIQUE)
    again = compile_environment(record("a")).marshal(local_unique_id=UNIQUE)
    assert first.to_bytes() == again.to_bytes()
    other_name = compile_environment(record("b")).marshal(local_unique_id=UNIQUE)
    assert other_name.digests == first.digests
    fns = EnvdFunctions(Environment())
    fns.base(image="python:3.11")
    fns.install.python_packages(name=["numpy"])  # pip written before apt: same graph
    fns.install.apt_packages(name=["git", "curl"])
    fns.install.python_packages(name=["pandas", "scipy"])
    fns.install.apt_packages(name=["vim"])
    fns.run(["echo hi"])
    assert compile_environment(fns.env).marshal(local_unique_id=UNIQUE).digests == first.digests


def test_changing_one_pip_group_leaves_every_other_group_untouched():
    before = compile_environment(record())
    after = compile_environment(record(pip=(("numpy",), ("pandas==2.2", "scipy"))))
    for key in ("apt[0]", "apt[1]", "python", "pip[0]"):
        assert head(before.steps[key]) == head(after.steps[key]), key
    assert head(before.steps["pip[1]"]) != head(after.steps["pip[1]"])


def test_adding_the_first_pip_group_does_not_touch_apt():
    without = compile_environment(record(pip=()))
    with_pip = compile_environment(record())
    assert head(without.steps["apt[0]"]) == head(with_pip.steps["apt[0]"])


def cache_ids(definition):
    return {(m.dest, m.cacheOpt.ID, m.cacheOpt.sharing) for e in exec_ops(definition) for m in e.mounts if m.cacheOpt.ID}


def test_cache_mount_ids_do_not_depend_on_the_environment():
    one = cache_ids(compile_environment(record("project-one")).marshal())
    two = cache_ids(compile_environment(record("project-two")).marshal())
    assert one == two
    assert {dest for dest, _, _ in one} == {"/var/cache/apt", "/var/lib/apt", "/root/.cache/pip"}
    assert {cid for _, cid, _ in one} == {CACHE_IDS[d] for d in ("/var/cache/apt", "/var/lib/apt", "/root/.cache/pip")}
    assert not any("project" in cid for _, cid, _ in one)


def test_sequential_form_for_daemons_without_merge_keeps_one_step_per_group():
    build = compile_for_caps(record(), {"exec.meta.base", "file.base"})
    definition = build.marshal(local_unique_id=UNIQUE)
    assert "merge" not in kinds(definition) and "diff" not in kinds(definition)
    assert kinds(definition).count("exec") == 6
    by_digest = dict(zip(definition.digests, definition.ops))
    assert by_digest[head(build.steps["apt[1]"])].inputs[0].digest == head(build.steps["apt[0]"])
    for key in ("pip[0]", "pip[1]"):  # pip groups stay independent branches of the venv root
        assert by_digest[head(build.steps[key])].inputs[0].digest == head(build.steps["python"])
    join = by_digest[head(build.stages["managed"])]
    assert [a.WhichOneof("action") for a in join.file.actions] == ["copy", "copy"]
    parallel = compile_for_caps(record(), {"mergeop", "diffop"}).marshal(local_unique_id=UNIQUE)
    assert "merge" in kinds(parallel)


# What Client.caps() gives for each daemon flavour: the parallel form only where MergeOp and DiffOp are.
WITH_MERGE = Caps(llb=frozenset({"exec.meta.base", "file.base", "mergeop", "diffop"}), gateway=frozenset())
WITHOUT_MERGE = Caps(llb=frozenset({"exec.meta.base", "file.base"}), gateway=frozenset())


@pytest.mark.parametrize("caps, parallel", [(None, True), (WITH_MERGE, True), (WITH_MERGE.llb, True),
                                            (WITHOUT_MERGE, False), (WITHOUT_MERGE.llb, False)])
def test_environment_marshal_picks_the_form_the_caps_accept(caps, parallel):
    env = record()
    definition = env.marshal(caps, local_unique_id=UNIQUE)
    expected = compile_environment(env, parallel=parallel).marshal(local_unique_id=UNIQUE)
    assert definition.digests == expected.digests and ("merge" in kinds(definition)) == parallel
    assert env.to_dot(caps, local_unique_id=UNIQUE) == expected.to_dot()
    assert env.marshal(caps, network="host", local_unique_id=UNIQUE).digests != definition.digests


def test_chain_marshal_lowers_merge_inputs_for_a_daemon_without_merge():
    root = image("python:3.11")
    tools = merge([root.apt_packages(["git"]).python_packages(["numpy"]), root.python_packages(["black"])])
    state = tools.run("make")
    assert "diffop" in state.marshal(local_unique_id=UNIQUE).minimum_caps
    lowered = state.marshal(WITHOUT_MERGE, local_unique_id=UNIQUE)
    assert "diff" not in kinds(lowered) and "diffop" not in lowered.minimum_caps
    assert kinds(lowered).count("merge") == 1  # the user's own merge, which the client lowers to copies
    assert state.to_dot(WITHOUT_MERGE, local_unique_id=UNIQUE) == lowered.to_dot()


def test_every_op_records_the_users_line():
    env = exec_cell('base(image="python:3.11")\ninstall.apt_packages(name=["git"])\n'
                    'install.python_packages(name=["numpy"])\nio.http(url="https://example.invalid/a.bin")\n'
                    'run(["echo hi"])\n', name="cell[7]")
    definition = compile_environment(env).marshal()
    lines = {}
    for digest, op in zip(definition.digests[:-1], definition.ops[:-1]):
        (loc,) = definition.locations(digest)[:1]
        assert loc.filename == "cell[7]"
        lines.setdefault(op.WhichOneof("op"), set()).add(loc.line)
    assert lines["exec"] == {2, 3, 5} and lines["source"] >= {1, 4}


def test_image_config_travels_in_exporter_shape():
    env = exec_cell('base(image="python:3.11")\ninstall.python_packages(name=["numpy"])\n'
                    'runtime.environ(env={"MODE": "dev"}, extra_path=["/opt/tools/bin"])\n'
                    'runtime.expose(envd_port=8080, service="web")\nconfig.entrypoint(args=["python", "-m", "app"])\n')
    build = compile_environment(env)
    doc = json.loads(build.exporter_attrs()["containerimage.config"])
    config = doc["config"]
    assert doc["os"] == "linux" and doc["architecture"]
    assert config["Env"][0] == "PATH=/opt/envd/venv/bin:/opt/tools/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert "MODE=dev" in config["Env"] and "VIRTUAL_ENV=/opt/envd/venv" in config["Env"]
    assert config["ExposedPorts"] == {"8080/tcp": {}} and config["Entrypoint"] == ["python", "-m", "app"]
    labels = config["Labels"]
    assert labels["ai.tensorchord.envd.service.web"] == "8080"
    assert labels["org.envd-jupyter.layers"] == layers_label(build.layers)
    runtime = json.loads(labels["ai.tensorchord.envd.graph.runtime"])  # what `envd up` reads
    assert runtime["expose"] == [{"EnvdPort": 8080, "HostPort": 0, "ServiceName": "web", "ListeningAddr": "127.0.0.1"}]
    assert runtime["environ"]["MODE"] == "dev" and runtime["env_paths"][:2] == ["/opt/envd/venv/bin", "/opt/tools/bin"]
    assert json.loads(labels["ai.tensorchord.envd.pypi.commands"]) == ["numpy"]
    assert [layer.key for layer in build.layers] == ["python", "pip[0]"]


def test_runtime_environ_does_not_invalidate_build_steps():
    plain = compile_environment(record())
    env = record()
    EnvdFunctions(env).runtime.environ(env={"MODE": "x"}, extra_path=["/x"])
    assert compile_environment(env).marshal().digests == plain.marshal().digests


def test_chaining_form_gives_the_same_graph_as_envd_functions():
    chained = (image("python:3.11").apt_packages(["git", "curl"]).apt_packages(["vim"])
               .python_packages(["numpy"]).python_packages(["pandas", "scipy"]).run("echo hi"))
    assert chained.marshal(local_unique_id=UNIQUE).digests == \
        compile_environment(record()).marshal(local_unique_id=UNIQUE).digests


def test_chained_install_after_a_run_stays_sequential():
    state = image("python:3.11").apt_packages(["git"]).run("make").apt_packages(["vim"])
    definition = state.marshal()
    by_digest = dict(zip(definition.digests, definition.ops))
    last = by_digest[definition.head[0]]
    assert "vim" in last.exec.meta.args[-1]
    assert "make" in by_digest[last.inputs[0].digest].exec.meta.args[-1]


def test_merge_and_diff_statements():
    a = image("python:3.11").apt_packages(["git"])
    b = image("python:3.11").python_packages(["numpy"]).environ(env={"B": "1"})
    merged = merge([a, b]).run("echo merged")
    assert "merge" in kinds(merged.marshal()) and dict(merged.image_config.env)["B"] == "1"
    delta = diff(image("python:3.11"), a)
    assert kinds(delta.marshal())[-2] == "diff"


def test_cog_yaml_compiles_to_role_steps(tmp_path):
    (tmp_path / "requirements.txt").write_text("numpy==1.26\n")
    (tmp_path / "cog.yaml").write_text('build:\n  python_version: "3.11"\n  system_packages: ["libgl1"]\n'
                                       '  python_requirements: requirements.txt\n  run: ["echo x"]\n')
    build = compile_environment(from_cog_yaml(tmp_path / "cog.yaml", base_image="python:3.11"))
    assert set(build.steps) == {"apt[0]", "python", "pip[0]", "pip[1]", "user[0]", "user[1]"}  # pip[1]: the cog SDK
    definition = build.marshal(local_unique_id=UNIQUE)
    sources = [op.source.identifier for op in definition.ops if op.WhichOneof("op") == "source"]
    assert "local://context" in sources
    pip = [e for e in exec_ops(definition) if "pip install" in e.meta.args[-1]][0]
    assert "-r /envd/requirements/requirements.txt" in pip.meta.args[-1]
    assert "python_version" in json.loads(build.exporter_attrs()["containerimage.config"])["config"]["Labels"]["run.cog.config"]


def test_merge_and_diff_reject_non_states_at_the_callers_line():
    with pytest.raises(EnvdArgumentError) as info:
        merge([image("python:3.11"), "python:3.12"])
    assert str(info.value).endswith("merge: want states from image(...) or merge(...), got str")
    assert info.value.at.file == __file__
    with pytest.raises(EnvdArgumentError, match="merge: give at least one state"):
        merge([])
    with pytest.raises(EnvdArgumentError, match=r"diff: want states .* got NoneType"):
        diff(image("python:3.11"), None)
