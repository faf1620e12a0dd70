"""Image reference normalisation (distribution/reference ParseNormalizedNamed + TagNameOnly)."""

import pytest

from envd_jupyter import llb
from envd_jupyter.llb._reference import normalize_image_ref


@pytest.mark.parametrize("ref,expected", [
    ("busybox", "docker.io/library/busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest"),
    ("library/busybox:1.36", "docker.io/library/busybox:1.36"),
    ("127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b:latest"),
    ("localhost/x", "localhost/x:latest"),
    ("Registry.Example.com/app:v1", "Registry.Example.com/app:v1"),
    ("UPPER/case", "UPPER/case:latest"),  # an upper-case first part is a domain, as in Go
    ("busybox:1@sha256:" + "e" * 64, "docker.io/library/busybox:1@sha256:" + "e" * 64),
])
def test_normalisation(ref, expected):
    assert normalize_image_ref(ref) == expected


@pytest.mark.parametrize("bad", ["", "Busybox", "a b", "busybox:", "e" * 64, "x@sha256:short"])
def test_rejected_references(bad):
    with pytest.raises(llb.InvalidReferenceError):
        llb.image(bad)
