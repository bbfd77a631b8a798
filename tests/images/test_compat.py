"""The compatibility table: the shipped toolchain passes, known-bad combinations are refused."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from strata.errors import SpecError
from strata.images.compat import (
    catalog_gpus,
    check_toolchain,
    cuda_arch_list,
    get_toolchain,
    require_compatible,
)
from strata.locks import load_lock

LOCK = load_lock(Path("locks/cuda.txt"))
CU130 = get_toolchain("cu130")


def test_the_shipped_toolchain_fits_the_lock_and_every_catalog_gpu() -> None:
    assert check_toolchain(CU130, LOCK, catalog_gpus()) == []
    assert set(catalog_gpus()) >= {"A100-40GB", "H100-80GB", "H200-141GB"}
    assert cuda_arch_list(catalog_gpus()) == "8.0;9.0"


def test_a_driver_older_than_cuda_needs_is_refused() -> None:
    old_driver = dataclasses.replace(CU130, driver_branch=570)
    (problem,) = check_toolchain(old_driver, LOCK, ["H100-80GB"])
    assert "driver branch 570 cannot run CUDA 13.0 (needs >= 580.65.06)" in problem
    assert "toolchains.csv row 'cu130'" in problem


def test_cuda_13_refuses_volta() -> None:
    (problem,) = check_toolchain(CU130, LOCK, ["H100-80GB", "V100-16GB"])
    assert "does not support V100-16GB" in problem


def test_an_nccl_other_than_torchs_is_refused() -> None:
    other_nccl = dataclasses.replace(CU130, nccl="2.28.7")
    (problem,) = check_toolchain(other_nccl, LOCK, ["H100-80GB"])
    assert "torch in locks/cuda.txt loads NCCL 2.29.7" in problem


def test_a_base_image_of_another_cuda_or_without_digest_is_refused() -> None:
    base = "nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04"
    problems = check_toolchain(dataclasses.replace(CU130, base_image=base), LOCK, ["H100-80GB"])
    assert any("base image is CUDA 12.8.1" in p for p in problems)
    assert any("pinned by digest" in p for p in problems)


def test_an_nccl_older_than_aws_ofi_nccl_supports_is_refused_and_all_problems_are_named() -> None:
    bad = dataclasses.replace(
        CU130, nccl="2.16.0", torch="2.12.0", dcgm_package="datacenter-gpu-manager-4-cuda12"
    )
    with pytest.raises(SpecError) as excinfo:
        require_compatible(bad, LOCK, ["H100-80GB"])
    message = str(excinfo.value)
    for expected in (
        "needs NCCL >= 2.17.1",
        "torch 2.12.0, locks/cuda.txt has 2.13.0",
        "not the CUDA 13 build",
    ):
        assert expected in message


def test_an_unknown_toolchain_names_the_table_and_the_known_rows() -> None:
    with pytest.raises(SpecError, match=r"toolchains.csv: no toolchain 'cu999'; known: cu130"):
        get_toolchain("cu999")
