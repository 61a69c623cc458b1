"""The content-preservation gate: is the enhanced photo still the same product? (pure)

A result can score better and still be worse to a shopper: a sleeve cut off by a
background replacement, blotches from local contrast on a plain wall, a colour cast.
Before finalize publishes a result it is compared with the original at a common scale
(the original's size, at most :data:`COMMON_SIDE`), and fails when:

* **the product is not whole**: pixels of the product (its mask in the original, when
  known) were turned into the fill colour; the replaced area holds parts, next to the
  product, whose colours are the product's and not the backdrop's (a sleeve cut off); or
  the new outline runs through uniform colour instead of along an edge of the original
  (a cut through a garment). These look at the pixels only, so they judge any mask:
  local or a paid model's;
* **its structure changed**: texture appeared where the original was plain (blotches),
  or on the plain side of strong edges (halos, ringing); tone changes are allowed, so
  both are measured on the high-pass part of the difference;
* **its colours shifted**: the product's mean chromaticity (each channel's share, which
  brightening does not move) changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

COMMON_SIDE = 512


@dataclass(frozen=True)
class GateRules:
    max_product_lost: float = 0.005   # share of the product turned into the fill colour
    max_unsupported_cut: float = 0.15  # share of a new outline through uniform colour
    max_removed_lookalike: float = 0.04  # replaced area that looks like the product
    cut_contrast: float = 10.0        # Lab distance across an outline that is a real edge
    blotch_level: float = 3.0         # gray levels of new local texture that count
    max_blotch: float = 0.05          # share of the plain product area with new texture
    max_ringing: float = 0.08         # share of the plain band along edges with new texture
    max_color_shift: float = 2.0      # chromaticity points the product's mean may move

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if not 0.0 <= value <= 255.0:
                raise ValueError(f"gate rule {name} out of range: {value}")


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    measures: dict[str, float] = field(default_factory=dict)

    @property
    def reason(self) -> str | None:
        return "; ".join(self.reasons) if self.reasons else None


def common_scale(original: np.ndarray, result: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both images at the original's size (at most COMMON_SIDE on the long side)."""
    height, width = original.shape[:2]
    factor = min(1.0, COMMON_SIDE / max(height, width))
    size = (max(8, round(width * factor)), max(8, round(height * factor)))

    def fit(image: np.ndarray) -> np.ndarray:
        if (image.shape[1], image.shape[0]) == size:
            return image
        shrink = image.shape[0] * image.shape[1] > size[0] * size[1]
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink
                          else cv2.INTER_LINEAR)

    return fit(original), fit(result)


def _local_rms(image: np.ndarray, sigma: float) -> np.ndarray:
    return np.sqrt(cv2.GaussianBlur(image * image, (0, 0), sigma))


def _high_pass(gray: np.ndarray) -> np.ndarray:
    return gray - cv2.GaussianBlur(gray, (0, 0), 4.0)


def _distance_to(image: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Per pixel, the largest difference of any channel from ``colour`` (uint8)."""
    reference = np.empty_like(image)
    reference[...] = colour
    blue, green, red = cv2.split(cv2.absdiff(image, reference))
    return cv2.max(cv2.max(blue, green), red)


def check_preservation(original: np.ndarray, result: np.ndarray,
                       product: np.ndarray | None, fill_bgr: tuple[int, int, int] | None,
                       rules: GateRules) -> GateVerdict:
    """Compare ``result`` with ``original`` (BGR uint8, any sizes) on the product.

    ``product`` is the product's alpha (0..1, any size) in the original when known;
    ``fill_bgr`` the colour a background replacement fills with (None: no replacement
    was planned, so no pixel may become a flat fill).
    """
    before, after = common_scale(original, result)
    shape = before.shape[:2]
    region = np.ones(shape, bool)
    if product is not None:
        region = cv2.resize(product.astype(np.float32), (shape[1], shape[0]),
                            interpolation=cv2.INTER_LINEAR) > 0.5
        if region.mean() < 0.01:
            region = np.ones(shape, bool)
    measures: dict[str, float] = {}
    reasons: list[str] = []

    removed = np.zeros(shape, bool)
    if fill_bgr is not None:
        fill = np.asarray(fill_bgr, np.uint8)
        after_to_fill = _distance_to(after, fill)
        removed = (after_to_fill <= 12) & (_distance_to(before, fill) > 30)
        measures["replaced_share"] = round(float(removed.mean()), 4)
        if product is not None:
            core = cv2.erode(region.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
            lost = float((removed & core).sum() / max(1, core.sum()))
            measures["product_lost"] = round(lost, 4)
            if lost > rules.max_product_lost:
                reasons.append(f"product cut: {lost:.1%} of the product's pixels were "
                               f"replaced by the fill colour")
        if removed.mean() > 0.002:
            kept = ~removed & (after_to_fill > 12)
            lookalike = _removed_lookalike(before, kept, removed)
            measures["removed_lookalike"] = round(lookalike, 4)
            if lookalike > rules.max_removed_lookalike:
                reasons.append(f"product cut: parts the size of {lookalike:.0%} of the kept "
                               f"product that look like it, not like the backdrop, were "
                               f"replaced")
            unsupported = _unsupported_outline(before, kept, removed, rules)
            measures["unsupported_outline"] = round(unsupported, 4)
            if unsupported > rules.max_unsupported_cut:
                reasons.append(f"product cut: {unsupported:.0%} of the new outline runs "
                               f"through uniform colour, not along an edge")

    keep = region & ~cv2.dilate(removed.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    if keep.sum() < 64:
        keep = ~removed
    gray_before = cv2.cvtColor(before, cv2.COLOR_BGR2GRAY).astype(np.float32)
    gray_after = cv2.cvtColor(after, cv2.COLOR_BGR2GRAY).astype(np.float32)
    texture_before = _local_rms(_high_pass(gray_before), 2.0)
    texture_after = _local_rms(_high_pass(gray_after), 2.0)
    # Brightening scales texture with the tone: expect the local gain, flag what is new.
    gain = ((cv2.GaussianBlur(gray_after, (0, 0), 8.0) + 8.0)
            / (cv2.GaussianBlur(gray_before, (0, 0), 8.0) + 8.0))
    plain = (texture_before < 2.0) & keep
    new_texture = (texture_after - texture_before * gain) > rules.blotch_level
    edges = cv2.Canny(gray_before.astype(np.uint8), 40, 120)
    near_edge = cv2.dilate(edges, np.ones((9, 9), np.uint8)) > 0
    plain_far, plain_near = plain & ~near_edge, plain & near_edge
    if plain_far.sum() >= 64:
        blotch = float((new_texture & plain_far).sum() / plain_far.sum())
        measures["blotch"] = round(blotch, 4)
        if blotch > rules.max_blotch:
            reasons.append(f"blotches: {blotch:.0%} of the plain areas got new texture")
    if plain_near.sum() >= 64:
        ringing = float((new_texture & plain_near).sum() / plain_near.sum())
        measures["ringing"] = round(ringing, 4)
        if ringing > rules.max_ringing:
            reasons.append(f"halos: {ringing:.0%} of the plain band along edges got new "
                           f"texture")

    shift = _chromaticity_shift(before, after, keep)
    if shift is not None:
        measures["color_shift"] = round(shift, 2)
        if shift > rules.max_color_shift:
            reasons.append(f"colour cast: the product's mean chromaticity moved by "
                           f"{shift:.1f} points")
    return GateVerdict(not reasons, reasons, measures)


def _unsupported_outline(before: np.ndarray, kept: np.ndarray, removed: np.ndarray,
                         rules: GateRules) -> float:
    """Share of a replacement's outline with no colour edge across it in the original.

    The two sides are compared a few pixels away from the outline (the matte keeps a thin
    rim of backdrop on purpose, and the soft band is neither side).
    """
    ring = cv2.dilate(removed.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    outline = kept & ring
    if outline.sum() < 16:
        return 0.0
    lab = cv2.cvtColor(before, cv2.COLOR_BGR2LAB).astype(np.float32)
    window = (15, 15)

    def side_mean(side: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        weight = cv2.boxFilter(side.astype(np.float32), -1, window, normalize=False)
        total = cv2.boxFilter(lab * side[..., None], -1, window, normalize=False)
        return total / np.maximum(weight, 1.0)[..., None], weight

    inside = cv2.erode(kept.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    outside = cv2.erode(removed.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    (inner, inner_n), (outer, outer_n) = side_mean(inside), side_mean(outside)
    contrast = np.linalg.norm(inner - outer, axis=2)
    measured = outline & (inner_n > 0) & (outer_n > 0)
    if measured.sum() < 16:
        return 0.0
    return float((contrast[measured] < rules.cut_contrast).mean())


def _chromaticity_shift(before: np.ndarray, after: np.ndarray, where: np.ndarray
                        ) -> float | None:
    """Distance (percentage points) between the mean rgb chromaticities of two images'
    pixels ``where`` (a boolean mask).

    Chromaticity (each channel's share of the sum) does not move when a photo is
    brightened or darkened, so restoring exposure is not a cast; tinting is.
    """
    if not where.any():
        return None
    mask = where.astype(np.uint8)

    def mean_chromaticity(image: np.ndarray) -> np.ndarray:
        values = image.astype(np.float32) + np.float32(1.0)
        total = cv2.transform(values, np.ones((1, 3), np.float32))
        return np.array(cv2.mean(values / total[..., None], mask=mask)[:3])

    return float(np.linalg.norm(mean_chromaticity(after) - mean_chromaticity(before)) * 100)


def _removed_lookalike(before: np.ndarray, kept: np.ndarray, removed: np.ndarray) -> float:
    """Replaced area next to the product whose colours are the product's, not the backdrop's.

    The backdrop's colours are sampled where the replacement meets the frame's edge, the
    product's from what was kept; a replaced pixel is a lookalike when its colour is at
    least four times likelier under the product's histogram than under the backdrop's.
    Returned as a share of the kept product's area (lookalike pieces touching the product
    only; stray matches elsewhere do not count).
    """
    core = cv2.erode(kept.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    ring = np.zeros(removed.shape, bool)
    edge = max(3, round(min(removed.shape) * 0.03))
    ring[:edge], ring[-edge:], ring[:, :edge], ring[:, -edge:] = True, True, True, True
    backdrop = removed & ring
    if core.sum() < 256 or backdrop.sum() < 256:
        return 0.0
    bins = (before // 32).astype(np.int32)  # 8 levels per channel
    codes = bins[..., 0] * 64 + bins[..., 1] * 8 + bins[..., 2]
    product_hist = np.bincount(codes[core], minlength=512) / core.sum()
    backdrop_hist = np.bincount(codes[backdrop], minlength=512) / backdrop.sum()
    product_like = (product_hist > 4 * backdrop_hist + 1e-3)[codes] & removed
    product_like = cv2.morphologyEx(product_like.astype(np.uint8), cv2.MORPH_OPEN,
                                    np.ones((5, 5), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(product_like, connectivity=8)
    if count <= 1:
        return 0.0
    near_kept = cv2.dilate(kept.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    touching = np.unique(labels[near_kept & (labels > 0)])
    area = sum(int(stats[i, cv2.CC_STAT_AREA]) for i in touching)
    return area / float(kept.sum())
