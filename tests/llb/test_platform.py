"""Platform parsing: containerd platforms.Normalize(platforms.Parse(s))."""

import pytest

from envd_jupyter import llb
from envd_jupyter.llb import Platform


@pytest.mark.parametrize("spec,expected", [
    ("linux/amd64", ("linux", "amd64", "")),
    ("linux/x86_64", ("linux", "amd64", "")),
    ("linux/aarch64", ("linux", "arm64", "")),
    ("linux/arm64/v8", ("linux", "arm64", "")),
    ("linux/arm", ("linux", "arm", "v7")),
    ("linux/armhf", ("linux", "arm", "v7")),
    ("linux/arm/v6", ("linux", "arm", "v6")),
    ("linux/i386", ("linux", "386", "")),
    ("Linux/AMD64", ("linux", "amd64", "")),
    ("arm64", ("linux", "arm64", "")),
    ("windows/amd64", ("windows", "amd64", "")),
])
def test_parse_normalises(spec, expected):
    p = Platform.parse(spec)
    assert (p.os, p.architecture, p.variant) == expected


def test_os_only_uses_host_architecture():
    assert Platform.parse("linux").architecture == llb.default_platform().architecture


@pytest.mark.parametrize("bad", ["", "linux/", "linux/*", "a/b/c/d", "notanarch", 42, "li nux/amd64"])
def test_bad_platform_strings(bad):
    with pytest.raises(llb.InvalidPlatformError) as info:
        Platform.parse(bad)
    assert "\n" not in str(info.value)


def test_encoding_matches_protobuf_runtime():
    from envd_jupyter._proto import ops_pb2

    p = Platform("linux", "arm", "v7")
    assert p.encode() == ops_pb2.Platform(OS="linux", Architecture="arm", Variant="v7").SerializeToString()
