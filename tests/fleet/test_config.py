"""Fleet config files and builder lists: every mistake is one FleetError line naming the file and key."""

import pytest

from envd_jupyter.fleet import Fleet, FleetError, project_builders


def write(tmp_path, text):
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return path


def test_a_fleet_file_lists_builders_and_an_optional_scheduler(tmp_path):
    fleet = Fleet.from_file(write(tmp_path, "builders:\n  a: docker+unix:///a.sock\n  b: tcp://127.0.0.1:1234\n"))
    assert fleet.names == ["a", "b"]
    assert fleet.address("b") == "tcp://127.0.0.1:1234"


@pytest.mark.parametrize("text, expected", [
    ("builders: []\n", "builders: must map"),
    ("builders:\n  a: 3\n", "builders.a: the address must be a string"),
    ("builders:\n  a: unix:///a\nbuilder: x\n", "unknown key 'builder'"),
    ("builders: {a: unix:///a}\nscheduler: {plugins: [{type: no-such-plugin}]}\n", "scheduler:"),
    ("builders: [\n", "not YAML"),
    ("builders: {a: unix:///a}\nregistry_cache: [x]\n", "registry_cache: expected HOST:PORT"),
    ("builders: {a: unix:///a}\nscheduler:\n  plugins:\n  - type: cache-affinity-scorer\n"
     "    parameters: {registryHitWeight: 3}\n  schedulingProfiles:\n  - name: build\n    plugins:\n"
     "    - pluginRef: cache-affinity-scorer\n", "scheduler: plugins[0].parameters.registryHitWeight"),
])
def test_bad_fleet_files_name_the_file_and_the_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(FleetError) as caught:
        Fleet.from_file(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and expected in message and "\n" not in message


def test_a_missing_fleet_file_is_one_line(tmp_path):
    with pytest.raises(FleetError, match="cannot read"):
        Fleet.from_file(tmp_path / "absent.yaml")


def test_an_empty_fleet_is_refused():
    with pytest.raises(FleetError, match="at least one builder"):
        Fleet({})


def test_project_builders_read_the_daemon_env_file(tmp_path):
    (tmp_path / "env").write_text("ENVD_DOCKER_CURRENT=/s/current.sock\nENVD_DOCKER_OLD=/s/old.sock\nOTHER=1\n")
    assert project_builders(tmp_path) == {"current": "docker+unix:///s/current.sock", "old": "docker+unix:///s/old.sock"}


def test_a_bad_fleet_file_fails_before_any_builder_is_reached(tmp_path):
    """Addresses nothing listens on: the error is the file's, at once, not a connection failure."""
    path = write(tmp_path, f"builders: {{a: unix://{tmp_path}/none.sock}}\nscheduler: {{plugins: []}}\n")
    with pytest.raises(FleetError, match=rf"^{path}: scheduler: schedulingProfiles: required field is missing$"):
        Fleet.from_file(path)


def test_a_fleet_file_names_its_shared_registry_cache(tmp_path):
    fleet = Fleet.from_file(write(tmp_path, "builders: {a: unix:///a}\nregistry_cache: 127.0.0.1:5000\n"))
    assert fleet.shared_cache.registry == "127.0.0.1:5000"
    assert [profile.name for profile in fleet.scheduler.config.profiles] == ["build", "export"]


def test_project_builders_read_the_fleet_daemons(tmp_path):
    (tmp_path / "env").write_text("ENVD_DOCKER_CURRENT=/s/c.sock\nENVD_FLEET_2=/s/f2.sock\nENVD_FLEET_1=/s/f1.sock\n")
    assert project_builders(tmp_path, which="fleet") == {"fleet1": "docker+unix:///s/f1.sock",
                                                         "fleet2": "docker+unix:///s/f2.sock"}
    (tmp_path / "env").write_text("ENVD_DOCKER_CURRENT=/s/c.sock\n")
    with pytest.raises(FleetError, match="run scripts/fleet-up"):
        project_builders(tmp_path, which="fleet")


def test_project_builders_without_daemons_say_what_to_run(tmp_path):
    with pytest.raises(FleetError, match="run scripts/buildkit-up"):
        project_builders(tmp_path)


def test_an_unreachable_builder_is_unhealthy_not_fatal(tmp_path):
    fleet = Fleet({"gone": f"unix://{tmp_path}/no.sock"}, timeout=2)
    [endpoint] = fleet.endpoints()
    assert not endpoint.healthy
    [info] = fleet.builders()
    assert not info.healthy and info.error
