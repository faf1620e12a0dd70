"""``breakpoint()`` in %%envd cells reaches %envd_step: --continue pauses there (envd_step's line forms)."""

from __future__ import annotations

import pytest

from .test_magics import BUSYBOX, envd, shell, unique  # noqa: F401  (shell is the fixture)


@pytest.mark.parametrize("language, body", [
    ("starlark", f'base(image="{BUSYBOX}")\nrun(["echo {{token}} > /one"])\nbreakpoint()\nrun(["echo 2 > /two"])\n'),
    ("python", 'image(BUSYBOX).run("echo {token} > /one").breakpoint().run("echo 2 > /two")'),
])
def test_continue_pauses_at_a_breakpoint_written_in_the_cell(shell, language, body):  # noqa: F811
    token = unique()
    envd(shell, f"marked --no-solve --lang {language}", body.format(token=token))
    paused = str(shell.run_line_magic("envd_step", "marked --continue"))
    assert f"paused at breakpoint step 2/3: [user] echo {token} > /one" in paused and "--continue for the next" in paused
    assert shell.run_line_magic("envd_cat", "marked /one") == f"{token}\n"
    assert shell.run_line_magic("envd_exec", "marked -- test -e /two") == 1
    assert "step 3/3: [user] echo 2 > /two — the last step" in shell.run_line_magic("envd_step", "marked --continue")
    assert shell.run_line_magic("envd_cat", "marked /two") == "2\n"
