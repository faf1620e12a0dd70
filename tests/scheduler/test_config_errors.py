"""Every config mistake names its path and what was expected."""

import subprocess
import sys
from pathlib import Path

import pytest

from envd_jupyter.scheduler import ConfigError, parse_config

REPO = Path(__file__).resolve().parents[2]

OK_PLUGINS = """
plugins:
- {type: in-flight-scorer, name: load}
- {type: healthy-filter, name: up}
"""

CASES = [
    ("unknown top-level field", "plugin: []\nschedulingProfiles: []", "plugin", "unknown field; expected one of apiVersion, kind, plugins, schedulingProfiles"),
    ("wrong kind", "kind: Foo\nplugins: []\nschedulingProfiles: []", "kind", "expected 'EndpointPickerConfig'"),
    ("missing profiles", "plugins: []", "schedulingProfiles", "required field is missing"),
    ("plugins not a list", "plugins: {}\nschedulingProfiles: []", "plugins", "expected a list, got dict"),
    ("unknown plugin type", "plugins: [{type: magic}]\nschedulingProfiles: []", "plugins[0].type", "unknown plugin type 'magic'; known: "),
    ("unknown plugin field", "plugins: [{type: in-flight-scorer, weight: 2}]\nschedulingProfiles: []", "plugins[0].weight", "unknown field"),
    ("duplicate plugin name", OK_PLUGINS + "- {type: free-disk-scorer, name: load}\nschedulingProfiles: []", "plugins[2].name", "duplicate plugin name 'load' (first defined at plugins[0])"),
    ("unknown parameter", "plugins: [{type: saturation-filter, parameters: {max_in_flight: 3}}]\nschedulingProfiles: []", "plugins[0].parameters.max_in_flight", "unknown parameter (did you mean 'maxInFlight'?)"),
    ("parameter type", "plugins: [{type: saturation-filter, parameters: {maxInFlight: lots}}]\nschedulingProfiles: []", "plugins[0].parameters.maxInFlight", "expected an integer, got 'lots'"),
    ("parameter range", "plugins: [{type: saturation-filter, parameters: {maxInFlight: -1}}]\nschedulingProfiles: []", "plugins[0].parameters.maxInFlight", "must be >= 0"),
    ("parameter enum", "plugins: [{type: cache-affinity-scorer, parameters: {mode: exact}}]\nschedulingProfiles: []", "plugins[0].parameters.mode", "expected one of 'approximate', 'precise'"),
    ("nested parameter", "plugins: [{type: cache-affinity-scorer, parameters: {kindWeights: {exec: -1}}}]\nschedulingProfiles: []", "plugins[0].parameters.kindWeights.exec", "must be a finite number >= 0"),
    ("nan parameter", "plugins: [{type: max-score-picker, parameters: {tieTolerance: .nan}}]\nschedulingProfiles: []", "plugins[0].parameters.tieTolerance", "must be a finite number, got nan"),
    ("infinite parameter", "plugins: [{type: max-score-picker, parameters: {tieTolerance: .inf}}]\nschedulingProfiles: []", "plugins[0].parameters.tieTolerance", "must be a finite number, got inf"),
    ("parameter past the largest float", "plugins: [{type: failure-rate-scorer, parameters: {pseudoSolves: 1" + "0" * 400 + "}}]\nschedulingProfiles: []",
     "plugins[0].parameters.pseudoSolves", "must be a finite number, got 1000"),
    ("infinite kind weight", "plugins: [{type: cache-affinity-filter, parameters: {kindWeights: {exec: .inf}}}]\nschedulingProfiles: []", "plugins[0].parameters.kindWeights.exec", "finite"),
    ("missing required parameter", "plugins: [{type: prior-pick-scorer}]\nschedulingProfiles: []", "plugins[0].parameters", "missing 1 required"),
    ("no profiles", OK_PLUGINS + "schedulingProfiles: []", "schedulingProfiles", "at least one profile is required"),
    ("dangling ref", OK_PLUGINS + "schedulingProfiles:\n- {name: a, plugins: [{pluginRef: up}]}\n- {name: b, plugins: [{pluginRef: x}]}",
     "schedulingProfiles[1].plugins[0].pluginRef", "no plugin named 'x'; defined: load, up"),
    ("duplicate profile", OK_PLUGINS + "schedulingProfiles:\n- {name: a, plugins: []}\n- {name: a, plugins: []}", "schedulingProfiles[1].name", "duplicate profile name 'a'"),
    ("unknown ref field", OK_PLUGINS + "schedulingProfiles:\n- {name: a, plugins: [{pluginRef: load, wieght: 2}]}", "schedulingProfiles[0].plugins[0].wieght", "unknown field"),
    ("negative weight", OK_PLUGINS + "schedulingProfiles:\n- {name: a, plugins: [{pluginRef: load, weight: -1}]}", "schedulingProfiles[0].plugins[0].weight", "expected a number >= 0, got -1"),
    ("infinite weight", OK_PLUGINS + "schedulingProfiles:\n- {name: a, plugins: [{pluginRef: load, weight: .inf}]}", "schedulingProfiles[0].plugins[0].weight", "must be a finite number, got inf"),
    ("negative infinite weight", OK_PLUGINS + "schedulingProfiles:\n- {name: a, plugins: [{pluginRef: load, weight: -.inf}]}", "schedulingProfiles[0].plugins[0].weight", "must be a finite number, got -inf"),
    ("nan weight", OK_PLUGINS + "schedulingProfiles:\n- {name: a, plugins: [{pluginRef: load, weight: .nan}]}", "schedulingProfiles[0].plugins[0].weight", "must be a finite number, got nan"),
    ("weight overflowing to inf", OK_PLUGINS + "schedulingProfiles:\n- {name: a, plugins: [{pluginRef: load, weight: 1.0e+999}]}", "schedulingProfiles[0].plugins[0].weight", "must be a finite number, got inf"),
    ("weight past the largest float", OK_PLUGINS + "schedulingProfiles:\n- {name: a, plugins: [{pluginRef: load, weight: 1" + "0" * 400 + "}]}",
     "schedulingProfiles[0].plugins[0].weight", "must be a finite number, got 1000"),
    ("weights summing past the largest float", OK_PLUGINS + "- {type: free-disk-scorer}\nschedulingProfiles:\n- {name: a, plugins: [{pluginRef: load, weight: 1.0e+308}, {pluginRef: free-disk-scorer, weight: 1.0e+308}]}",
     "schedulingProfiles[0].plugins[1].weight", "the profile's weights add up past the largest float; got 1e+308"),
    ("weight on filter", OK_PLUGINS + "schedulingProfiles:\n- {name: a, plugins: [{pluginRef: up, weight: 2}]}", "schedulingProfiles[0].plugins[0].weight", "weight applies to scorers only; 'up' is a filter"),
    ("ref twice", OK_PLUGINS + "schedulingProfiles:\n- {name: a, plugins: [{pluginRef: up}, {pluginRef: up}]}", "schedulingProfiles[0].plugins[1].pluginRef", "'up' is already in this profile"),
    ("two pickers", "plugins: [{type: random-picker}, {type: max-score-picker}]\nschedulingProfiles:\n- {name: a, plugins: [{pluginRef: random-picker}, {pluginRef: max-score-picker}]}",
     "schedulingProfiles[0].plugins[1].pluginRef", "a profile has one picker; 'random-picker' is already at schedulingProfiles[0].plugins[0]"),
    ("handler inside profile", "plugins: [{type: single-profile-handler, name: h}]\nschedulingProfiles:\n- {name: a, plugins: [{pluginRef: h}]}",
     "schedulingProfiles[0].plugins[0].pluginRef", "'h' is a profile handler"),
    ("several profiles, no handler", OK_PLUGINS + "schedulingProfiles:\n- {name: a, plugins: []}\n- {name: b, plugins: []}", "plugins", "2 profiles need a profile handler plugin"),
    ("single handler, several profiles", OK_PLUGINS + "- {type: single-profile-handler}\nschedulingProfiles:\n- {name: a, plugins: []}\n- {name: b, plugins: []}",
     "plugins[2]", "single-profile-handler runs exactly one profile; 2 defined: a, b"),
    ("two handlers", OK_PLUGINS + "- {type: single-profile-handler}\n- {type: attribute-profile-handler}\nschedulingProfiles:\n- {name: a, plugins: []}",
     "plugins[3].type", "a second profile handler; 'single-profile-handler' is already defined"),
    ("handler names unknown profile", OK_PLUGINS + "- {type: shadow-profile-handler, parameters: {primary: a, shadows: [zz]}}\nschedulingProfiles:\n- {name: a, plugins: []}",
     "plugins[2].parameters.shadows[0]", "no profile named 'zz'; defined: a"),
    ("multi-cycle primary outside rounds", OK_PLUGINS + "- {type: multi-cycle-profile-handler, parameters: {rounds: [[a]], primary: b}}\nschedulingProfiles:\n- {name: a, plugins: []}\n- {name: b, plugins: []}",
     "plugins[2].parameters.primary", "'b' is not in any round"),
    ("fallback unknown", OK_PLUGINS + "schedulingProfiles:\n- {name: a, fallbackProfile: q, plugins: []}", "schedulingProfiles[0].fallbackProfile", "no profile named 'q'"),
    ("fallback self", OK_PLUGINS + "- {type: attribute-profile-handler}\nschedulingProfiles:\n- {name: a, fallbackProfile: a, plugins: []}", "schedulingProfiles[0].fallbackProfile", "cannot be its own fallback"),
    ("reserved picker name", "plugins: [{type: healthy-filter, name: max-score-picker}]\nschedulingProfiles:\n- {name: a, plugins: []}", "plugins[0].name", "reserved for the default picker"),
    ("bad yaml", "plugins: [", "line 1, column 11", "not valid YAML"),
    ("duplicate key", "plugins: []\nschedulingProfiles: []\nplugins: []", "line 3, column 1", "duplicate key 'plugins'"),
    ("bad plugin before missing profiles", "plugins: [{type: magic}]", "plugins[0].type", "unknown plugin type 'magic'"),
]


@pytest.mark.parametrize("text, path, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_config_error_names_path_and_expectation(text, path, message):
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert info.value.path == path, str(info.value)
    assert message in info.value.message, str(info.value)
    assert str(info.value).startswith(f"{path}: ")


def test_top_level_not_a_mapping_has_no_empty_path_prefix():
    with pytest.raises(ConfigError) as info:
        parse_config("- a\n")
    assert str(info.value) == "expected a mapping with keys apiVersion, kind, plugins, schedulingProfiles; got list"


def test_load_config_names_the_file(tmp_path):
    from envd_jupyter.scheduler import load_config

    bad = tmp_path / "scheduler.yaml"
    bad.write_text("plugins: [{type: magic}]\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert info.value.path == "plugins[0].type" and info.value.file == str(bad)
    assert str(info.value).startswith(f"{bad}: plugins[0].type: unknown plugin type 'magic'")


def test_load_config_of_non_utf8_file_is_a_config_error(tmp_path):
    from envd_jupyter.scheduler import load_config

    bad = tmp_path / "scheduler.yaml"
    bad.write_bytes(b"plugins: []  # caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert str(info.value) == f"{bad}: byte 18: not UTF-8 text: invalid continuation byte"


INFINITE_THIRD_WEIGHT = """\
plugins:
- type: healthy-filter
- type: in-flight-scorer
- type: free-disk-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: healthy-filter
  - pluginRef: in-flight-scorer
  - {pluginRef: free-disk-scorer, weight: .inf}
"""


def test_a_non_finite_weight_is_one_line_naming_its_path():
    with pytest.raises(ConfigError) as info:
        parse_config(INFINITE_THIRD_WEIGHT)
    assert str(info.value) == "schedulingProfiles[0].plugins[2].weight: must be a finite number, got inf"


@pytest.mark.parametrize("value, shown", [(".inf", "inf"), (".nan", "nan")])
def test_cli_check_refuses_a_non_finite_weight(tmp_path, value, shown):
    """``python -m envd_jupyter.scheduler check`` exits 1 with the one error line, printing no config."""
    config = tmp_path / "scheduler.yaml"
    config.write_text(INFINITE_THIRD_WEIGHT.replace(".inf", value))
    checked = subprocess.run([sys.executable, "-m", "envd_jupyter.scheduler", "check", str(config)],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
    assert (checked.returncode, checked.stdout) == (1, "")
    assert checked.stderr == f"{config}: schedulingProfiles[0].plugins[2].weight: must be a finite number, got {shown}\n"
