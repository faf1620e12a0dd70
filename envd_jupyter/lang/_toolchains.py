"""What the toolchain rules compile to: conda, uv, pixi, R, Julia, Rust, Go, Node.js, codex, VS Code.

Each is one group, built the way envd builds it (pkg/lang/ir/v1: the same images, versions, URLs and
install commands), as one branch of the managed stage. Downloads run in envd's curl image and their
results are copied in, as envd does: those steps need the internet when they run, and the graph
compiles without it. ``c`` is the graph compiler (``_graph._Compiler``): its ``run`` gives every exec
the environment's network, PATH and source location.
"""

from __future__ import annotations

import json
import shlex

from envd_jupyter import llb
from envd_jupyter.lang._environment import Group
from envd_jupyter.lang._install import vscode_plugin
from envd_jupyter.lang._settings import ENVD_HOME

CURL_IMAGE = "ghcr.io/curl/curl-container/curl-multi:8.17.0"
MICROMAMBA_IMAGE = "ghcr.io/mamba-org/micromamba:2.3.3-debian12-slim"
CONDA_VERSION = "py311_25.9.1-1"
CONDA_ROOT, CONDA_ENV = "/opt/conda", "/opt/conda/envs/envd"
UV_VERSION, PIXI_VERSION = "0.9.22", "0.62.2"
GO_DEFAULT, NODEJS_DEFAULT, CODEX_DEFAULT = "1.25.3", "25.1.0", "rust-v0.98.0"
JULIA_URL = "https://julialang-s3.julialang.org/bin/linux/x64/1.10/julia-1.10.10-linux-x86_64.tar.gz"
JULIA_SHA256 = "6a78a03a71c7ab792e8673dc5cedb918e037f081ceb58b50971dfb7c64c5bf81"
CRAN_DEFAULT = "https://cran.rstudio.com"
R_LIBRARY = "/usr/local/lib/R/site-library"
JULIA_PACKAGES = "/opt/julia/user_packages"
MINICONDA_SHA256 = "238abad23f8d4d8ba89dd05df0b0079e278909a36e06955f12bbef4aa94e6131"
MAMBA_RC = "\nchannels:\n    - conda-forge\n"
CONDA_RC = "\ndefault_channels:\n  - https://conda.anaconda.org/conda-forge/\nchannels:\n  - conda-forge\n"


def downloaded(c, script: str, name: str) -> llb.State:
    """``script`` run in envd's curl image, for its files only."""
    return c.run(llb.image(CURL_IMAGE), script, name, env={"PATH": "/usr/local/bin:/usr/bin:/bin"})


def conda(c, root: llb.State, version: str, use_mamba: bool, channel_rc: str | None) -> llb.State:
    """The conda environment ``envd`` with ``python=version`` (micromamba from its image, or miniconda)."""
    if use_mamba:
        tool = f"{CONDA_ROOT}/bin/micromamba"
        installed = (root.mkdir(f"{CONDA_ROOT}/bin", parents=True, name="[envd] create mamba path")
                     .copy(llb.image(MICROMAMBA_IMAGE), "/bin/micromamba", f"{CONDA_ROOT}/bin/micromamba",
                           name="[envd] copy micromamba binary")
                     .mkfile(f"{CONDA_ROOT}/.mambarc", MAMBA_RC.encode(), name="[envd] create the mamba rc file"))
        create = f"{tool} create -y -p {CONDA_ENV} python={version}"
    else:
        tool = f"{CONDA_ROOT}/bin/conda"
        get = (f"wget https://repo.anaconda.com/miniconda/Miniconda3-{CONDA_VERSION}-Linux-x86_64.sh -O /tmp/miniconda.sh"
               f" && echo '{MINICONDA_SHA256}  /tmp/miniconda.sh' | sha256sum -c -s")
        builder = downloaded(c, get, "[envd] download conda")
        installed = c.run(root.copy(builder, "/tmp/miniconda.sh", "/tmp/miniconda.sh", name="[envd] copy conda"),
                          f"sh /tmp/miniconda.sh -b -u -p {CONDA_ROOT} && rm /tmp/miniconda.sh && {tool} clean -afy",
                          "[envd] install conda").mkfile(f"{CONDA_ROOT}/.condarc", CONDA_RC.encode(),
                                                         name="[envd] create the conda rc file")
        create = f"{tool} create -y -n envd python={version}"
    mounts = [llb.cache_mount(f"{CONDA_ROOT}/pkgs", c.cache_id(f"{CONDA_ROOT}/pkgs"), sharing="shared")]
    env = c.run(installed, create, f"[envd] create conda environment python={version}", mounts=mounts,
                env={"MAMBA_ROOT_PREFIX": CONDA_ROOT})
    if channel_rc is not None:
        env = env.mkfile(f"{CONDA_ENV}/.condarc", channel_rc.encode(), name="[envd] setting conda channel")
    return env


def conda_packages(c, root: llb.State, group: Group, use_mamba: bool) -> llb.State:
    tool = f"{CONDA_ROOT}/bin/{'micromamba' if use_mamba else 'conda'}"
    env_file = group.option("env_file")
    if env_file:
        update = "update -y -n envd" if use_mamba else "env update -n envd"
        script = f"{tool} {update} --file {shlex.quote(env_file)}"
    else:
        channels = "".join(f" -c {shlex.quote(ch)}" for ch in group.option("channel") or ())
        script = f"{tool} install -y -n envd{channels} " + " ".join(shlex.quote(p) for p in group.items)
    mounts = [llb.cache_mount(f"{CONDA_ROOT}/pkgs", c.cache_id(f"{CONDA_ROOT}/pkgs"), sharing="shared")]
    if env_file:
        mounts.append(llb.bind_mount("/envd/context", c.context(), readonly=True))
    return c.run(root, script, f"[envd] conda install {' '.join(group.items) or env_file}", mounts=mounts,
                 env={"MAMBA_ROOT_PREFIX": CONDA_ROOT}, workdir="/envd/context" if env_file else None)


def uv(c, root: llb.State, group: Group) -> llb.State:
    url = f"https://github.com/astral-sh/uv/releases/download/{UV_VERSION}/uv-$(uname -m)-unknown-linux-gnu.tar.gz"
    builder = downloaded(c, f"wget -qO- {url} | tar -xz --strip-components=1 -C /tmp", f"[envd] download uv {UV_VERSION}")
    installed = (root.copy(builder, "/tmp/uv", "/usr/bin/uv", name="[envd] install uv")
                 .copy(builder, "/tmp/uvx", "/usr/bin/uvx", name="[envd] install uvx"))
    return c.run(installed, f"uv python install {shlex.quote(group.items[0])}",
                 f"[envd] install uv Python={group.items[0]}", env={"UV_PYTHON_PREFERENCE": "only-managed"})


def pixi(c, root: llb.State, group: Group) -> llb.State:
    url = f"https://github.com/prefix-dev/pixi/releases/download/v{PIXI_VERSION}/pixi-$(uname -m)-unknown-linux-musl.tar.gz"
    builder = downloaded(c, f"wget -qO- {url} | tar -xz -C /tmp", f"[envd] download pixi {PIXI_VERSION}")
    state = root.copy(builder, "/tmp/pixi", "/usr/bin/pixi", name="[envd] install pixi")
    config = ""
    if group.option("mirror"):
        config += ('[mirrors]\n"https://conda.anaconda.org" = ["https://prefix.dev/"]\n'
                   '"https://conda.anaconda.org/conda-forge/label" = [\n'
                   '  "https://conda.anaconda.org/conda-forge/label",\n]\n')
    if group.option("pypi_index"):
        config += f'[pypi-config]\nindex-url = "{group.option("pypi_index")}"\n'
    if config:
        state = state.mkdir("/etc/pixi", 0o777, parents=True).mkfile("/etc/pixi/config.toml", config.encode(), 0o755,
                                                                    name="[envd] create pixi config file")
    return state


def r_lang(c, root: llb.State, group: Group) -> llb.State:
    """R from CRAN's apt repository (jammy), in the apt branch: it installs with apt like any system package."""
    key = ("wget -qO- https://cloud.r-project.org/bin/linux/ubuntu/marutter_pubkey.asc "
           "| gpg --dearmor -o /usr/share/keyrings/r-project.gpg && "
           "echo 'deb [signed-by=/usr/share/keyrings/r-project.gpg] https://cloud.r-project.org/bin/linux/ubuntu "
           "jammy-cran40/' >> /etc/apt/sources.list.d/r-project.list")
    keyed = c.run(root, key, "[envd] add R public GPG key")
    return c.apt_install(keyed, ("r-base",), "[envd] apt install R environment from CRAN repository")


def r_packages(c, root: llb.State, group: Group) -> llb.State:
    mirror = c.env.cran_mirror or CRAN_DEFAULT
    names = ", ".join(json.dumps(name) for name in group.items)
    expression = f"options(repos = {json.dumps(mirror)}); install.packages(c({names}), lib = {json.dumps(R_LIBRARY)})"
    return c.run(root, f"R -e {shlex.quote(expression)}", f"[envd] installing R packages: {' '.join(group.items)}")


def julia(c, root: llb.State, group: Group) -> llb.State:
    get = f"wget {JULIA_URL} -O /tmp/julia.tar.gz && echo '{JULIA_SHA256}  /tmp/julia.tar.gz' | sha256sum -c -s"
    builder = downloaded(c, get, "[envd] downloading julia binary")
    state = root.copy(builder, "/tmp/julia.tar.gz", "/tmp/julia.tar.gz", name="[envd] copying julia.tar.gz to /tmp")
    state = state.mkdir("/opt/julia", parents=True)
    return c.run(state, "tar zxf /tmp/julia.tar.gz --strip 1 -C /opt/julia && rm /tmp/julia.tar.gz",
                 "[envd] unpack julia archive under /opt/julia")


def julia_packages(c, root: llb.State, group: Group) -> llb.State:
    env = {"JULIA_DEPOT_PATH": JULIA_PACKAGES, "PATH": f"/opt/julia/bin:{c.system_env['PATH']}"}
    if c.env.julia_pkg_server:
        env["JULIA_PKG_SERVER"] = c.env.julia_pkg_server
    state = root.mkdir(JULIA_PACKAGES, parents=True, name="[envd] creating folder for julia packages")
    expression = f"using Pkg; Pkg.add({json.dumps(list(group.items))})"
    return c.run(state, f"julia -e {shlex.quote(expression)}", f"[envd] installing Julia packages: "
                 f"{' '.join(group.items)}", env=env)


def rust(c, root: llb.State, group: Group) -> llb.State:
    get = "curl --proto '=https' --tlsv1.2 -sSf -o /tmp/rustup-init.sh https://sh.rustup.rs"
    builder = downloaded(c, get, "[envd] download rustup-init.sh")
    state = root.copy(builder, "/tmp/rustup-init.sh", "/tmp/rustup-init.sh", name="[envd] copy the rustup-init.sh")
    state = state.mkdir("/opt/rust", parents=True, owner=c.owner)
    env = {"CARGO_HOME": "/opt/rust", **({"RUSTUP_VERSION": group.items[0]} if group.items[0] else {})}
    return c.run(state, "sh /tmp/rustup-init.sh -y -q --no-modify-path && rm /tmp/rustup-init.sh",
                 "[envd] install rust", env=env)


def go(c, root: llb.State, group: Group) -> llb.State:
    version = group.items[0] or GO_DEFAULT
    arch = "$(uname -m | sed -e 's/x86_64/amd64/' -e 's/aarch64/arm64/')"
    builder = downloaded(c, f"wget -qO /tmp/golang.linux.tar.gz https://go.dev/dl/go{version}.linux-{arch}.tar.gz",
                         f"[envd] download go {version}")
    state = root.copy(builder, "/tmp/golang.linux.tar.gz", "/tmp/golang.linux.tar.gz", name=f"[envd] prepare go {version}")
    return c.run(state, "tar -C /usr/local -xzf /tmp/golang.linux.tar.gz && rm /tmp/golang.linux.tar.gz",
                 f"[envd] install go {version}")


def nodejs(c, root: llb.State, group: Group) -> llb.State:
    version = group.items[0] or NODEJS_DEFAULT
    url = (f"https://nodejs.org/download/release/v{version}/node-v{version}-linux-$(uname -m | sed -e 's/x86_64/x64/')"
           ".tar.xz")
    builder = downloaded(c, f"mkdir /tmp/nodejs && wget -qO- {url} | tar -xJ --strip-components=1 -C /tmp/nodejs",
                         f"[envd] download nodejs {version}")
    return root.copy(builder, "/tmp/nodejs", "/opt/nodejs", copy_dir_contents_only=True, create_dest_path=True,
                     name=f"[envd] prepare nodejs {version}")


def codex(c, root: llb.State, group: Group) -> llb.State:
    version = group.items[0] or CODEX_DEFAULT
    url = f"https://github.com/openai/codex/releases/download/{version}/codex-$(uname -m)-unknown-linux-musl.tar.gz"
    builder = downloaded(c, f"wget -qO- {url} | tar -xz -C /tmp && mv /tmp/codex-$(uname -m)-unknown-linux-musl /tmp/codex",
                         f"[envd] download codex {version}")
    return root.copy(builder, "/tmp/codex", "/usr/bin/codex", name="[envd] install codex")


def vscode(c, root: llb.State, group: Group) -> llb.State:
    """Each extension from Open VSX (envd's marketplace), unpacked into the envd user's VS Code server."""
    state = root
    for plugin in group.items:
        publisher, extension, version = vscode_plugin(plugin, group.at)
        meta = f"https://open-vsx.org/api/{publisher}/{extension}/{version or 'latest'}?targetPlatform=linux-x64"
        get = (f"wget -qO /tmp/meta.json '{meta}' && "
               "url=$(sed -n 's/.*\"\\(universal\\|linux-x64\\)\":\"\\([^\"]*\\)\".*/\\2/p' /tmp/meta.json) && "
               "wget -qO /tmp/ext.vsix \"$url\" && mkdir -p /tmp/ext && unzip -q /tmp/ext.vsix 'extension/*' -d /tmp/ext")
        builder = downloaded(c, get, f"[envd] download vscode extension {plugin}")
        state = state.copy(builder, "/tmp/ext/extension", f"{ENVD_HOME}/.vscode-server/extensions/{plugin}",
                           copy_dir_contents_only=True, create_dest_path=True, owner=c.owner,
                           name=f"[envd] install vscode plugin {plugin}")
    return state


COMPILERS = {"uv": uv, "pixi": pixi, "r": r_lang, "r_packages": r_packages, "julia": julia,
             "julia_packages": julia_packages, "rust": rust, "go": go, "nodejs": nodejs, "codex": codex,
             "vscode": vscode}
