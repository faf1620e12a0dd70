"""Image configuration that travels beside an llb State until an image exporter writes it.

The LLB IR carries only filesystems and per-exec settings; what `docker run` sees (Env, PATH,
WorkingDir, Entrypoint, ExposedPorts, Labels) lives here and is rendered in the OCI image-config
shape BuildKit's image exporters accept as the ``containerimage.config`` exporter attribute.
"""

from __future__ import annotations

import json
import platform as _platform
from dataclasses import dataclass, field, replace

DEFAULT_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
EXPORTER_CONFIG_KEY = "containerimage.config"

_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def host_platform() -> str:
    """``linux/<goarch>`` of this machine, the platform an unqualified build targets."""
    machine = _platform.machine().lower()
    return f"linux/{_GO_ARCH.get(machine, machine)}"


@dataclass(frozen=True)
class ImageConfig:
    """Immutable runtime config; ``with_*`` methods return updated copies."""

    env: tuple[tuple[str, str], ...] = ()
    path: tuple[str, ...] = DEFAULT_PATH
    workdir: str = "/"
    user: str = ""
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    exposed_ports: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    platform: str = field(default_factory=host_platform)

    def with_env(self, **values: str) -> ImageConfig:
        merged = dict(self.env)
        merged.update({k: str(v) for k, v in values.items()})
        return replace(self, env=tuple(merged.items()))

    def with_path_prefix(self, *dirs: str) -> ImageConfig:
        kept = tuple(p for p in self.path if p not in dirs)
        return replace(self, path=tuple(dirs) + kept)

    def with_ports(self, *ports: str) -> ImageConfig:
        return replace(self, exposed_ports=tuple(dict.fromkeys(self.exposed_ports + tuple(map(_port_key, ports)))))

    def with_labels(self, **labels: str) -> ImageConfig:
        merged = dict(self.labels)
        merged.update(labels)
        return replace(self, labels=tuple(merged.items()))

    def env_list(self) -> list[str]:
        """``KEY=VALUE`` strings with PATH first, as both exec env and image Env use them."""
        pairs = [("PATH", ":".join(self.path))] + [(k, v) for k, v in self.env if k != "PATH"]
        return [f"{k}={v}" for k, v in pairs]

    def to_oci(self) -> dict:
        """The OCI image config document (rootfs/history are filled in by the exporter)."""
        os_name, _, rest = self.platform.partition("/")
        arch, _, variant = rest.partition("/")
        config: dict = {"Env": self.env_list(), "WorkingDir": self.workdir}
        if self.user:
            config["User"] = self.user
        if self.entrypoint:
            config["Entrypoint"] = list(self.entrypoint)
        if self.cmd:
            config["Cmd"] = list(self.cmd)
        if self.exposed_ports:
            config["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        if self.labels:
            config["Labels"] = dict(self.labels)
        doc = {"architecture": arch, "os": os_name, "config": config}
        if variant:
            doc["variant"] = variant
        return doc

    def exporter_attrs(self) -> dict[str, str]:
        """Exporter attributes to pass with an image export so the image gets this config."""
        return {EXPORTER_CONFIG_KEY: json.dumps(self.to_oci(), sort_keys=True, separators=(",", ":"))}


def _port_key(port: str | int) -> str:
    text = str(port)
    return text if "/" in text else f"{text}/tcp"
