"""A corpus of broken build files (tests/lang/data/broken): each gives one typed, one-line error naming
its file (and line, where there is one), in bounded time, with this process alive.

Syntax errors, recursion, endless loops, memory bombs, floods of calls and prints, wrong types, envd
v0 names, missing modules, unreachable includes, bad encodings, binary garbage; huge and deeply nested
files are generated below. Limits are CPU time, memory and call counts, so no outcome depends on the
machine's load; pytest's timeout is the only clock.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from envd_jupyter.lang import (
    EnvdArgumentError,
    EnvdError,
    EnvdLoadError,
    EnvdSyntaxError,
    EvalLimitError,
    EvalLimits,
    UnknownFunctionError,
    compile_environment,
    load_file,
)

CORPUS = Path(__file__).parent / "data" / "broken"
SMALL = EvalLimits(cpu_seconds=0.5, memory_bytes=256 << 20, calls=200)
CPU = "stopped after 0.5 s of CPU time (the limit; an endless loop?)"
NO_BUILD = "envd file has no build function: envd runs build()"

EXPECTED = {  # file → (error type, the text after the file name)
    "bad_copy_image.envd": (EnvdArgumentError, ":2: io.copy: for parameter image: invalid image reference "
                                               "'Not/A:Valid:Ref': repository name must be lowercase"),
    "bad_encoding.envd": (EnvdLoadError, ":3: not UTF-8 text: invalid continuation byte at byte 48"),
    "bad_image.envd": (EnvdArgumentError, ":2: base: for parameter image: invalid image reference 'python:3.12 '"),
    "binary_garbage.envd": (EnvdLoadError, ":1: not UTF-8 text: invalid start byte at byte 0"),
    "both_forms.envd": (EnvdArgumentError, ":1: build() returned a chained state but also called envd functions"),
    "build_not_function.envd": (EnvdArgumentError, ": build is not a function"),
    "build_returns_int.envd": (EnvdArgumentError, ":1: build() must return a state from image(...) or nothing, got int"),
    "call_flood.envd": (EvalLimitError, ":4: stopped after 200 calls of envd functions in one evaluation"),
    "chain_misspelt_method.envd": (UnknownFunctionError, ":2: envd state has no method .apt_pakages "
                                                         "(did you mean .apt_packages?)"),
    "conda_without_conda.envd": (EnvdArgumentError, ":2: install.conda_packages: cannot install conda packages "
                                                    "when conda is not installed"),
    "cycle_a.envd": (EnvdLoadError, "load cycle: cycle_a.envd -> cycle_b.envd -> cycle_a.envd"),
    "cycle_b.envd": (EnvdLoadError, "load cycle: cycle_b.envd -> cycle_a.envd -> cycle_b.envd"),
    "division_by_zero.envd": (EnvdError, ":2: floored division by zero"),
    "empty.envd": (EnvdArgumentError, f": {NO_BUILD}"),
    "endless_comprehension.envd": (EvalLimitError, f": {CPU}"),
    "endless_loop.envd": (EvalLimitError, f": {CPU}"),
    "global_reassign.envd": (EnvdSyntaxError, ":2: cannot reassign global x declared at"),
    "include_unreachable.envd": (EnvdLoadError, ":1: include: cannot fetch https://127.0.0.1:1/unreachable.git:"),
    "memory_bomb.envd": (EvalLimitError, ": ran out of memory (the limit is 256 MiB)"),
    "missing_module.envd": (EnvdLoadError, ":1: cannot load {dir}missing.envd: no such file"),
    "misspelt_build.envd": (EnvdArgumentError, f": {NO_BUILD} (did you mean biuld, defined at"),
    "mutual_recursion.envd": (EnvdError, ":5: function ping called recursively"),
    "nested_loops.envd": (EvalLimitError, f": {CPU}"),
    "no_build.envd": (EnvdArgumentError, f": {NO_BUILD}"),
    "nul_bytes.envd": (EnvdSyntaxError, ":2: NUL character in the source (is it a text file?)"),
    "print_flood.envd": (EvalLimitError, ": stopped after 200 print() calls (the limit for calls)"),
    "r_packages_without_r.envd": (EnvdArgumentError, ":3: install.r_packages: R is not installed "
                                                     "(call install.r_lang())"),
    "recursion.envd": (EnvdError, ":2: function f called recursively"),
    "remote_module.envd": (EnvdLoadError, ":1: load: only local modules are supported, not @envd//lib.envd"),
    "set_usage.envd": (EnvdSyntaxError, ":2: this Starlark dialect does not support sets"),
    "several_unknown.envd": (UnknownFunctionError, ":2: unknown envd v1 function install.apt_package (did you mean "
                                                   "install.apt_packages?); also {dir}several_unknown.envd:3: "
                                                   "unknown envd v1 function config.gpus (did you mean config.gpu?); "
                                                   "also {dir}several_unknown.envd:4: unknown envd v1 function "
                                                   "frobnicate; also {dir}several_unknown.envd:5: io.mount is an "
                                                   "envd v0 function; envd v1 uses runtime.mount"),
    "string_for_list.envd": (EnvdArgumentError, ":2: install.apt_packages: for parameter name: got string, want list"),
    "syntax_indent.envd": (EnvdSyntaxError, ":3: got indent, want primary expression"),
    "syntax_string.envd": (EnvdSyntaxError, ":2: got identifier, want ']'"),
    "syntax_unclosed.envd": (EnvdSyntaxError, ":3: got identifier, want ','"),
    "top_level_for.envd": (EnvdSyntaxError, ":1: for loop not within a function"),
    "undefined_name.envd": (EnvdSyntaxError, ":2: undefined: undefined_thing"),
    "v0_base.envd": (EnvdArgumentError, ":2: base: unexpected keyword argument language (base(os=..., language=...) "
                                        "is envd v0"),
    "v0_system_packages.envd": (UnknownFunctionError, ":2: install.system_packages is an envd v0 function; "
                                                      "envd v1 uses install.apt_packages"),
    "while_loop.envd": (EnvdSyntaxError, ":3: this Starlark dialect does not support while loops"),
    "wrong_bool_type.envd": (EnvdArgumentError, ":2: base: for parameter dev: got string, want bool"),
    "wrong_port_type.envd": (EnvdArgumentError, ":2: runtime.expose: envd_port must be a port number, got '8080'"),
}


def first_error(path: Path) -> EnvdError:
    """What loading and then compiling ``path`` raises (both are part of reading a file)."""
    with pytest.raises(EnvdError) as info:
        compile_environment(load_file(path, limits=SMALL))
    return info.value


def test_every_file_in_the_corpus_has_an_expectation():
    assert {p.name for p in CORPUS.iterdir()} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_file(name):
    kind, text = EXPECTED[name]
    error = first_error(CORPUS / name)
    message = str(error)
    assert type(error) is kind, message
    assert "\n" not in message
    assert message.startswith(str(CORPUS.resolve())), message  # names the user's file, never ours
    assert text.format(dir=f"{CORPUS.resolve()}/") in message


@pytest.mark.parametrize("body, kind, expected", [
    ("# padding\n" * 200_000, EvalLimitError, ": 2000000 bytes, more than the limit for one build file"),
    ("def build():\n    x = " + "[" * 300 + "]" * 300 + "\n", EnvdSyntaxError, ":2: brackets nested more than 200 deep"),
    ("def build():\n" + "    run([\"echo\"])\n" * 20_000, EvalLimitError, ":202: stopped after 200 calls"),
    ("def build():\n    return image(\"busybox\")" + ".run(\"x\")" * 5_000 + "\n", EvalLimitError,
     ":2: stopped after 200 calls"),
    ("".join(f"def f{i}():\n    pass\n" for i in range(20_000)), EnvdArgumentError, ": envd file has no build function"),
], ids=["over-the-size-limit", "deep-nesting", "20000-calls", "5000-method-chain", "20000-defs"])
# (short ids: pytest puts the id in PYTEST_CURRENT_TEST, and a megabyte variable stops any child process starting)
def test_generated_huge_and_deep_files(tmp_path, body, kind, expected):
    (tmp_path / "build.envd").write_text(body)
    error = first_error(tmp_path / "build.envd")
    assert type(error) is kind and "\n" not in str(error)
    assert str(error).startswith(f"{tmp_path}/build.envd{expected}")


def test_the_whole_corpus_in_a_fresh_process():
    """Isolation from this test run: whatever the corpus did to a process, it did to that one."""
    script = (
        "import sys; from pathlib import Path\n"
        "from envd_jupyter.lang import EnvdError, EvalLimits, compile_environment, load_file\n"
        "limits = EvalLimits(cpu_seconds=0.5, memory_bytes=256 << 20, calls=200)\n"
        "for path in sorted(Path(sys.argv[1]).iterdir()):\n"
        "    try:\n"
        "        compile_environment(load_file(path, limits=limits))\n"
        "        print('result', path.name, 'no error')\n"
        "    except EnvdError as err:\n"
        "        print('result', path.name, type(err).__name__, flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(CORPUS)], capture_output=True, text=True, timeout=240,
                         cwd=Path(__file__).parents[2])
    assert out.returncode == 0, out.stderr[-2000:]
    results = [line for line in out.stdout.splitlines() if line.startswith("result ")]  # not print_flood's lines
    assert results == [f"result {name} {EXPECTED[name][0].__name__}" for name in sorted(EXPECTED)]
