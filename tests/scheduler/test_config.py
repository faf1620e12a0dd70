"""Defaults, the effective config, the JSON Schema, and atomic reload."""

import jsonschema
import pytest
import yaml

from envd_jupyter.scheduler import ConfigError, Endpoint, Scheduler, config_json_schema, parse_config
from envd_jupyter.scheduler._config import default_config
from envd_jupyter.scheduler._config import DEFAULT_CONFIG_YAML

from .helpers import request

MINIMAL = """
plugins:
- type: in-flight-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: in-flight-scorer
"""


def test_defaults_are_filled_in():
    effective = parse_config(MINIMAL).to_dict()
    assert effective["kind"] == "EndpointPickerConfig"
    assert [p["type"] for p in effective["plugins"]] == ["in-flight-scorer", "max-score-picker", "single-profile-handler"]
    assert effective["plugins"][1]["parameters"] == {"maxNumOfEndpoints": 1, "tieTolerance": 1e-9}
    assert effective["schedulingProfiles"][0]["plugins"] == [
        {"pluginRef": "in-flight-scorer", "weight": 1.0},
        {"pluginRef": "max-score-picker"},
    ]


def test_effective_config_round_trips():
    first = parse_config(DEFAULT_CONFIG_YAML)
    again = parse_config(first.to_yaml())
    assert again.to_dict() == first.to_dict()


def test_empty_config_means_default():
    assert parse_config("").to_dict() == default_config().to_dict()


def test_json_schema_accepts_effective_configs_and_rejects_strays():
    schema = config_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(default_config().to_dict())
    validator.validate(yaml.safe_load(MINIMAL))
    bad = yaml.safe_load(MINIMAL)
    bad["plugins"][0]["parameters"] = {"nope": 1}
    assert not validator.is_valid(bad)
    bad = yaml.safe_load(MINIMAL)
    bad["schedulingProfiles"][0]["plugins"][0]["weight"] = -1
    assert not validator.is_valid(bad)


def test_reload_is_atomic_and_keeps_the_last_good_config():
    scheduler = Scheduler(MINIMAL)
    before = scheduler.effective_config()
    with pytest.raises(ConfigError, match="no plugin named 'ghost'"):
        scheduler.reload(MINIMAL.replace("pluginRef: in-flight-scorer", "pluginRef: ghost"))
    assert scheduler.effective_config() == before
    assert "ghost" in scheduler.last_reload_error
    assert scheduler.schedule(request(), [Endpoint("a")]).endpoint.name == "a"
    scheduler.reload(MINIMAL.replace("in-flight-scorer", "free-disk-scorer"))
    assert "free-disk-scorer" in scheduler.effective_config() and scheduler.last_reload_error is None


def test_reload_from_file(tmp_path):
    path = tmp_path / "scheduler.yaml"
    path.write_text(MINIMAL)
    scheduler = Scheduler.from_file(path)
    path.write_text("plugins: [")
    with pytest.raises(ConfigError):
        scheduler.reload(path)
    assert scheduler.config.profiles[0].name == "default"


def test_reload_keeps_the_cache_index():
    scheduler = Scheduler()
    req = request()
    scheduler.schedule(req, [Endpoint("a"), Endpoint("b")])
    scheduler.reload(DEFAULT_CONFIG_YAML)
    assert scheduler.cache_index.stats()["entries"] == len(req.chain_keys)


def test_cli_checks_and_prints(tmp_path, capsys):
    from envd_jupyter.scheduler.__main__ import main

    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(MINIMAL)
    bad.write_text(MINIMAL.replace("pluginRef: in-flight-scorer", "pluginRef: x"))
    assert main(["check", str(good)]) == 0
    assert "single-profile-handler" in capsys.readouterr().out
    assert main(["check", str(bad)]) == 1
    assert "schedulingProfiles[0].plugins[0].pluginRef: no plugin named 'x'; defined: in-flight-scorer" in capsys.readouterr().err
    assert main(["schema"]) == 0 and '"EndpointPickerConfig"' in capsys.readouterr().out
    assert main(["check", str(tmp_path / "missing.yaml")]) == 1
    assert capsys.readouterr().err == f"{tmp_path / 'missing.yaml'}: No such file or directory\n"


def test_the_documented_example_config_runs():
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "scheduler.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    scheduler = Scheduler(example)
    eps = [
        Endpoint("b1", registry_rtt_ms={"reg": 40.0}, disk_free_bytes=5, disk_total_bytes=10),
        Endpoint("b2", in_flight=1, registry_rtt_ms={"reg": 1.0}, disk_free_bytes=5, disk_total_bytes=10),
    ]
    result = scheduler.schedule(request(attributes={"registry": "reg"}), eps)
    assert result.primary == "build" and set(result.profile_results) == {"build", "export"}
