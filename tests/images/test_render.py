"""images/ is rendered from the table, lints clean, and installs exactly the CUDA lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import hcl2
import pytest

from strata.errors import SpecError
from strata.images.compat import get_toolchain
from strata.images.render import render_images
from strata.locks import load_lock

CU130 = get_toolchain("cu130")


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps string literals' quotes; drop them for comparisons."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def test_committed_images_are_what_the_table_renders() -> None:
    for item in render_images(CU130):
        assert not item.stale, f"{item.path} is stale: run `strata images` and commit it"


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run([str(hadolint), "images/Dockerfile"], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_pins_its_base_by_digest_and_installs_the_lock() -> None:
    text = Path("images/Dockerfile").read_text()
    lock = load_lock(Path("locks/cuda.txt"))
    (base,) = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert base == f"FROM {CU130.base_image}" and "@sha256:" in base
    assert f"torch=={lock['torch']}" in text
    assert f"deepspeed=={lock['deepspeed']}" in text
    assert text.count("--constraint locks/cuda.txt") == 3
    assert 'TORCH_CUDA_ARCH_LIST="8.0;9.0"' in text


def test_the_packer_template_builds_hardened_images_with_the_node_roles() -> None:
    with Path("images/node.pkr.hcl").open() as handle:
        template = hcl2.load(handle)
    (plugins,) = template["packer"][0]["required_plugins"]
    assert {"amazon", "googlecompute", "ansible"} <= set(plugins)
    sources = {next(iter(block)).strip('"'): next(iter(block.values())) for block in template["source"]}
    aws = sources["amazon-ebs"]['"gpu_node"']
    (metadata,) = aws["metadata_options"]
    assert _unquote(metadata["http_tokens"]) == "required"
    (volume,) = aws["launch_block_device_mappings"]
    assert volume["encrypted"] is True
    assert sources["googlecompute"]['"gpu_node"']["use_os_login"] is True
    versions = {key: _unquote(value) for key, value in template["locals"][0]["versions"].items()}
    assert versions["nccl"] == CU130.nccl and versions["driver_branch"] == str(CU130.driver_branch)
    (build,) = template["build"]
    (provisioner,) = build["provisioner"]
    ansible = provisioner['"ansible"']
    playbook = _unquote(ansible["playbook_file"]).replace("${path.root}", "images")
    assert Path(playbook).resolve() == Path("playbooks/node-image.yml").resolve()
    extra_vars = [_unquote(arg) for arg in ansible["extra_arguments"]]
    assert f"nvidia_driver_branch={CU130.driver_branch}" in extra_vars
    assert f"efa_installer_version={CU130.efa_installer}" in extra_vars


def test_rendering_refuses_a_lock_that_does_not_match(tmp_path: Path) -> None:
    lock = tmp_path / "cuda.txt"
    lock.write_text(
        Path("locks/cuda.txt").read_text().replace("nvidia-nccl-cu13==2.29.7", "nvidia-nccl-cu13==2.30.3")
    )
    with pytest.raises(SpecError, match=r"loads NCCL 2\.30\.3"):
        render_images(CU130, lock_path=lock)
