"""Pure tests of the merge (= image layer) order: history first, then heaviest, dependencies below."""

from envd_jupyter import llb
from envd_jupyter.lang import EnvdFunctions, Environment
from envd_jupyter.lang._graph import compile_environment
from envd_jupyter.lang._layers import DIGEST_CHARS, Layer, arrange, layers_label, parse_layers_label
from envd_jupyter.lang._pip_conflicts import conflict_error, conflicts, distributions
from envd_jupyter.lang._errors import Location


def record(pip=(("small==1.0",), ("torch", "numpy"), ("tool",))):
    fns = EnvdFunctions(Environment())
    fns.base(image="python:3.11")
    fns.install.apt_packages(name=["tree", "jq"])
    for group in pip:
        fns.install.python_packages(name=list(group))
    fns.run(["echo hi"])
    return fns.env


def keys(build):
    return [layer.key for layer in build.layers]


def merge_inputs(build):
    definition = build.stages["managed"].marshal()
    (merge,) = [op for op in definition.ops if op.WhichOneof("op") == "merge"]
    return [definition.op(i.digest) for i in merge.inputs]


def test_without_history_or_weights_the_written_order_is_kept():
    assert keys(compile_environment(record())) == ["apt", "python", "pip[0]", "pip[1]", "pip[2]"]


def test_weights_put_the_heaviest_branch_first_with_the_venv_right_below_it():
    build = compile_environment(record(), weights={"apt": 5, "python": 2, "pip[0]": 1, "pip[1]": 40, "pip[2]": 1})
    assert keys(build) == ["python", "pip[1]", "apt", "pip[0]", "pip[2]"]
    # base, then diff(base, venv), then diff(venv, torch): a chain BuildKit's merge reuses without copying
    inputs = merge_inputs(build)
    venv_diff, torch_diff = inputs[1], inputs[2]
    assert venv_diff.WhichOneof("op") == torch_diff.WhichOneof("op") == "diff"
    definition = build.stages["managed"].marshal()
    assert torch_diff.inputs[0].digest == venv_diff.inputs[1].digest  # torch's lower is the venv's upper
    assert venv_diff.inputs[0].digest == build.stages["base"].marshal().head[0]


def test_the_previous_order_is_kept_and_a_changed_group_goes_on_top():
    first = compile_environment(record(), weights={"apt": 5, "python": 2, "pip[0]": 1, "pip[1]": 40, "pip[2]": 1})
    previous = parse_layers_label(layers_label(first.layers))
    bumped = compile_environment(record(pip=(("small==2.0",), ("torch", "numpy"), ("tool",))), previous=previous)
    assert keys(bumped) == ["python", "pip[1]", "apt", "pip[2]", "pip[0]"]
    kept = [layer.identity for layer in bumped.layers[:4]]
    assert kept == [layer.identity for layer in first.layers if layer.key != "pip[0]"]
    assert bumped.layers[4].identity not in previous
    again = compile_environment(record(pip=(("small==3.0",), ("torch", "numpy"), ("tool",))),
                                previous=parse_layers_label(layers_label(bumped.layers)))
    assert keys(again) == keys(bumped)  # the second edit of the same group leaves every layer below it alone


def test_without_history_layers_served_from_cache_stay_below_the_ones_that_ran():
    ran_only_the_small_group = {"pip[0]": 1.5}  # the others came from the daemon's cache
    build = compile_environment(record(pip=(("small==2.0",), ("torch", "numpy"), ("tool",))),
                                weights=ran_only_the_small_group)
    assert keys(build) == ["apt", "python", "pip[1]", "pip[2]", "pip[0]"]


def test_the_order_changes_no_file_only_the_merge_order():
    plain = compile_environment(record())
    weighed = compile_environment(record(), weights={"pip[1]": 40})
    assert {layer.identity for layer in plain.layers} == {layer.identity for layer in weighed.layers}
    assert plain.stages["managed"].marshal().digests != weighed.stages["managed"].marshal().digests
    assert plain.steps["pip[1]"].marshal().digests == weighed.steps["pip[1]"].marshal().digests


def fake(key, needs=None):
    state = llb.scratch().mkfile(f"/{key}", key.encode())
    return Layer(key, state, state, key.encode().hex().ljust(DIGEST_CHARS, "0"), needs)


def test_a_layer_is_never_placed_below_the_one_it_needs():
    venv, pip = fake("python"), fake("pip[0]", needs="python")
    ordered = arrange([venv, pip], previous=[pip.identity])  # only possible with a tampered label
    assert [layer.key for layer in ordered] == ["python", "pip[0]"]


def test_a_malformed_label_is_no_history():
    assert parse_layers_label(None) == [] and parse_layers_label("") == []
    assert parse_layers_label("zz,12") == []
    good = "0123456789abcdef"
    assert parse_layers_label(f"{good},{good[::-1]}") == [good, good[::-1]]


def test_pip_conflicts_are_found_by_distribution_name_and_named_per_group():
    merged = distributions(["numpy-1.26.4.dist-info", "numpy-2.0.1.dist-info", "Typing_Extensions-4.12.dist-info",
                            "typing_extensions-4.12.dist-info", "pip-24.0.dist-info", "numpy", "README"])
    assert conflicts(merged) == {"numpy": {"1.26.4", "2.0.1"}}
    error = conflict_error("numpy", {Location("build.envd", 4): "1.26.4", Location("build.envd", 7): "2.0.1"})
    assert str(error) == ("pip groups install different versions of numpy: 1.26.4 (build.envd:4), 2.0.1 "
                          "(build.envd:7); list them in one install.python_packages call or pin one version in both")
