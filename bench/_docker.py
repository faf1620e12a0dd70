"""The docker CLI (with its buildx plugin) pointed at one of the project's dockerds: the benches' peer."""

from __future__ import annotations

import os
import subprocess


class DockerCLI:
    def __init__(self, env: dict[str, str], socket_path: str):
        self.cli = env["ENVD_DOCKER_CLI"]
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{socket_path}", "DOCKER_CONFIG": env["ENVD_DOCKER_CONFIG"]}

    def run(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``docker *args``; with ``check`` a failure raises with the end of its stderr."""
        done = subprocess.run([self.cli, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode:
            raise RuntimeError(f"docker {' '.join(args[:2])} failed: {done.stderr.strip()[-800:]}")
        return done
