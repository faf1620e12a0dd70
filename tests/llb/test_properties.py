"""Property tests: random graphs marshal to bytes that parse back identically, digests are
stable, every input is defined before use, and the hand encoding equals the protobuf runtime's."""

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from envd_jupyter import llb
from envd_jupyter.llb._exec import BindMount

from ._support import go_order_bytes

names = st.text(alphabet="abcdefghij/._-", min_size=1, max_size=8).map(lambda s: "/" + s.strip("/") if s.strip("/") else "/x")


@st.composite
def graphs(draw):
    states = [llb.image(draw(st.sampled_from(["busybox", "alpine:3.20", "debian"]))), llb.scratch()]
    for _ in range(draw(st.integers(1, 12))):
        base = draw(st.sampled_from(states))
        kind = draw(st.sampled_from(["run", "mkfile", "copy", "merge", "diff", "env", "local"]))
        if kind == "run":
            mounts = []
            if draw(st.booleans()):
                mounts.append(llb.bind_mount("/m" + str(len(states)), draw(st.sampled_from(states)),
                                             readonly=draw(st.booleans())))
            if draw(st.booleans()):
                mounts.append(llb.cache_mount("/cache", "c", sharing=draw(st.sampled_from(["shared", "locked"]))))
            where = draw(st.none() | st.builds(llb.SourceLocation, st.sampled_from(["cell 1", "cell 2"]),
                                               st.integers(1, 50), data=st.none() | st.binary(max_size=6)))
            new = base.run(["sh", "-c", draw(st.text(min_size=1, max_size=10))], mounts=mounts,
                           env={"K": draw(st.text(max_size=5))}, location=where)
            if mounts and isinstance(mounts[0], BindMount) and not mounts[0].readonly and draw(st.booleans()):
                new = new.mount_output(mounts[0].dest)
        elif kind == "mkfile":
            new = base.file(llb.mkdir(draw(names), parents=True).mkfile(draw(names), draw(st.binary(max_size=8))))
        elif kind == "copy":
            new = base.copy(draw(st.sampled_from(states)), draw(names), draw(names), create_dest_path=True)
        elif kind == "merge":
            new = llb.merge(draw(st.lists(st.sampled_from(states), min_size=1, max_size=4)))
        elif kind == "diff":
            new = llb.diff(base, draw(st.sampled_from(states)))
        elif kind == "env":
            new = base.env(draw(st.sampled_from(["A", "B"])), draw(st.text(max_size=4))).workdir(draw(names))
        else:
            new = llb.local(draw(st.sampled_from(["ctx", "src"])), unique_id="u",
                            include=draw(st.lists(st.text(min_size=1, max_size=4), max_size=2)))
        states.append(new)
    return states[-1]


@settings(max_examples=150, deadline=None)
@given(graphs())
def test_random_graphs_round_trip(state):
    definition = state.marshal(platform="linux/amd64")
    if state.is_scratch:
        assert definition.to_bytes() == b""
        return
    data = definition.to_bytes()
    parsed = llb.Definition.from_bytes(data)  # also checks inputs are defined before use
    assert parsed.to_bytes() == data
    assert parsed.digests == definition.digests
    assert definition.digests == ["sha256:" + hashlib.sha256(d).hexdigest() for d in definition.defs]
    assert len(set(definition.digests)) == len(definition.digests)
    seen = set()
    for dgst, op in zip(parsed.digests, parsed.ops):
        assert all(i.digest in seen for i in op.inputs)
        assert go_order_bytes(op) == parsed.defs[len(seen)]
        seen.add(dgst)
    assert state.marshal(platform="linux/amd64").to_bytes() == data  # stable across marshals
    for dgst in definition.digests[:-1]:
        assert parsed.locations(dgst) == definition.locations(dgst)
