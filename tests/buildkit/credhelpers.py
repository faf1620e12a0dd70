"""Real docker credential helpers for tests: small executables named ``docker-credential-<name>``.

Each one speaks the helper protocol (``get``, server address on stdin, JSON on stdout, "credentials
not found in native keychain" with exit 1 for unknown hosts) and appends "<action> <host>" to
``<name>.calls`` beside it, so tests can check what was asked.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

_SCRIPT = '''#!{python}
import json, sys, time
host = sys.stdin.read()
with open({calls!r}, "a") as log:
    log.write(" ".join(sys.argv[1:]) + " " + host + "\\n")
time.sleep({sleep})
if {fail!r}:
    print({fail!r}, file=sys.stderr)
    sys.exit(1)
if {leak_then_fail!r}:
    print(json.dumps({{"Username": "u", "Secret": {leak_then_fail!r}}}))
    sys.exit(1)
if {raw!r} is not None:
    sys.stdout.write({raw!r})
    sys.exit(0)
answers = json.loads({answers!r})
if sys.argv[1:] != ["get"] or host not in answers:
    print("credentials not found in native keychain")
    sys.exit(1)
user, secret = answers[host]
print(json.dumps({{"ServerURL": host, "Username": user, "Secret": secret}}))
'''


def write_helper(bin_dir: Path, name: str, answers: dict[str, tuple[str, str]] | None = None, *,
                 fail: str = "", raw: str | None = None, sleep: float = 0, leak_then_fail: str = "") -> Path:
    """A helper answering ``answers`` (host -> (username, secret)); ``fail`` makes it exit 1 with that line
    on stderr; ``leak_then_fail`` prints an answer with that secret on stdout, then exits 1."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / f"docker-credential-{name}"
    path.write_text(_SCRIPT.format(python=sys.executable, calls=str(bin_dir / f"{name}.calls"), sleep=sleep,
                                   fail=fail, raw=raw, answers=json.dumps(answers or {}),
                                   leak_then_fail=leak_then_fail))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def calls(bin_dir: Path, name: str) -> list[str]:
    log = bin_dir / f"{name}.calls"
    return log.read_text().splitlines() if log.exists() else []


def write_config(config_dir: Path, **settings) -> Path:
    """A docker config.json with ``auths``/``credsStore``/``credHelpers`` as given."""
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / "config.json"
    path.write_text(json.dumps(settings))
    return path
