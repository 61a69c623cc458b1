"""Helpers for the golden-image tests of ``imaging.ops``.

The golden folder is written by ``scripts/make_golden_images.py``: a stored input and the
expected output per operation, compared with an SSIM floor rather than byte equality so that
bit-level differences between OpenCV builds do not fail the suite.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from imaging.ops import apply_operation
from imaging.similarity import ssim

GOLDEN = Path(__file__).resolve().parent / "golden"
SSIM_FLOOR = 0.98


@dataclass(frozen=True)
class GoldenCase:
    op: str
    params: dict[str, Any]
    input: np.ndarray
    expected: np.ndarray
    clean: np.ndarray


def _read(name: str) -> np.ndarray:
    image = cv2.imread(str(GOLDEN / name), cv2.IMREAD_COLOR)
    assert image is not None, f"missing golden image {name}; run scripts/make_golden_images.py"
    return image


def golden_case(op: str) -> GoldenCase:
    manifest = json.loads((GOLDEN / "manifest.json").read_text())
    (entry,) = [case for case in manifest if case["op"] == op]
    return GoldenCase(
        op=op,
        params=entry["params"],
        input=_read(entry["input"]),
        expected=_read(entry["expected"]),
        clean=_read(entry["clean"]),
    )


def assert_matches_golden(op: str) -> None:
    case = golden_case(op)
    got = apply_operation(op, case.input, case.params)
    assert got.shape == case.expected.shape
    score = ssim(got, case.expected)
    assert score >= SSIM_FLOOR, f"{op}: SSIM {score:.4f} vs golden output below {SSIM_FLOOR}"


def assert_pure_and_deterministic(
    op: str, bgr: np.ndarray, params: dict[str, Any], shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """Same output twice, uint8 BGR of the expected shape, input left untouched."""
    before = bgr.copy()
    first = apply_operation(op, bgr, params)
    second = apply_operation(op, bgr, params)
    assert np.array_equal(bgr, before), f"{op} modified its input"
    assert first is not bgr
    assert first.dtype == np.uint8
    assert first.ndim == 3 and first.shape[2] == 3
    assert first.shape == (shape or bgr.shape)
    assert np.array_equal(first, second), f"{op} is not deterministic"
    return first
