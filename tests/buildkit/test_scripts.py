"""The daemon scripts keep secrets out of argv and never leave policy-rc.d behind (issue 17 item 8).

The scripts' own functions run in bash: programs are wrapped to record their argv (then exec the
real program, against the real loopback registries), and apt is stubbed to fail or be interrupted.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[2] / "scripts" / "lib"


def _bash(script: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env})


def _recording_wrapper(bin_dir: Path, program: str, log: Path) -> None:
    real = subprocess.run(["bash", "-c", f"command -v {program}"], capture_output=True, text=True).stdout.strip()
    wrapper = bin_dir / program
    wrapper.write_text(f'#!/bin/bash\nprintf "%s\\n" "$*" >>{log}\nexec {real} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)


def test_registry_setup_passes_no_password_or_token_in_argv(tmp_path, daemon_env, token_registry):
    state = Path(daemon_env["ENVD_JUPYTER_STATE"])
    auth_dir = tmp_path / "registry-auth"
    auth_dir.mkdir()
    password = token_registry.password
    (auth_dir / "password").write_text(password + "\n")
    bin_dir, argv_log = tmp_path / "bin", tmp_path / "argv.log"
    bin_dir.mkdir()
    for program in ("htpasswd", "curl"):
        _recording_wrapper(bin_dir, program, argv_log)
    script = f"""
        set -uo pipefail
        . {LIB}/common.sh; . {LIB}/registry.sh
        LOGS={tmp_path}; REGISTRY_AUTH_DIR={auth_dir}
        ensure_registry_credentials
        htpasswd -viB {auth_dir}/htpasswd "$REGISTRY_AUTH_USER" <{auth_dir}/password || exit 9
        REGISTRY_AUTH_DIR={Path(daemon_env["ENVD_REGISTRY_AUTH_PASSWORD_FILE"]).parent}
        TOKEN_SERVER_PORT=$(cat {state}/registry-token/token-port)
        REGISTRY_TOKEN_PORT={token_registry.host.rsplit(":", 1)[1]}
        check_token_registry
    """
    done = _bash(script, {"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr
    argv = argv_log.read_text()
    assert argv.count("\n") >= 5, "htpasswd and curl were really called through the wrappers"
    assert password not in argv
    assert "Bearer" not in argv and "eyJ" not in argv  # no bearer token (a JWT) either


@pytest.fixture
def policy_env(tmp_path):
    return {"ENVD_JUPYTER_POLICY_RC": str(tmp_path / "policy-rc.d"), "LOGS_DIR": str(tmp_path)}


def _install_with(apt_behaviour: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """install_debian_packages for one missing package, apt replaced by ``apt_behaviour``."""
    script = f"""
        set -uo pipefail
        . {LIB}/common.sh; . {LIB}/install.sh
        LOGS=$LOGS_DIR
        dpkg-query() {{ return 1; }}
        apt_lists_present() {{ return 0; }}
        apt-get() {{ return 1; }}
        apt_install() {{
          [ -e "$POLICY_RC" ] && echo "policy present during install" >>"$LOGS_DIR/seen"
          {apt_behaviour}
        }}
        install_debian_packages some-package
        echo "returned normally"
    """
    return _bash(script, env)


@pytest.mark.parametrize("how, code", [("kill -TERM $$; sleep 30", 143), ("kill -INT $$; sleep 30", 130),
                                       ("exit 7", 7), ("return 1", 1), ("return 0", 0)])
def test_policy_rc_is_removed_however_the_install_ends(policy_env, how, code):
    done = _install_with(how, policy_env)
    assert done.returncode == code, done.stderr
    assert "policy present during install" in Path(policy_env["LOGS_DIR"], "seen").read_text()
    assert not Path(policy_env["ENVD_JUPYTER_POLICY_RC"]).exists()


def test_an_administrators_policy_rc_stays(policy_env):
    admin = Path(policy_env["ENVD_JUPYTER_POLICY_RC"])
    admin.write_text("#!/bin/sh\n# the administrator's\nexit 0\n")
    done = _install_with("exit 7", policy_env)
    assert done.returncode == 7
    assert admin.read_text() == "#!/bin/sh\n# the administrator's\nexit 0\n"
