"""Background replacement that keeps the whole product, or does nothing.

The product's own mask (:mod:`imaging.segmentation`: the backdrop colour model where the
backdrop is plain, the salient-object model elsewhere) is judged first; a mask that is not
confident leaves the photo untouched and says why (:class:`~imaging.errors.StepDeclined`).
A trusted mask is refined along the photo's edges at full size and composited on the
fill colour without fringes (:mod:`imaging.matting`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from imaging.decoding import fit
from imaging.errors import StepDeclined
from imaging.matting import composite, full_size_alpha
from imaging.segmentation import NO_MASK, MaskRules, ProductMask, find_mask_to_cut_with


def background(
    bgr: np.ndarray,
    source: np.ndarray | None = None,
    *,
    color: Sequence[int] = (255, 255, 255),
    rules: Mapping[str, Any] | None = None,
    mask_side: int | None = None,
    box: Sequence[float] | None = None,
    work_side: int = 256,
    iterations: int = 3,
) -> np.ndarray:
    """Return ``bgr`` with everything but the product replaced by ``color`` (RGB).

    The product is found on ``source`` (the photo before earlier steps, same size as
    ``bgr``) when given: the assessment and the gate segment that same photo.

    ``rules`` are :class:`~imaging.segmentation.MaskRules` fields (profile
    ``[segmentation]``). ``mask_side``: the mask is found on ``source`` reduced to this
    long side, the assessment's working copy (``[assessment] working_max_side``), so the
    mask the assessment made is the one cut with (one model run per photo, not two).
    ``box``, ``work_side`` and ``iterations`` are accepted from plans
    written for profile 1.x (GrabCut in a box) and no longer used: a box cut garments off.
    """
    fill = color_bgr(color)
    del box, work_side, iterations
    if source is None or source.shape != bgr.shape:
        source = bgr
    if mask_side is not None:
        source = fit(source, int(mask_side))
    mask = find_mask_to_cut_with(source, mask_rules(rules))
    alpha = trusted_alpha(mask, bgr)
    return composite(bgr, alpha, fill)


def product_alpha(bgr: np.ndarray, rules: MaskRules, require_confident: bool = True
                  ) -> np.ndarray:
    """The product's soft alpha at ``bgr``'s size; StepDeclined when it cannot be trusted."""
    return trusted_alpha(find_mask_to_cut_with(bgr, rules), bgr, require_confident)


def trusted_alpha(mask: ProductMask | None, bgr: np.ndarray, require_confident: bool = True
                  ) -> np.ndarray:
    """``mask`` refined at ``bgr``'s size; StepDeclined when it cannot be trusted."""
    if mask is None:
        raise StepDeclined(NO_MASK, "no product mask could be found")
    if require_confident and not mask.confident:
        raise StepDeclined(mask.reason or NO_MASK, f"{mask.method} mask: {mask.detail}")
    return full_size_alpha(bgr, mask.alpha)


def mask_rules(rules: Mapping[str, Any] | None) -> MaskRules:
    if rules is None:
        return MaskRules()
    if not isinstance(rules, Mapping):
        raise ValueError(f"rules must be a mapping, got {type(rules).__name__}")
    known = set(MaskRules.__dataclass_fields__)
    unknown = sorted(set(rules) - known)
    if unknown:
        raise ValueError(f"unknown mask rules {unknown}; known: {sorted(known)}")
    for key, value in rules.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"mask rule {key!r} must be a number, got {value!r}")
    values = dict(rules)
    values["model_side"] = int(values.get("model_side", MaskRules.model_side))
    values["max_pieces"] = int(values.get("max_pieces", MaskRules.max_pieces))
    values["second_side"] = int(values.get("second_side", MaskRules.second_side))
    return MaskRules(**values)


def color_bgr(color: Sequence[int]) -> tuple[int, int, int]:
    values = list(color) if isinstance(color, list | tuple) else []
    if len(values) != 3 or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and float(v).is_integer()
        and 0 <= v <= 255
        for v in values
    ):
        raise ValueError(f"color must be three integers 0..255 (RGB), got {color!r}")
    red, green, blue = (int(v) for v in values)
    return blue, green, red
