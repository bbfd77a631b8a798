"""The instance catalog: required rows, figures that agree with their sources, lookups."""

from __future__ import annotations

import pytest

from strata.errors import CatalogError
from strata.spec.catalog import load_catalog

REQUIRED = [
    "p4d.24xlarge", "p5.48xlarge", "p5e.48xlarge", "p5en.48xlarge",
    "a3-highgpu-8g", "a3-megagpu-8g", "v5litepod-8", "v5p-8", "v6e-8", "cpu",
]  # fmt: skip


def test_required_types_are_present_and_cite_a_source() -> None:
    catalog = load_catalog()
    for name in REQUIRED:
        assert catalog.get(name).source


@pytest.mark.parametrize(
    ("name", "efa", "nics", "gbps"),
    [("p4d.24xlarge", 4, 0, 400), ("p5.48xlarge", 32, 0, 3200), ("p5en.48xlarge", 16, 0, 3200),
     ("a3-highgpu-8g", 0, 4, 1000), ("a3-megagpu-8g", 0, 8, 1800)],
)  # fmt: skip
def test_network_figures(name: str, efa: int, nics: int, gbps: float) -> None:
    row = load_catalog().get(name)
    assert (row.efa_count, row.gpu_nic_count, row.network_gbps) == (efa, nics, gbps)


def test_peak_flops_per_node() -> None:
    catalog = load_catalog()
    assert catalog.get("p5.48xlarge").peak_bf16_flops_per_node == pytest.approx(8 * 989e12)
    assert catalog.get("p4d.24xlarge").peak_bf16_flops_per_node == pytest.approx(8 * 312e12)
    assert catalog.get("cpu").peak_bf16_flops_per_node is None


def test_tpu_prices_follow_the_per_chip_rate() -> None:
    catalog = load_catalog()
    for name, per_chip in (("v5p-128", 4.20), ("v5litepod-256", 1.20), ("v6e-16", 2.70)):
        row = catalog.get(name)
        assert row.usd_per_hour == pytest.approx(per_chip * row.accelerators_per_node)


def test_unknown_type_suggests_close_names() -> None:
    with pytest.raises(CatalogError, match=r"p5\.48xlarge"):
        load_catalog().get("p5.48xl")


def test_the_p5_all_reduce_floor_sits_below_the_measured_bus_bandwidth() -> None:
    catalog = load_catalog()
    floor = catalog.get("p5.48xlarge").allreduce_floor_gb_s
    assert floor is not None and 0.75 * 487 <= floor < 487
    assert catalog.get("cpu").allreduce_floor_gb_s is None
