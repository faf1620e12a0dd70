"""State: immutability and inherited settings (Go client/llb state.go / meta.go semantics)."""

import pytest

from envd_jupyter import llb

from ._support import BUSYBOX


def test_states_are_immutable():
    a = BUSYBOX.env(A="1")
    b = a.env(A="2").workdir("/x")
    assert a.get_env("A") == "1" and a.get_workdir() == "/"
    assert b.get_env("A") == "2" and b.get_workdir() == "/x"
    with pytest.raises(AttributeError):
        a.foo = 1


def test_env_order_follows_go_envlist():
    st = llb.scratch().env("A", "1").env("B", "2").env("A", "3")
    assert list(st.get_env().items()) == [("B", "2"), ("A", "3")]


def test_new_sources_start_at_root_and_run_keeps_settings():
    st = BUSYBOX.workdir("/w").user("u").network("host").run(["true"])
    assert (st.get_workdir(), st.get_user(), st.get_network()) == ("/w", "u", "host")
    assert llb.image("alpine").get_workdir() == "/"


def test_platform_setting_and_errors():
    assert str(BUSYBOX.platform("linux/aarch64").get_platform()) == "linux/arm64"
    with pytest.raises(llb.InvalidPlatformError):
        BUSYBOX.platform("linux/")
    with pytest.raises(llb.ValidationError):
        BUSYBOX.network("bridge")
    with pytest.raises(llb.ValidationError):
        BUSYBOX.workdir("")


def test_long_env_chains_share_lists():
    st = llb.scratch()
    for i in range(2000):
        st = st.env(f"K{i}", str(i))
    env = st.get_env()
    assert len(env) == 2000 and env["K1999"] == "1999"


def test_go_relative_workdir():
    # Go client/llb meta_test.go TestRelativeWd
    st = llb.scratch().workdir("foo")
    assert st.get_workdir() == "/foo"
    st = st.workdir("bar")
    assert st.get_workdir() == "/foo/bar"
    assert st.workdir("..").get_workdir() == "/foo"
    assert st.workdir("/baz").get_workdir() == "/baz"
    assert st.workdir("/baz").workdir("../../..").get_workdir() == "/"


def test_copying_a_state_returns_it():
    import copy

    st = BUSYBOX.run(["x"])
    assert copy.copy(st) is st and copy.deepcopy({"s": st})["s"] is st
