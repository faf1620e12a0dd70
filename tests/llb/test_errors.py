"""The LLBError hierarchy and the validations issue 3 lists, each a one-line typed error."""

import pytest

from envd_jupyter import llb

from ._support import BUSYBOX

VALIDATIONS = {
    "relative mount dest": (lambda: llb.bind_mount("src", BUSYBOX), llb.InvalidMountError),
    "non-State as State": (lambda: llb.merge([BUSYBOX, "alpine"]), llb.NotAStateError),
    "bad platform": (lambda: llb.image("busybox", platform="linux//arm"), llb.InvalidPlatformError),
    "empty argv": (lambda: BUSYBOX.run([]), llb.EmptyCommandError),
    "mode out of range": (lambda: BUSYBOX.mkdir("/d", 0o1777), llb.InvalidModeError),
    "duplicate mount dest": (lambda: BUSYBOX.run(["x"], mounts=[llb.tmpfs_mount("/t"), llb.secret_mount("/t", "s")]),
                             llb.DuplicateMountError),
    "bad image reference": (lambda: llb.image("Not Valid"), llb.InvalidReferenceError),
    "bad local patterns": (lambda: llb.local("ctx", include="*.py"), llb.ValidationError),
    "unknown source option": (lambda: llb.image("busybox", plaform="linux/amd64"), llb.ValidationError),
    "bad http url": (lambda: llb.http("ftp://x/y"), llb.ValidationError),
    "bad location": (lambda: BUSYBOX.run(["x"], location="cell 1"), llb.ValidationError),
    "run env not a mapping": (lambda: BUSYBOX.run(["x"], env="A=B"), llb.ValidationError),
    "mode not an int": (lambda: BUSYBOX.mkfile("/f", b"", "0644"), llb.InvalidModeError),
    "http perm not an int": (lambda: llb.http("http://x/y", perm="0644"), llb.InvalidModeError),
}


@pytest.mark.parametrize("build, expected", [
    (lambda: BUSYBOX.mkdir("/d", 0o1777), "mode 0o1777 out of range 0..0o777"),
    (lambda: llb.secret_mount("/s", "id", mode=0o20000), "mode 0o20000 out of range 0..0o7777"),
    (lambda: llb.http("http://x/y", perm=0o1000), "perm 0o1000 out of range 0..0o777"),
    (lambda: BUSYBOX.mkfile("/f", b"", "0644"), "mode must be an int such as 0o644, got '0644'"),
    (lambda: BUSYBOX.run(["x"], env="A=B"), "env must be a dict of str to str, got str"),
])
def test_mode_and_env_messages_say_what_is_wrong(build, expected):
    with pytest.raises(llb.LLBError) as info:
        build()
    assert str(info.value) == expected


@pytest.mark.parametrize("case", sorted(VALIDATIONS))
def test_validation_raises_typed_one_line_error(case):
    build, error = VALIDATIONS[case]
    with pytest.raises(error) as info:
        build()
    assert isinstance(info.value, llb.LLBError)
    message = str(info.value)
    assert message and "\n" not in message and "Traceback" not in message


def test_hierarchy_keeps_builtin_exception_types():
    assert issubclass(llb.ValidationError, ValueError)
    assert issubclass(llb.NotAStateError, TypeError)
    assert issubclass(llb.DuplicateMountError, llb.InvalidMountError)
    assert issubclass(llb.DefinitionError, llb.LLBError) and issubclass(llb.MissingCapabilityError, llb.LLBError)


def test_graphs_cannot_form_cycles():
    # States are immutable and ops only reference existing States, so every graph is a DAG;
    # a foreign Definition with a back edge is rejected by from_bytes (see test_definition).
    st = BUSYBOX.run(["a"])
    with pytest.raises(AttributeError):
        st._out = None
