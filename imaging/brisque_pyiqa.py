"""Optional BRISQUE backend that runs pyiqa's own implementation, for cross-checks and benches.

Why: ``imaging.brisque`` is the production scorer; this module lets tests and benches compare it
with the reference (pyiqa 0.1.16, ``brisque``) on the same pixels. pyiqa needs torch and
torchvision (install the extra: ``pip install -e '.[pyiqa]'``) and, offline, a local weights
file: pass ``pth_path``, or set ``IMGSTREAM_BRISQUE_PTH``, or let this module write the SVR
packaged with ``imaging`` (``data/brisque_live_svr.npz``) to a temporary ``.pth`` that pyiqa
loads once. Nothing here reads project settings.
"""

from __future__ import annotations

import os
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from imaging.brisque import MODEL_RESOURCE

__all__ = ["ENV_PTH", "brisque_score", "write_pyiqa_weights"]

ENV_PTH = "IMGSTREAM_BRISQUE_PTH"
_EXTRA_HINT = "pyiqa BRISQUE needs torch, torchvision and pyiqa: pip install -e '.[pyiqa]'"


def _import_pyiqa() -> tuple[Any, Any]:
    try:
        import pyiqa
        import torch
    except ImportError as exc:
        raise ImportError(f"{_EXTRA_HINT} ({exc})") from exc
    return pyiqa, torch


def write_pyiqa_weights(path: str | os.PathLike[str]) -> Path:
    """Write the packaged SVR as the ``(sv_coef, sv)`` tensors pyiqa's BRISQUE loads."""
    _, torch = _import_pyiqa()
    with resources.files("imaging").joinpath(MODEL_RESOURCE).open("rb") as fh, np.load(fh) as d:
        tensors = (torch.from_numpy(d["sv_coef"].copy()), torch.from_numpy(d["sv"].copy()))
    out = Path(path)
    torch.save(tensors, out)
    return out


@cache
def _metric(pth_path: str | None) -> Any:
    """Create pyiqa's metric once per weights file; the packaged weights go via a temp file."""
    pyiqa, _ = _import_pyiqa()
    if pth_path is not None:
        return pyiqa.create_metric("brisque", pretrained_model_path=pth_path, device="cpu")
    with tempfile.TemporaryDirectory(prefix="imgstream-brisque-") as tmp:
        pth = write_pyiqa_weights(Path(tmp) / "brisque_live_svr.pth")
        return pyiqa.create_metric("brisque", pretrained_model_path=str(pth), device="cpu")


def brisque_score(image: np.ndarray, pth_path: str | os.PathLike[str] | None = None) -> float:
    """pyiqa's BRISQUE of a uint8 BGR (OpenCV order) or gray image; lower is better.

    Gray input is scored as the RGB image with three equal channels, which is what pyiqa does
    when it reads a gray file.
    """
    _, torch = _import_pyiqa()
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"expected a uint8 gray or BGR image, got {image.dtype} {image.shape}")
    if image.ndim == 2:
        rgb = np.repeat(image[:, :, None], 3, axis=2)
    elif image.shape[2] == 1:
        rgb = np.repeat(image, 3, axis=2)
    else:
        rgb = np.ascontiguousarray(image[:, :, 2::-1])
    chosen = pth_path if pth_path is not None else os.environ.get(ENV_PTH) or None
    metric = _metric(None if chosen is None else str(chosen))
    x = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).float().div(255.0)
    with torch.no_grad():
        return float(metric(x).item())
