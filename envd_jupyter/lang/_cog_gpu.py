"""How cog picks CUDA, cuDNN and the nvidia/cuda base image for ``gpu: true`` (pkg/config/config.go
validateAndCompleteCUDA and compatibility.go), over the tables in ``_cog_tables``.

TensorFlow's GPU packages need one exact CUDA/cuDNN; torch wheels bundle their own, so the newest
CUDA a torch version has wheels for wins; without either, CUDA 11.8. cuDNN is the newest the
chosen CUDA has an image for, and the image is the newest patch release of that CUDA on the newest
Ubuntu. Errors are plain strings: ``_cog`` gives them the cog.yaml line.
"""

from __future__ import annotations

import re

from envd_jupyter.lang._cog_tables import CUDA_BASE_IMAGES, TF_CUDA, TORCH_CUDAS

DEFAULT_CUDA = "11.8"
MINIMUM_CUDA_MAJOR = 11
_PACKAGE_NAME = re.compile(r"^([^>=<~ \n\[#]+)")


class CudaChoiceError(ValueError):
    pass


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def matches(short: str, full: str) -> bool:
    """cog's version.Matches: every part ``short`` gives equals ``full``'s ("11.8" matches "11.8.0")."""
    a, b = short.split("."), full.split(".")
    return b[:len(a)] == a


def check_cuda(version: str) -> None:
    parts = version.split(".")
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
        raise CudaChoiceError(f"CUDA version {version!r} must include both major and minor versions (e.g. '11.8')")
    if int(parts[0]) < MINIMUM_CUDA_MAJOR:
        raise CudaChoiceError(f"minimum supported CUDA version is {MINIMUM_CUDA_MAJOR}, requested {version!r}")


def package_version(requirements: list[str], name: str) -> str | None:
    """The version a requirement line pins for ``name`` ("" when unpinned), None when absent."""
    for line in requirements:
        match = _PACKAGE_NAME.match(line.strip())
        if match and match.group(1).lower() == name:
            pinned = re.search(r"==\s*([^\s,;]+)", line)
            return pinned.group(1) if pinned else ""
    return None


def _torch_cudas(version: str) -> list[str]:
    if not version:
        raise CudaChoiceError("torch version must be specified when using CUDA")
    base, _, modifier = version.partition("+")
    if modifier.startswith("cu") and len(modifier) > 3:  # torch==2.1.0+cu118 names its CUDA
        wanted = f"{modifier[2:-1]}.{modifier[-1]}"
        if any(matches(base, v) and wanted in cudas for v, cudas in TORCH_CUDAS.items()):
            return [wanted]
    return sorted({c for v, cudas in TORCH_CUDAS.items() if matches(base, v) for c in cudas}, key=_key)


def compatible_cudnns(cuda: str) -> list[str]:
    return sorted({cudnn for _, image_cuda, cudnn, _ in CUDA_BASE_IMAGES if matches(cuda, image_cuda)},
                  key=_key, reverse=True)


def choose(cuda: str, cudnn: str, requirements: list[str]) -> tuple[str, str, list[str]]:
    """(CUDA, cuDNN, warnings) for ``gpu: true``, as cog completes them."""
    warnings = []
    if cuda:
        check_cuda(cuda)
    if cuda and cudnn and cudnn not in compatible_cudnns(cuda):
        raise CudaChoiceError(f"CUDA {cuda} is not compatible with cuDNN {cudnn} (compatible: "
                              f"{', '.join(compatible_cudnns(cuda)) or 'none'})")
    tf, torch = package_version(requirements, "tensorflow"), package_version(requirements, "torch")
    if tf is not None:
        tf_cuda, tf_cudnn = TF_CUDA.get(tf, ("", ""))
        if not cuda:
            if not tf_cuda:
                raise CudaChoiceError(f"cog doesn't know what CUDA version is compatible with tensorflow=={tf}: "
                                      "set build.cuda")
            cuda = tf_cuda
        elif tf_cuda and not matches(tf_cuda, cuda):
            warnings.append(f"cog doesn't know if CUDA {cuda} is compatible with Tensorflow {tf} (try {tf_cuda})")
        if cudnn and tf_cudnn and cudnn != tf_cudnn:
            raise CudaChoiceError(f"cuDNN {cudnn} is not compatible with tensorflow=={tf} (it needs {tf_cudnn})")
        cudnn = cudnn or tf_cudnn
    elif torch is not None:
        torch_cudas = _torch_cudas(torch)
        if not cuda:
            if not torch_cudas:
                raise CudaChoiceError(f"cog doesn't know what CUDA version is compatible with torch=={torch}: "
                                      "set build.cuda")
            cuda = torch_cudas[-1]
        elif not any(matches(c, cuda) or matches(cuda, c) for c in torch_cudas):
            warnings.append(f"cog doesn't know if CUDA {cuda} is compatible with PyTorch {torch}"
                            + (f" (try {torch_cudas[-1]})" if torch_cudas else ""))
    cuda = cuda or DEFAULT_CUDA
    if not cudnn:
        found = compatible_cudnns(cuda)
        if not found:
            raise CudaChoiceError(f"CUDA {cuda} is not supported by cog")
        cudnn = found[0]
    return cuda, cudnn, warnings


def base_image(cuda: str, cudnn: str) -> str:
    """The newest CUDA patch release matching ``cuda`` with ``cudnn``, on the newest Ubuntu."""
    images = [(image_cuda, ubuntu, tag) for tag, image_cuda, image_cudnn, ubuntu in CUDA_BASE_IMAGES
              if matches(cuda, image_cuda) and image_cudnn == cudnn]
    if not images:
        raise CudaChoiceError(f"no matching base image for CUDA {cuda} and cuDNN {cudnn}")
    _, _, tag = max(images, key=lambda image: (_key(image[0]), _key(image[1])))
    return f"nvidia/cuda:{tag}"
