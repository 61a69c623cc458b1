"""A soft, edge-aware matte at full resolution and a composite without fringes (pure).

Masks are found on a small copy (:mod:`imaging.segmentation`); scaled up as they are,
their edges would be blurry or stair-stepped. The guided filter (He, Sun and Tang) makes
the alpha follow the photo's own edges at full size at the cost of a few box filters.
Edge pixels still carry some of the old backdrop's colour, which shows as a dark or
coloured fringe on white: the foreground colour is re-estimated there (blur-fusion,
from the local product and backdrop colours) before compositing on the fill colour.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Refined alpha at which a pixel counts as half product.
EDGE_LEVEL = 0.5


def _box(image: np.ndarray, radius: int) -> np.ndarray:
    return cv2.boxFilter(image, -1, (2 * radius + 1, 2 * radius + 1),
                         borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float
                  ) -> np.ndarray:
    """Edge-preserving smoothing of ``source`` steered by the gray ``guide`` (both 0..1)."""
    mean_i = _box(guide, radius)
    mean_p = _box(source, radius)
    cov_ip = _box(guide * source, radius) - mean_i * mean_p
    var_i = _box(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return _box(a, radius) * guide + _box(b, radius)


def full_size_alpha(bgr: np.ndarray, alpha_small: np.ndarray) -> np.ndarray:
    """``alpha_small`` scaled to ``bgr``'s size, refined along the photo's edges."""
    height, width = bgr.shape[:2]
    alpha = cv2.resize(alpha_small.astype(np.float32), (width, height),
                       interpolation=cv2.INTER_LINEAR)
    scale = max(height, width) / max(alpha_small.shape)
    # The network's outline sits about half a work-copy pixel inside the product where
    # product and backdrop are alike (a dark hem on wood): moved out by that much before
    # refining, the matte keeps the product's edge; the composite cleans the rim.
    shift = max(1, round(scale / 2))
    alpha = cv2.dilate(alpha, cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                        (2 * shift + 1, 2 * shift + 1)))
    if scale > 1.0:
        guide = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32) / np.float32(255.0)
        radius = max(2, round(2 * scale))
        guided = guided_filter(guide, alpha, radius, 1e-3)
        # On a busy backdrop (a rug, a quilt) the guided filter follows the pattern and
        # the outline turns ragged: there the smooth scaled-up mask is the better edge.
        busy = backdrop_texture(guide, alpha, 2 * radius)
        alpha = guided + busy * (alpha - guided)
    # Solid inside and outside, soft only in a thin band. Centring it outwards keeps the
    # product's outermost pixel ring but shows the old backdrop as a rim
    # (docs/decisions/0001): a rim is seen, a 1-px ring is not.
    alpha = np.clip((alpha - np.float32(EDGE_LEVEL)) * np.float32(1.5) + np.float32(0.5),
                    0.0, 1.0).astype(np.float32)
    return _without_islands(alpha)


#: Local standard deviation of the backdrop's gray level (0..1) below which it counts as
#: plain, and above which as busy.
PLAIN_TEXTURE, BUSY_TEXTURE = 0.03, 0.08


def backdrop_texture(gray: np.ndarray, alpha: np.ndarray, radius: int) -> np.ndarray:
    """How busy the backdrop is around each pixel (0 plain .. 1 busy): the local standard
    deviation of the gray level over backdrop pixels only, so the product's own edge
    does not count."""
    weight = np.clip(1.0 - alpha, 0.0, 1.0).astype(np.float32) ** 2
    total = _box(weight, radius) + np.float32(1e-4)
    mean = _box(gray * weight, radius) / total
    var = np.maximum(_box(gray * gray * weight, radius) / total - mean * mean, 0.0)
    return np.clip((np.sqrt(var) - PLAIN_TEXTURE) / (BUSY_TEXTURE - PLAIN_TEXTURE),
                   0.0, 1.0).astype(np.float32)


def _half_size(shape: tuple[int, ...]) -> tuple[int, int]:
    height, width = shape[:2]
    return max(1, width // 2), max(1, height // 2)


def _local_means(image: np.ndarray, weight: np.ndarray, ys: np.ndarray, xs: np.ndarray,
                 small: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted local mean colour at pixels ``(ys, xs)`` (N x 3), and the share of its
    window the weight covers (N; 0 where no weighted pixel is near).

    Smooth, so computed at half size (``small``: ``image`` at half size, if made already)
    and read back only where asked: weighted sums and weights bilinearly, at the
    positions ``cv2.resize`` would use, then divided, so that a colour is never mixed
    with the zero of an empty window.
    """
    height, width = weight.shape
    half = _half_size(weight.shape)
    if small is None:
        small = cv2.resize(image, half, interpolation=cv2.INTER_AREA)
    small_w = cv2.resize(weight, half, interpolation=cv2.INTER_AREA)
    radius = max(2, round(max(half) / 100))
    sums = np.dstack([_box(small * small_w[..., None], radius), _box(small_w, radius)])
    sampled = _sample(sums, (ys + 0.5) * (half[1] / height) - 0.5,
                      (xs + 0.5) * (half[0] / width) - 0.5)
    cover = sampled[:, 3]
    return sampled[:, :3] / (cover[:, None] + np.float32(1e-4)), cover


def _sample(image: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``image`` (H x W x C, C <= 4) bilinearly at fractional positions (N x C)."""
    count, side = len(ys), 1024  # remap's maps must stay under 32767 on each side
    rows = max(1, -(-count // side))
    map_x = np.zeros(rows * side, np.float32)
    map_y = np.zeros(rows * side, np.float32)
    map_x[:count], map_y[:count] = xs, ys
    out = cv2.remap(image, map_x.reshape(rows, side), map_y.reshape(rows, side),
                    cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(rows * side, -1)[:count]


def _without_islands(alpha: np.ndarray) -> np.ndarray:
    """Drop faint alpha and pieces away from the product (tile grout, remnants on the fill).

    The product is its largest solid piece and any other of at least a tenth of it (a
    pair of shoes); alpha survives only near them.
    """
    height, width = alpha.shape
    solid = (alpha > 0.5).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(solid, connectivity=8)
    if count <= 1:
        return alpha
    areas = stats[1:, cv2.CC_STAT_AREA]
    floor = max(0.002 * height * width, 0.1 * float(areas.max()))
    keep = [i + 1 for i, area in enumerate(areas) if area >= floor]
    product = np.isin(labels, keep).astype(np.uint8)
    radius = max(2, round(max(height, width) / 200))
    near = cv2.dilate(product, cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                         (2 * radius + 1, 2 * radius + 1)))
    alpha = np.where(near > 0, alpha, np.float32(0.0))
    alpha[alpha < 0.08] = 0.0
    return alpha


def spill_rim(shape: tuple[int, ...]) -> int:
    """Depth (px) of the product's rim that may carry the backdrop's colour: JPEG's
    half-resolution chroma and the outline's own blur, which grow with the photo."""
    return max(3, round(max(shape[:2]) / 200))


def remove_spill(image: np.ndarray, alpha: np.ndarray, in_place: bool = False
                 ) -> np.ndarray:
    """``image`` (float32 BGR) with the backdrop's colour taken out of the product's rim.

    A grey garment on a red sheet has a pink rim a few pixels deep even where the matte is
    solid: the camera's and JPEG's colour resolution is coarser than the outline. On a
    white fill that rim shows. Rim pixels whose colour leans from the product's (the
    local colour deeper inside) towards the backdrop's lose that lean, in chroma only:
    brightness, texture and the product's own colour stay. Where product and backdrop
    are alike in colour (a red garment on red) nothing can be told apart and nothing
    changes; below the rim the correction fades out.
    """
    solid = (alpha > 0.5).astype(np.uint8)
    if not solid.any() or solid.all():
        return image
    rim = spill_rim(alpha.shape)
    reach = 1.5 * rim  # full correction over the rim, fading out over half as much again
    depth = cv2.distanceTransform(solid, cv2.DIST_L2, 3)
    zone = (alpha > 0.02) & (depth <= reach)
    if not zone.any():
        return image
    ys, xs = np.nonzero(zone)
    deep = (depth > reach).astype(np.float32)
    small = cv2.resize(image, _half_size(image.shape), interpolation=cv2.INTER_AREA)
    product, cover = _local_means(image, deep, ys, xs, small)
    backdrop, _ = _local_means(image, (1.0 - alpha) ** 2, ys, xs, small)
    pixel = image[ys, xs]

    def chroma(colour: np.ndarray) -> np.ndarray:
        return colour - colour.mean(axis=1, keepdims=True)

    lean = chroma(backdrop) - chroma(product)
    power = np.einsum("ij,ij->i", lean, lean)
    toward = np.einsum("ij,ij->i", chroma(pixel) - chroma(product), lean) / (power + 1e-3)
    # Trusted as far as the two colours differ in chroma (12..36 levels); the product's
    # colour is only known where some of it lies deeper than the rim nearby.
    trust = np.clip((np.sqrt(power) - 12.0) / 24.0, 0.0, 1.0) * (cover > 0.05)
    fade = np.clip((reach - depth[ys, xs]) / (reach - rim), 0.0, 1.0)
    amount = np.clip(toward, 0.0, 1.0) * trust * fade
    out = image if in_place else image.copy()
    out[ys, xs] = np.clip(pixel - amount[:, None] * lean, 0.0, 255.0)
    return out


def composite(bgr: np.ndarray, alpha: np.ndarray, fill_bgr: tuple[int, int, int]
              ) -> np.ndarray:
    """``bgr`` over a plain ``fill_bgr`` through ``alpha`` (image size, 0..1), no fringe.

    Edge pixels are a mix ``I = a F + (1 - a) B`` of product and old backdrop. Their
    product colour F is estimated by blur-fusion (Forte and Pitie, 2020): the local
    product colour, corrected by what the pixel says in proportion to ``a``. Solving for
    F by dividing by ``a`` instead overshoots wherever ``a`` is a little too high and
    paints the backdrop's complementary colour as a rim (cyan beside a red rug). Soft
    pixels (``a`` < 0.5) whose colour is the backdrop's become transparent: a halo of a
    saturated sheet. Solid ones never do: a white stripe at a black sleeve's edge on a
    white floor has the backdrop's colour too.
    """
    image = remove_spill(bgr.astype(np.float32), alpha, in_place=True)
    fill = np.asarray(fill_bgr, np.float32)
    a = alpha[..., None]
    out = image * a + fill * (1.0 - a)
    band = ((alpha > 0.02) & (alpha < 0.98)).astype(np.uint8)
    # Solid pixels next to the band too: the outline may sit a pixel outside the product.
    edge = (cv2.dilate(band, np.ones((5, 5), np.uint8)) > 0) & (alpha > 0.02)
    if band.any():
        ys, xs = np.nonzero(edge)
        a_edge = a[ys, xs]
        small = cv2.resize(image, _half_size(image.shape), interpolation=cv2.INTER_AREA)
        product, _ = _local_means(image, alpha * alpha, ys, xs, small)
        backdrop, _ = _local_means(image, (1.0 - alpha) ** 2, ys, xs, small)
        pixel = image[ys, xs]
        residual = pixel - a_edge * product - (1.0 - a_edge) * backdrop
        colour = np.clip(product + a_edge * residual, 0.0, 255.0)
        # How backdrop-like the pixel is, trusted as far as the two colours differ
        # (10..40 levels).
        difference = product - backdrop
        power = np.einsum("ij,ij->i", difference, difference)
        share = np.einsum("ij,ij->i", pixel - backdrop, difference) / (power + 1e-3)
        trust = np.clip((np.sqrt(power) - 10.0) / 30.0, 0.0, 1.0)
        like = (trust * np.clip((0.5 - share) / 0.5, 0.0, 1.0))[:, None]
        soft = a_edge < 0.5
        a_edge = np.where(soft, a_edge * (1.0 - like), a_edge).astype(np.float32)
        out[ys, xs] = colour * a_edge + fill * (1.0 - a_edge)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
