"""A build file or Starlark cell can never kill or hang the process evaluating it.

Every evil evaluation here runs in this very test process, through the public API: the test
process surviving is half of each assertion. Limits are CPU time, memory and call counts (not
wall-clock time), so the outcome does not depend on the machine's load.
"""

import io
import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from envd_jupyter.lang import (
    EnvdError,
    EvalLimitError,
    EvalLimits,
    Workspace,
    exec_cell,
    load_file,
)
from envd_jupyter.lang import _sandbox

SMALL = EvalLimits(cpu_seconds=0.5, memory_bytes=256 << 20, calls=200)
ENDLESS = 'def build():\n    print("looping")\n    for i in range(1 << 62):\n        pass\n'


def busy_workers() -> list[int]:
    """Worker processes of this process that are not idle in the pool (a stopped one must be gone)."""
    idle = {worker.process.pid for worker in _sandbox._POOL._idle}
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == os.getpid() and b"_starlark_worker" in cmdline:
            children.append(int(stat.parent.name))
    return sorted(set(children) - idle)


def assert_still_works():
    env = exec_cell('install.apt_packages(name=["git"])\n', name="after")
    assert [g.items for g in env.groups] == [("git",)]
    assert busy_workers() == []


@pytest.mark.parametrize("body, expected", [
    ('def f(n):\n    return f(n + 1)\n\ndef build():\n    f(0)\n', "build.envd:2: function f called recursively"),
    ('def a(n):\n    return b(n)\n\ndef b(n):\n    return a(n)\n\na(1)\n',
     "build.envd:5: function a called recursively"),
])
def test_recursion_is_an_error_at_its_line_not_a_go_stack_overflow(tmp_path, body, expected):
    (tmp_path / "build.envd").write_text(body)
    with pytest.raises(EnvdError) as info:
        load_file(tmp_path / "build.envd")
    assert str(info.value) == f"{tmp_path}/{expected}"
    assert_still_works()


@pytest.mark.parametrize("body", [
    ENDLESS,
    'x = [i for i in range(1 << 62) if False]\n',
    'def f():\n    for a in range(1 << 31):\n        for b in range(1 << 31):\n            pass\n\nf()\n',
    'def build():\n    s = 0\n    for i in range(1 << 62):\n        s += len(str(i))\n',
])
def test_endless_loops_stop_at_the_cpu_limit(body):
    ws = Workspace(limits=SMALL)
    with pytest.raises(EvalLimitError) as info:
        ws.run_cell(1, body, name="evil", language="starlark")
    assert str(info.value) == "cell[1]: stopped after 0.5 s of CPU time (the limit; an endless loop?)"
    assert ws.states == {}
    assert_still_works()


@pytest.mark.parametrize("body", [  # single allocations far over the limit: they fail at once
    'x = list(range(1 << 28))\n',
    'def build():\n    x = [0] * (1 << 27)\n',
    'x = {i: i for i in range(4)}\ny = [x] * (1 << 28)\n',
])
def test_memory_bombs_stop_at_the_memory_limit(tmp_path, body):
    (tmp_path / "build.envd").write_text(body)
    with pytest.raises(EvalLimitError) as info:
        load_file(tmp_path / "build.envd", limits=SMALL)
    assert str(info.value) == f"{tmp_path}/build.envd: ran out of memory (the limit is 256 MiB)"
    assert_still_works()


def test_a_loop_of_envd_calls_stops_at_the_call_limit_naming_the_call():
    body = 'def build():\n    base(image="busybox")\n    for i in range(1 << 30):\n        run(["echo %d" % i])\n'
    with pytest.raises(EvalLimitError) as info:
        exec_cell(body, name="cell[7]", limits=SMALL)
    assert str(info.value) == ("cell[7]:4: stopped after 200 calls of envd functions in one evaluation "
                               "(the limit; a loop around them?)")
    chain = 'def build():\n    s = image("busybox")\n    for i in range(1 << 30):\n        s = s.run("x")\n'
    with pytest.raises(EvalLimitError, match=r"^cell\[8\]:4: stopped after 200 calls"):
        exec_cell(chain, name="cell[8]", limits=SMALL)
    assert_still_works()


def test_a_print_flood_stops_at_the_call_limit(capsys):
    with pytest.raises(EvalLimitError, match=r"^cell: stopped after 200 print\(\) calls"):
        exec_cell('def build():\n    for i in range(1 << 30):\n        print(i)\n', name="cell", limits=SMALL)
    assert capsys.readouterr().out.splitlines()[:3] == ["0", "1", "2"]
    assert_still_works()


def test_files_over_the_size_limit_are_refused_before_tokenizing(tmp_path):
    big = tmp_path / "build.envd"
    big.write_text("# padding\n" * 200_000)
    with pytest.raises(EvalLimitError) as info:
        load_file(big)
    assert str(info.value) == f"{big}: 2000000 bytes, more than the limit for one build file (1048576 bytes)"


def test_deep_nesting_is_refused_before_the_go_parser_overflows(tmp_path):
    (tmp_path / "build.envd").write_text("x = 1\ny = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(EnvdError) as info:
        load_file(tmp_path / "build.envd")
    assert str(info.value) == f"{tmp_path}/build.envd:2: brackets nested more than 200 deep"


def test_a_real_sigint_stops_an_endless_evaluation(monkeypatch, tmp_path):
    """What a kernel interrupt does: SIGINT to this process while the worker spins, far below any limit."""
    looping = threading.Event()

    class Watch(io.StringIO):
        def write(self, text):
            if "looping" in text:
                looping.set()
            return super().write(text)

    def interrupt():
        if looping.wait(120):
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(sys, "stdout", Watch())
    timer = threading.Thread(target=interrupt, daemon=True)
    timer.start()
    ws = Workspace(tmp_path, limits=EvalLimits(cpu_seconds=120))
    with pytest.raises(KeyboardInterrupt):
        ws.run_cell(1, ENDLESS, name="evil", language="starlark")
    timer.join(10)
    assert looping.is_set() and not timer.is_alive()
    assert busy_workers() == []
    ws.run_cell(2, 'install.apt_packages(name=["git"])\n', name="ok", language="starlark")
    assert list(ws.states) == ["ok"]


def test_a_worker_that_dies_is_replaced(tmp_path):
    exec_cell('base(image="busybox")\n')
    for worker in list(_sandbox._POOL._idle):
        worker.process.kill()
        worker.process.wait(10)
    assert_still_works()


def test_the_worker_imports_nothing_of_ours():
    source = Path(_sandbox.__file__).with_name("_starlark_worker.py").read_text()
    assert "envd_jupyter" not in source.split('"""', 2)[2]


def test_a_worker_that_kept_much_memory_is_not_reused():
    """Go keeps its heap mapped, and RLIMIT_DATA counts it: the next evaluation would get less than its limit."""
    limits = EvalLimits(memory_bytes=512 << 20)
    exec_cell('def build():\n    x = [0] * (1 << 24)\n    install.apt_packages(name=["a"])\n', limits=limits)  # 256 MiB
    assert not [w for w in _sandbox._POOL._idle if w.memory_bytes == limits.memory_bytes]
    exec_cell('install.apt_packages(name=["a"])\n', limits=limits)
    assert [w for w in _sandbox._POOL._idle if w.memory_bytes == limits.memory_bytes]
