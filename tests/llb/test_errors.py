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
}


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
