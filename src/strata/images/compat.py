"""The compatibility table of node and container images, and the rules that refuse bad combinations.

A toolchain (one row of spec/catalog/toolchains.csv) names every version an image pins:
torch, CUDA and its base image, the driver branch, NCCL, the EFA installer with its
aws-ofi-nccl, and DCGM. `check_toolchain` compares it with the CUDA rules
(cuda_majors.csv), the GPUs of the instance catalog (accelerators.csv) and the CUDA lock;
any mismatch known to break training is a problem, and images are not rendered.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from packaging.version import Version

from strata.errors import SpecError
from strata.spec.catalog import load_catalog

logger = logging.getLogger(__name__)

TABLE = "src/strata/spec/catalog/toolchains.csv"


@dataclass(frozen=True, slots=True, kw_only=True)
class Toolchain:
    """Every version one image pins."""

    name: str
    torch: str
    cuda: str
    base_image: str
    python: str
    driver_branch: int
    nccl: str
    efa_installer: str
    aws_ofi_nccl: str
    aws_ofi_nccl_min_nccl: str
    aws_ofi_nccl_tested_nccl: str
    dcgm_package: str

    @property
    def cuda_major(self) -> int:
        return int(self.cuda.split(".")[0])


@dataclass(frozen=True, slots=True, kw_only=True)
class CudaMajor:
    """What one CUDA major release needs from the driver and the GPU."""

    min_driver: str
    min_compute_capability: float


def _read(name: str) -> list[dict[str, str]]:
    text = resources.files("strata.spec.catalog").joinpath(name).read_text("utf-8")
    return list(csv.DictReader(text.splitlines()))


@cache
def load_toolchains() -> dict[str, Toolchain]:
    """The rows of toolchains.csv by name."""
    rows = {}
    for row in _read("toolchains.csv"):
        values = {key: value for key, value in row.items() if key != "source"}
        rows[row["name"]] = Toolchain(**{**values, "driver_branch": int(row["driver_branch"])})  # type: ignore[arg-type]
    return rows


@cache
def load_cuda_majors() -> dict[int, CudaMajor]:
    return {
        int(row["cuda_major"]): CudaMajor(
            min_driver=row["min_driver"], min_compute_capability=float(row["min_compute_capability"])
        )
        for row in _read("cuda_majors.csv")
    }


@cache
def load_compute_capabilities() -> dict[str, float]:
    """Compute capability by accelerator name (GPUs only)."""
    return {row["accelerator"]: float(row["compute_capability"]) for row in _read("accelerators.csv")}


def catalog_gpus() -> list[str]:
    """The GPU accelerators of the instance catalog, which an image must run on."""
    return sorted({row.accelerator for row in load_catalog() if row.is_gpu})


def cuda_arch_list(gpus: Iterable[str]) -> str:
    """TORCH_CUDA_ARCH_LIST for the given GPUs, e.g. "8.0;9.0"."""
    capabilities = load_compute_capabilities()
    return ";".join(f"{cc:.1f}" for cc in sorted({capabilities[gpu] for gpu in gpus}))


def get_toolchain(name: str) -> Toolchain:
    toolchains = load_toolchains()
    if name not in toolchains:
        raise SpecError(f"{TABLE}: no toolchain {name!r}; known: {', '.join(sorted(toolchains))}")
    return toolchains[name]


def check_toolchain(toolchain: Toolchain, lock: dict[str, str], gpus: Iterable[str]) -> list[str]:
    """Every reason this toolchain cannot work with the lock and the GPUs; empty when it can."""
    where = f"{TABLE} row {toolchain.name!r}"
    problems = []
    rules = load_cuda_majors().get(toolchain.cuda_major)
    if rules is None:
        return [f"{where}: CUDA {toolchain.cuda} has no row in cuda_majors.csv"]
    min_branch = int(rules.min_driver.split(".")[0])
    if toolchain.driver_branch < min_branch:
        problems.append(
            f"{where}: driver branch {toolchain.driver_branch} cannot run CUDA {toolchain.cuda} "
            f"(needs >= {rules.min_driver}); use driver_branch >= {min_branch}"
        )
    capabilities = load_compute_capabilities()
    for gpu in gpus:
        if gpu not in capabilities:
            problems.append(f"{where}: GPU {gpu!r} has no compute capability in accelerators.csv")
        elif capabilities[gpu] < rules.min_compute_capability:
            problems.append(
                f"{where}: CUDA {toolchain.cuda} does not support {gpu} (sm_{capabilities[gpu]:.1f}; "
                f"needs >= {rules.min_compute_capability:.1f}); use a CUDA 12 toolchain for it"
            )
    image_cuda = toolchain.base_image.split(":")[1].split("-")[0]
    if not image_cuda.startswith(f"{toolchain.cuda}."):
        problems.append(f"{where}: base image is CUDA {image_cuda}, the row says CUDA {toolchain.cuda}")
    if "@sha256:" not in toolchain.base_image:
        problems.append(f"{where}: base_image must be pinned by digest (name:tag@sha256:...)")
    problems += _check_lock(toolchain, lock, where)
    if Version(toolchain.nccl) < Version(toolchain.aws_ofi_nccl_min_nccl):
        problems.append(
            f"{where}: aws-ofi-nccl {toolchain.aws_ofi_nccl} needs NCCL >= "
            f"{toolchain.aws_ofi_nccl_min_nccl}, the row has {toolchain.nccl}"
        )
    if not toolchain.dcgm_package.endswith(f"-cuda{toolchain.cuda_major}"):
        problems.append(
            f"{where}: DCGM package {toolchain.dcgm_package} is not the CUDA {toolchain.cuda_major} build"
        )
    return problems


def _check_lock(toolchain: Toolchain, lock: dict[str, str], where: str) -> list[str]:
    """The image installs from the lock: torch, its CUDA and its NCCL must be the row's."""
    problems = []
    locked_torch = lock.get("torch", "missing")
    if locked_torch != toolchain.torch:
        problems.append(f"{where}: torch {toolchain.torch}, locks/cuda.txt has {locked_torch}")
    toolkit = lock.get("cuda-toolkit", "missing")
    if not toolkit.startswith(f"{toolchain.cuda}."):
        problems.append(
            f"{where}: CUDA {toolchain.cuda}, torch in locks/cuda.txt wants cuda-toolkit {toolkit}"
        )
    locked_nccl = lock.get(f"nvidia-nccl-cu{toolchain.cuda_major}", "missing")
    if locked_nccl != toolchain.nccl:
        problems.append(
            f"{where}: NCCL {toolchain.nccl}, torch in locks/cuda.txt loads NCCL {locked_nccl}; "
            "set the row's nccl to the locked version"
        )
    return problems


def require_compatible(toolchain: Toolchain, lock: dict[str, str], gpus: Iterable[str]) -> None:
    """Raise SpecError naming every problem; log what is allowed but untested."""
    problems = check_toolchain(toolchain, lock, gpus)
    if problems:
        raise SpecError("incompatible toolchain:\n  " + "\n  ".join(problems))
    if Version(toolchain.nccl) > Version(toolchain.aws_ofi_nccl_tested_nccl):
        logger.warning(
            "NCCL %s is newer than aws-ofi-nccl %s was tested with (%s); run the health checks on EFA",
            toolchain.nccl,
            toolchain.aws_ofi_nccl,
            toolchain.aws_ofi_nccl_tested_nccl,
        )
