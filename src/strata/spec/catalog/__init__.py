"""The instance catalog: one row per instance or slice type, read from instances.csv.

The CSV is data, not code; its `source` column says where each row's figures come
from. Blank cells mean "not public" or "not applicable" and load as None.
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources

from strata.errors import CatalogError


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceType:
    """One catalog row. Per-node figures; a TPU slice counts as one node of several hosts."""

    name: str
    provider: str
    accelerator: str
    accelerators_per_node: int
    accelerator_memory_gib: int
    peak_bf16_tflops_per_accelerator: float | None
    hosts_per_node: int
    vcpus: int
    memory_gib: int
    efa_count: int
    gpu_nic_count: int
    network_gbps: float | None
    usd_per_hour: float | None
    allreduce_floor_gb_s: float | None
    source: str

    @property
    def is_gpu(self) -> bool:
        """A GPU type (aws and gcp rows; TPU slices and static CPU hosts are not)."""
        return self.provider in ("aws", "gcp")

    @property
    def peak_bf16_flops_per_accelerator(self) -> float | None:
        """Dense bf16 FLOP/s of one accelerator, or None on CPU-only nodes."""
        tflops = self.peak_bf16_tflops_per_accelerator
        return None if tflops is None else tflops * 1e12

    @property
    def peak_bf16_flops_per_node(self) -> float | None:
        """Dense bf16 FLOP/s of all accelerators in one node, or None on CPU-only nodes."""
        peak = self.peak_bf16_flops_per_accelerator
        return None if peak is None else peak * self.accelerators_per_node


def _optional_float(cell: str) -> float | None:
    return float(cell) if cell.strip() else None


def _row_to_instance(row: dict[str, str]) -> InstanceType:
    return InstanceType(
        name=row["name"],
        provider=row["provider"],
        accelerator=row["accelerator"],
        accelerators_per_node=int(row["accelerators_per_node"]),
        accelerator_memory_gib=int(row["accelerator_memory_gib"]),
        peak_bf16_tflops_per_accelerator=_optional_float(row["peak_bf16_tflops_per_accelerator"]),
        hosts_per_node=int(row["hosts_per_node"]),
        vcpus=int(row["vcpus"]),
        memory_gib=int(row["memory_gib"]),
        efa_count=int(row["efa_count"]),
        gpu_nic_count=int(row["gpu_nic_count"]),
        network_gbps=_optional_float(row["network_gbps"]),
        usd_per_hour=_optional_float(row["usd_per_hour"]),
        allreduce_floor_gb_s=_optional_float(row["allreduce_floor_gb_s"]),
        source=row["source"],
    )


class Catalog:
    """Lookup of instance types by name."""

    def __init__(self, rows: list[InstanceType]) -> None:
        self._by_name = {row.name: row for row in rows}

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[InstanceType]:
        return iter(self._by_name.values())

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def get(self, name: str) -> InstanceType:
        """Return the row for `name`, or raise CatalogError listing close matches."""
        try:
            return self._by_name[name]
        except KeyError:
            raise CatalogError(unknown_instance_message(name, self.names())) from None


def unknown_instance_message(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return f"unknown instance type {name!r}; {hint}known types: {', '.join(known)}"


@cache
def load_catalog() -> Catalog:
    """Read the packaged instances.csv once."""
    text = resources.files("strata.spec.catalog").joinpath("instances.csv").read_text("utf-8")
    return Catalog([_row_to_instance(row) for row in csv.DictReader(text.splitlines())])


@dataclass(frozen=True, slots=True, kw_only=True)
class TpuTopology:
    """One allowed slice shape of a TPU generation (tpu_topologies.csv)."""

    accelerator: str
    accelerator_config_type: str
    runtime_version: str
    topology: str
    chips: int


@cache
def load_tpu_topologies() -> list[TpuTopology]:
    """Read the packaged tpu_topologies.csv once."""
    text = resources.files("strata.spec.catalog").joinpath("tpu_topologies.csv").read_text("utf-8")
    return [
        TpuTopology(
            accelerator=row["accelerator"],
            accelerator_config_type=row["accelerator_config_type"],
            runtime_version=row["runtime_version"],
            topology=row["topology"],
            chips=int(row["chips"]),
        )
        for row in csv.DictReader(text.splitlines())
    ]
