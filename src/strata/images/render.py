"""Render the container image and the node-image recipe from the toolchain table and the lock.

images/Dockerfile and images/node.pkr.hcl are generated files, committed so that users
can build them directly; `strata images --check` fails when they are stale.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import jinja2

from strata.errors import SpecError
from strata.images.compat import Toolchain, catalog_gpus, cuda_arch_list, get_toolchain, require_compatible
from strata.locks import load_lock

logger = logging.getLogger(__name__)

CUDA_LOCK = Path("locks/cuda.txt")
IMAGES_DIR = Path("images")
TEMPLATES = {"Dockerfile.j2": "Dockerfile", "node.pkr.hcl.j2": "node.pkr.hcl"}
DEFAULT_TOOLCHAIN = "cu130"


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderedFile:
    path: Path
    text: str

    @property
    def stale(self) -> bool:
        """True when the file on disk differs from what the table renders."""
        return not self.path.is_file() or self.path.read_text() != self.text


def render_images(
    toolchain: Toolchain, *, lock_path: Path = CUDA_LOCK, images_dir: Path = IMAGES_DIR
) -> list[RenderedFile]:
    """Render every template for `toolchain`, after checking it against the lock and the catalog."""
    lock = load_lock(lock_path)
    gpus = catalog_gpus()
    require_compatible(toolchain, lock, gpus)
    if "deepspeed" not in lock:
        raise SpecError(f"{lock_path}: deepspeed is not locked; run `make lock-cuda`")
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(images_dir),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    values = {"t": toolchain, "cuda_arch_list": cuda_arch_list(gpus), "deepspeed": lock["deepspeed"]}
    return [
        RenderedFile(path=images_dir / output, text=environment.get_template(template).render(values))
        for template, output in TEMPLATES.items()
    ]


def write_images(toolchain_name: str = DEFAULT_TOOLCHAIN, *, check: bool = False) -> list[Path]:
    """Write the rendered files (or, with check, raise SpecError naming the stale ones)."""
    rendered = render_images(get_toolchain(toolchain_name))
    stale = [item for item in rendered if item.stale]
    if check:
        if stale:
            names = ", ".join(str(item.path) for item in stale)
            raise SpecError(f"{names} differ from the toolchain table; run `strata images` and commit them")
        return []
    for item in stale:
        item.path.write_text(item.text)
        logger.info("wrote %s", item.path)
    return [item.path for item in stale]
