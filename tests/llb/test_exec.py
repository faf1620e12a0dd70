"""ExecOp. Expected values follow Go client/llb v0.26.3 exec.go (ExecOp.Marshal unless noted)."""

import pytest

from envd_jupyter import llb

from ._support import BUSYBOX, caps, head_op, marshal

SKIP = -1  # pb.SkipOutput / pb.Empty


def test_plain_run_meta_and_root_mount():
    op, meta = head_op(BUSYBOX.run(["echo", "hi"]))
    m = op.exec.meta
    assert list(m.args) == ["echo", "hi"] and list(m.env) == [] and m.cwd == "/"
    assert m.removeMountStubsRecursive is True  # always set
    assert [(x.dest, x.input, x.output, x.mountType) for x in op.exec.mounts] == [("/", 0, 0, 0)]
    assert op.platform.Architecture == "amd64"
    assert caps(meta) == {"exec.meta.base", "exec.mount.bind"}


def test_string_command_runs_through_sh():
    op, _ = head_op(BUSYBOX.run("echo $HOME"))
    assert list(op.exec.meta.args) == ["/bin/sh", "-c", "echo $HOME"]


def test_run_env_applies_to_that_exec_only_and_state_env_is_inherited():
    base = BUSYBOX.env("A", "1").env(B="2")
    first = base.run(["true"], env={"C": "3", "A": "9"})
    op, _ = head_op(first)
    # EnvList.AddOrReplace: a re-set key moves to the end with its new value
    assert list(op.exec.meta.env) == ["B=2", "C=3", "A=9"]
    second, _ = head_op(first.run(["true"]))
    assert list(second.exec.meta.env) == ["A=1", "B=2"]
    assert first.get_env() == {"A": "1", "B": "2"} and first.get_env("C") is None


def test_workdir_user_hostname():
    st = BUSYBOX.workdir("/app").workdir("sub").user("nobody")
    assert st.get_workdir() == "/app/sub"
    op, _ = head_op(st.run(["true"], workdir="x", hostname="box"))
    assert (op.exec.meta.cwd, op.exec.meta.user, op.exec.meta.hostname) == ("/app/sub/x", "nobody", "box")
    op2, _ = head_op(st.run(["true"], user="root"))
    assert op2.exec.meta.cwd == "/app/sub" and op2.exec.meta.user == "root"


def test_absolute_workdir_is_kept_verbatim_like_go_dir():
    op, _ = head_op(BUSYBOX.workdir("/app/").run(["true"]))
    assert op.exec.meta.cwd == "/app/"


def test_network_and_security_add_caps():
    op, meta = head_op(BUSYBOX.network("host").run(["true"], security="insecure"))
    assert (op.exec.network, op.exec.security) == (1, 1)
    assert {"exec.meta.network", "exec.meta.security"} <= caps(meta)
    op2, meta2 = head_op(BUSYBOX.run(["true"], network="none"))
    assert op2.exec.network == 2 and "exec.meta.security" not in caps(meta2)


def test_mounts_sorted_with_output_indexes_and_caps():
    # AddMount + getMountIndexFn: writable binds get outputs in target order; cache/tmpfs/readonly -1
    src = llb.image("alpine")
    st = BUSYBOX.run(["true"], mounts=[
        llb.tmpfs_mount("/tmp", size=1 << 20),
        llb.cache_mount("/cache", "pip", sharing="locked"),
        llb.bind_mount("/src", src, source="/etc", readonly=True),
        llb.bind_mount("/out", llb.scratch()),
    ])
    op, meta = head_op(st)
    rows = [(m.dest, m.input, m.output, m.readonly, m.mountType, m.selector) for m in op.exec.mounts]
    assert rows == [
        ("/", 0, 0, False, 0, ""),
        ("/cache", SKIP, SKIP, False, 3, ""),
        ("/out", SKIP, 1, False, 0, ""),
        ("/src", 1, SKIP, True, 0, "/etc"),
        ("/tmp", SKIP, SKIP, False, 4, ""),
    ]
    cache = op.exec.mounts[1].cacheOpt
    assert (cache.ID, cache.sharing) == ("pip", 2)
    assert op.exec.mounts[4].TmpfsOpt.size == 1 << 20
    assert caps(meta) == {"exec.meta.base", "exec.mount.bind", "exec.mount.selector", "exec.mount.cache",
                          "exec.mount.cache.sharing", "exec.mount.tmpfs", "exec.mount.tmpfs.size"}


def test_tmpfs_without_size_still_writes_empty_options():
    op, meta = head_op(BUSYBOX.run(["true"], mounts=[llb.tmpfs_mount("/t")]))
    assert op.exec.mounts[1].HasField("TmpfsOpt") and op.exec.mounts[1].TmpfsOpt.size == 0
    assert "exec.mount.tmpfs.size" not in caps(meta)


def test_mount_output_and_shared_inputs():
    out_dir = llb.scratch()
    st = BUSYBOX.run(["make"], mounts=[llb.bind_mount("/out", out_dir), llb.bind_mount("/ro", BUSYBOX, readonly=True)])
    result = st.mount_output("/out")
    definition = marshal(result)
    assert definition.head == (definition.digests[-2], 1)
    op = definition.op(definition.digests[-2])
    assert len(op.inputs) == 1  # root and /ro use the same busybox output: one input
    assert [m.input for m in op.exec.mounts] == [0, SKIP, 0]
    assert st.mount_output("/ro") is BUSYBOX  # readonly mounts pass their source through
    with pytest.raises(llb.InvalidMountError, match="no mount at '/nope'"):
        st.mount_output("/nope")


def test_cache_mount_has_no_output():
    st = BUSYBOX.run(["true"], mounts=[llb.cache_mount("/c", "id")])
    with pytest.raises(llb.InvalidMountError, match="cache mount at '/c' has no output"):
        st.mount_output("/c")


def test_readonly_rootfs_returns_the_input_root():
    st = BUSYBOX.run(["true"], readonly_rootfs=True, mounts=[llb.bind_mount("/w", llb.scratch())])
    assert marshal(st).digests == marshal(BUSYBOX).digests
    op, _ = head_op(st.mount_output("/w"))
    assert op.exec.mounts[0].readonly and op.exec.mounts[0].output == SKIP
    assert op.exec.mounts[1].output == 0


def test_secret_mount_and_secret_env():
    # AddSecret / SecretAsEnvName: secrets follow the sorted mounts; Output stays 0 (unset)
    st = BUSYBOX.run(["true"], mounts=[llb.secret_env("TOKEN", "tok", optional=True),
                                       llb.secret_mount("/run/secrets/a", "a", uid=1, gid=2, mode=0o440)])
    op, meta = head_op(st)
    sec = op.exec.mounts[1]
    assert (sec.dest, sec.input, sec.output, sec.mountType) == ("/run/secrets/a", SKIP, 0, 1)
    assert (sec.secretOpt.ID, sec.secretOpt.uid, sec.secretOpt.gid, sec.secretOpt.mode) == ("a", 1, 2, 0o440)
    assert [(s.ID, s.name, s.optional) for s in op.exec.secretenv] == [("tok", "TOKEN", True)]
    assert {"exec.mount.secret", "exec.secretenv"} <= caps(meta)


def test_ssh_mount_defaults_and_auth_sock():
    # AddSSHSocket: mode 0600, target /run/buildkit/ssh_agent.N, SSH_AUTH_SOCK added if unset
    op, meta = head_op(BUSYBOX.run(["true"], mounts=[llb.ssh_mount()]))
    ssh = op.exec.mounts[1]
    assert (ssh.dest, ssh.mountType, ssh.SSHOpt.mode, ssh.SSHOpt.ID) == ("/run/buildkit/ssh_agent.0", 2, 0o600, "")
    assert list(op.exec.meta.env) == ["SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0"]
    assert "exec.mount.ssh" in caps(meta)


def test_valid_exit_codes_ignore_cache_and_name():
    definition = marshal(BUSYBOX.run(["false"], valid_exit_codes=[0, 1], ignore_cache=True, name="step"))
    op = definition.op(definition.digests[-2])
    meta = definition.metadata[definition.digests[-2]]
    assert list(op.exec.meta.validExitCodes) == [0, 1]
    assert meta.ignore_cache and meta.description == {"llb.customname": "step"}
    assert "exec.validexitcode" in meta.caps
    assert {"meta.ignorecache", "meta.description"} <= definition.metadata[definition.digests[-1]].caps


def test_run_on_scratch_has_empty_root_input():
    op, meta = head_op(llb.scratch().run(["/bin/true"]))
    assert len(op.inputs) == 0 and op.exec.mounts[0].input == SKIP and op.exec.mounts[0].output == 0
    assert caps(meta) == {"exec.meta.base"}


def test_state_platform_reaches_exec():
    op, _ = head_op(BUSYBOX.platform("linux/arm64").run(["true"]))
    assert op.platform.Architecture == "arm64"


@pytest.mark.parametrize("bad,error", [
    (lambda: BUSYBOX.run([]), llb.EmptyCommandError),
    (lambda: BUSYBOX.run(""), llb.EmptyCommandError),
    (lambda: BUSYBOX.run(["a", 1]), llb.ValidationError),
    (lambda: llb.cache_mount("rel/path", "id"), llb.InvalidMountError),
    (lambda: BUSYBOX.run(["x"], mounts=[llb.cache_mount("/a", "1"), llb.tmpfs_mount("/a")]), llb.DuplicateMountError),
    (lambda: BUSYBOX.run(["x"], mounts=[llb.tmpfs_mount("/")]), llb.DuplicateMountError),
    (lambda: llb.bind_mount("/a", "not a state"), llb.NotAStateError),
    (lambda: llb.cache_mount("/a", "id", sharing="sometimes"), llb.InvalidMountError),
    (lambda: llb.secret_mount("/s", "id", mode=0o20000), llb.InvalidModeError),
    (lambda: llb.secret_mount("/s", "id", uid=-1), llb.ValidationError),
    (lambda: llb.ssh_mount(gid=2**32), llb.ValidationError),
    (lambda: BUSYBOX.run(["x"], mounts=["/tmp"]), llb.InvalidMountError),
    (lambda: BUSYBOX.run(["x"], network="bridge"), llb.ValidationError),
    (lambda: BUSYBOX.run(["x"], env={"A=B": "1"}), llb.ValidationError),
    (lambda: BUSYBOX.mount_output("/x"), llb.InvalidMountError),
])
def test_invalid_runs_raise_one_line_typed_errors(bad, error):
    with pytest.raises(error) as info:
        bad()
    assert isinstance(info.value, llb.LLBError) and "\n" not in str(info.value)


def test_extra_hosts_ulimits_cgroup_and_proxy():
    # ExecOp.Marshal: hosts add no cap, ulimits exec.meta.ulimit, proxy exec.meta.proxyenv
    op, meta = head_op(BUSYBOX.run(["true"], extra_hosts={"db": "::ffff:10.0.0.1"}, ulimits=[("nofile", 1024, 2048)],
                                   cgroup_parent="grp", proxy_env={"http_proxy": "http://p:3128"}))
    m = op.exec.meta
    assert [(h.Host, h.IP) for h in m.extraHosts] == [("db", "10.0.0.1")]  # net.IP.String() prints IPv4
    assert [(u.Name, u.Soft, u.Hard) for u in m.ulimit] == [("nofile", 1024, 2048)]
    assert m.cgroupParent == "grp" and m.proxy_env.http_proxy == "http://p:3128"
    assert caps(meta) == {"exec.meta.base", "exec.mount.bind", "exec.meta.ulimit", "exec.meta.proxyenv"}


def test_invalid_text_is_a_validation_error():
    with pytest.raises(llb.ValidationError, match="UTF-8"):
        BUSYBOX.run(["echo", "\ud800"])
    with pytest.raises(llb.ValidationError):
        BUSYBOX.run(["true"], extra_hosts={"db": "not-an-ip"})


def test_definition_order_follows_sorted_mount_targets():
    # ExecOp.Inputs(): mounts sorted by target, so /a's source is walked before /b's
    a, b = llb.image("alpine"), llb.image("debian")
    definition = marshal(BUSYBOX.run(["x"], mounts=[llb.bind_mount("/b", b), llb.bind_mount("/a", a)]))
    names = [definition.op(d).source.identifier.split("/")[-1] for d in definition.digests[:3]]
    assert names == ["busybox:latest", "alpine:latest", "debian:latest"]
    op = definition.op(definition.digests[3])
    assert [m.dest for m in op.exec.mounts] == ["/", "/a", "/b"] and [m.output for m in op.exec.mounts] == [0, 1, 2]


def test_go_valid_get_mount_index():
    # Go client/llb exec_test.go TestValidGetMountIndex: tmpfs mounts never shift output indexes
    for tmpfs_dest in ("/c", "/a"):
        st = llb.image("foo").run(["args"], mounts=[llb.bind_mount("/b", llb.scratch()), llb.tmpfs_mount(tmpfs_dest)])
        assert marshal(st.mount_output("/b")).head[1] == 1


def test_go_exec_marshal_consistency():
    # Go client/llb exec_test.go TestExecOpMarshalConsistency
    st = BUSYBOX.run(["ls /a; ls /b"], mounts=[
        llb.bind_mount("/b", llb.scratch().file(llb.mkfile("file1", b"file1 contents", 0o644))),
        llb.bind_mount("/a", llb.scratch().file(llb.mkfile("file2", b"file2 contents", 0o644)))])
    first = st.marshal(platform="linux/amd64").defs
    assert all(st.marshal(platform="linux/amd64").defs == first for _ in range(100))


def _chain_platforms(definition):
    """(kind, platform, args or identifier) from the result back along input 0."""
    m, out, dgst = dict(zip(definition.digests, definition.ops)), [], definition.head[0]
    while dgst:
        op = m[dgst]
        p = op.platform
        label = list(op.exec.meta.args) if op.WhichOneof("op") == "exec" else op.source.identifier
        out.append(("/".join(x for x in (p.OS, p.Architecture, p.Variant) if x), label))
        dgst = op.inputs[0].digest if op.inputs else None
    return out


def test_go_custom_platform():
    # Go client/llb/llbtest platform_test.go TestCustomPlatform (a run's platform is inherited)
    s = (llb.image("foo", platform="linux/armhf").run(["baz"]).run(["bar"]).run(["bax"], platform="windows/amd64")
         .run(["bay"]))
    assert _chain_platforms(marshal(s)) == [
        ("windows/amd64", ["bay"]), ("windows/amd64", ["bax"]), ("linux/arm/v7", ["bar"]),
        ("linux/arm/v7", ["baz"]), ("linux/arm/v7", "docker-image://docker.io/library/foo:latest")]


def test_go_default_platform_and_platform_on_marshal():
    # TestDefaultPlatform and TestPlatformOnMarshal
    host = str(llb.default_platform())
    assert [p for p, _ in _chain_platforms(llb.image("foo").run(["bar"]).marshal())] == [host, host]
    assert [p for p, _ in _chain_platforms(marshal(llb.image("image1").run(["bar"]), platform="windows/amd64"))] == [
        "windows/amd64", "windows/amd64"]


def test_go_platform_mixed():
    # TestPlatformMixed: a mount keeps the platform of the State it came from
    s2 = llb.image("image2", platform="linux/armel").run(["cmd-sub"])
    s1 = llb.image("image1").run(["cmd-main"], mounts=[llb.bind_mount("/mnt", s2)])
    definition = marshal(s1, platform="linux/amd64")
    m = dict(zip(definition.digests, definition.ops))
    main = m[definition.head[0]]
    assert list(main.exec.meta.args) == ["cmd-main"] and main.platform.Architecture == "amd64"
    by_dest = {mt.dest: m[main.inputs[mt.input].digest] for mt in main.exec.mounts}
    assert by_dest["/"].source.identifier == "docker-image://docker.io/library/image1:latest"
    sub = by_dest["/mnt"]
    assert list(sub.exec.meta.args) == ["cmd-sub"] and (sub.platform.Architecture, sub.platform.Variant) == ("arm", "v6")
    assert m[sub.inputs[0].digest].platform.Variant == "v6"
