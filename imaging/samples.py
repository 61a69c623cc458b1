"""Synthetic marketplace product photos with known defects.

Why this exists: demos, smoke tests and benchmarks need photo-like inputs whose quality problems
(blur, underexposure, sensor noise, clutter, low resolution) are known in advance, without
shipping binary fixtures or fetching anything. Every pixel is drawn here with OpenCV primitives,
and everything is a pure function of the seed, so the same seed gives byte-identical files.

Vocabulary of ``SampleImage.traits``:

- ``plain`` / ``cluttered``: studio background versus a busy table, wall or desk.
- ``sharp`` / ``blurred``: in focus versus Gaussian-blurred (``sharp`` means "not blurred").
- ``bright`` / ``dark``: high-key well exposed studio shot versus underexposed.
- ``noisy``: visible sensor noise was added.
- ``small``: downscaled so the short side is below 500 px.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
Color = tuple[float, float, float]
Albedo = Color | Callable[[int, int, int, int], F32]

TRAITS: tuple[str, ...] = (
    "plain",
    "cluttered",
    "blurred",
    "dark",
    "noisy",
    "small",
    "sharp",
    "bright",
)
PRODUCTS: tuple[str, ...] = ("mug", "bottle", "sneaker", "box", "tshirt", "lamp")
PLAIN_BACKGROUNDS: tuple[str, ...] = ("white", "grey", "sweep")
CLUTTERED_BACKGROUNDS: tuple[str, ...] = ("wood", "desk")
BACKGROUNDS: tuple[str, ...] = PLAIN_BACKGROUNDS + CLUTTERED_BACKGROUNDS

_FLAT_LAY = frozenset({"tshirt"})
_EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp"}
_SIZES: tuple[tuple[int, int], ...] = (
    (800, 800),
    (900, 900),
    (1000, 1000),
    (1000, 800),
    (1200, 1000),
    (1100, 900),
    (960, 960),
    (1000, 900),
)


@dataclass(frozen=True)
class SampleImage:
    """One encoded sample photo plus the ground truth a quality assessor should find."""

    name: str
    data: bytes
    description: str
    traits: tuple[str, ...]


@dataclass(frozen=True)
class SampleSpec:
    """Everything needed to re-render a sample, so tests can compare it with its clean twin."""

    name: str
    product: str
    background: str
    width: int
    height: int
    traits: tuple[str, ...]
    fmt: str
    quality: int
    blur_sigma: float
    exposure: float
    noise_sigma: float
    short_side: int
    seed: tuple[int, ...]


@dataclass(frozen=True)
class _Recipe:
    stem: str
    product: str
    background: str
    defects: tuple[str, ...]
    fmt: str


_RECIPES: tuple[_Recipe, ...] = (
    _Recipe("mug-plain-sharp", "mug", "white", (), "jpeg"),
    _Recipe("sneaker-studio-sharp", "sneaker", "sweep", (), "jpeg"),
    _Recipe("bottle-grey-sharp", "bottle", "grey", (), "png"),
    _Recipe("box-wood-cluttered", "box", "wood", (), "jpeg"),
    _Recipe("lamp-desk-cluttered", "lamp", "desk", (), "jpeg"),
    _Recipe("tshirt-cluttered-blurred", "tshirt", "wood", ("blurred",), "jpeg"),
    _Recipe("bottle-plain-blurred", "bottle", "white", ("blurred",), "jpeg"),
    _Recipe("sneaker-plain-dark", "sneaker", "grey", ("dark",), "jpeg"),
    _Recipe("mug-cluttered-dark-noisy", "mug", "desk", ("dark", "noisy"), "jpeg"),
    _Recipe("lamp-plain-noisy", "lamp", "sweep", ("noisy",), "webp"),
    _Recipe("box-plain-small", "box", "white", ("small",), "jpeg"),
    _Recipe("tshirt-plain-small-noisy", "tshirt", "grey", ("small", "noisy"), "jpeg"),
)


# --------------------------------------------------------------------------- public API


def generate_sample_batch(seed: int = 7, count: int = 12) -> list[SampleImage]:
    """Render and encode a batch; the first 12 cover every trait, larger counts cycle."""
    return [_encode_sample(spec) for spec in plan_sample_batch(seed, count)]


def plan_sample_batch(seed: int = 7, count: int = 12) -> list[SampleSpec]:
    """Decide names, sizes and defect strengths up front so a sample can be re-rendered alone."""
    if seed < 0:
        raise ValueError("seed must be non-negative")
    if count < 0:
        raise ValueError("count must be non-negative")
    specs = []
    for index in range(count):
        recipe = _RECIPES[index % len(_RECIPES)]
        cycle = index // len(_RECIPES)
        rng = np.random.default_rng((seed, index, 0))
        width, height = _SIZES[int(rng.integers(len(_SIZES)))]
        defects = recipe.defects
        stem = recipe.stem if cycle == 0 else f"{recipe.stem}-{cycle + 1}"
        specs.append(
            SampleSpec(
                name=f"{stem}.{_EXTENSIONS[recipe.fmt]}",
                product=recipe.product,
                background=recipe.background,
                width=width,
                height=height,
                traits=_traits_for(recipe.background, defects),
                fmt=recipe.fmt,
                quality=int(rng.integers(90, 96)),
                blur_sigma=float(rng.uniform(3.0, 4.5)) if "blurred" in defects else 0.0,
                exposure=float(rng.uniform(0.22, 0.28)) if "dark" in defects else 1.0,
                noise_sigma=_noise_sigma(rng, defects),
                short_side=int(rng.integers(320, 441)) if "small" in defects else 0,
                seed=(seed, index),
            )
        )
    return specs


def render_sample(spec: SampleSpec, *, skip: Collection[str] = ()) -> U8:
    """Render a planned sample, leaving out the defects named in ``skip`` (e.g. ``{"noisy"}``).

    Geometry (``small``) is applied first and the sensor effects last, mimicking a camera.
    """
    scene = render_product_scene(
        np.random.default_rng((*spec.seed, 1)),
        product=spec.product,
        background=spec.background,
        width=spec.width,
        height=spec.height,
    )
    if "small" in spec.traits and "small" not in skip:
        scene = downscale(scene, spec.short_side)
    if "blurred" in spec.traits and "blurred" not in skip:
        scene = blur(scene, spec.blur_sigma)
    if "dark" in spec.traits and "dark" not in skip:
        scene = darken(scene, spec.exposure)
    if "noisy" in spec.traits and "noisy" not in skip:
        scene = add_noise(scene, np.random.default_rng((*spec.seed, 2)), spec.noise_sigma)
    return scene


def describe(spec: SampleSpec) -> str:
    """Human one-liner used as ``SampleImage.description``."""
    place = {
        "white": "a plain white background",
        "grey": "a plain light grey background",
        "sweep": "a soft gradient studio sweep",
        "wood": "a cluttered wooden table",
        "desk": "a cluttered office desk",
    }[spec.background]
    noun = {"tshirt": "t-shirt flat lay", "box": "shipping box"}.get(spec.product, spec.product)
    parts = []
    if "blurred" in spec.traits:
        parts.append(f"blurred (Gaussian sigma {spec.blur_sigma:.1f})")
    else:
        parts.append("sharp")
    if "bright" in spec.traits:
        parts.append("bright")
    if "dark" in spec.traits:
        parts.append(f"dark (exposure x{spec.exposure:.2f})")
    if "noisy" in spec.traits:
        parts.append(f"noisy (sigma {spec.noise_sigma:.0f})")
    if "small" in spec.traits:
        parts.append(f"small (short side {spec.short_side} px)")
    return f"{noun} on {place}, " + ", ".join(parts)


def render_product_scene(
    rng: np.random.Generator, *, product: str, background: str, width: int, height: int
) -> U8:
    """Draw one clean product photo (BGR uint8): background, soft shadow, shaded product."""
    return render_product_scene_with_mask(rng, product=product, background=background,
                                          width=width, height=height)[0]


def render_product_scene_with_mask(
    rng: np.random.Generator, *, product: str, background: str, width: int, height: int
) -> tuple[U8, F32]:
    """:func:`render_product_scene` and the product's true alpha (0..1, the ground truth
    segmentation benchmarks score masks against)."""
    if product not in PRODUCTS:
        raise ValueError(f"unknown product {product!r}; expected one of {PRODUCTS}")
    if background not in BACKGROUNDS:
        raise ValueError(f"unknown background {background!r}; expected one of {BACKGROUNDS}")
    if width < 64 or height < 64:
        raise ValueError("scene must be at least 64x64")
    flat = product in _FLAT_LAY
    short = min(width, height)
    if flat:
        size = short * float(rng.uniform(0.74, 0.8))
        base_y = height * 0.5 + float(rng.uniform(-0.02, 0.02)) * height
    else:
        size = short * float(rng.uniform(0.62, 0.7))
        base_y = height * float(rng.uniform(0.83, 0.87))
    cx = width * 0.5 + float(rng.uniform(-0.035, 0.035)) * width
    horizon = None if flat else height * float(rng.uniform(0.42, 0.5))
    bg = _render_background(rng, background, width, height, horizon, cx)
    item = _PRODUCT_PAINTERS[product](rng, width, height, cx, base_y, size)
    shadow = _shadow_map(item, width, height, soft=background in PLAIN_BACKGROUNDS)
    strength = 0.55 if background == "white" else 0.62
    bg *= (1.0 - strength * shadow)[..., None]
    out = item.layer.rgb + bg * (1.0 - item.layer.alpha)[..., None]
    if background != "white":
        out *= _vignette(width, height, 0.18)[..., None]
    out += rng.standard_normal((height, width, 1), dtype=np.float32) * 1.2
    return np.clip(out, 0, 255).astype(np.uint8), item.layer.alpha.astype(np.float32)


def blur(image: U8, sigma: float = 3.5) -> U8:
    """Gaussian defocus, the most common reason a listing photo gets rejected."""
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma)


def darken(image: U8, exposure: float = 0.25, gamma: float = 1.25) -> U8:
    """Underexposure: scale linear light and crush shadows a little, as a cheap sensor would."""
    levels = np.arange(256, dtype=np.float32) / 255.0
    lut = np.clip(255.0 * exposure * levels**gamma + 0.5, 0, 255).astype(np.uint8)
    return cv2.LUT(image, lut)


def add_noise(image: U8, rng: np.random.Generator, sigma: float = 12.0) -> U8:
    """Sensor noise: mostly luminance with some chroma speckle, like a phone at high ISO."""
    h, w = image.shape[:2]
    luma = rng.standard_normal((h, w, 1), dtype=np.float32) * sigma
    chroma = rng.standard_normal((h, w, 3), dtype=np.float32) * (sigma * 0.45)
    noisy = image.astype(np.float32) + luma + chroma
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


def downscale(image: U8, short_side: int = 400) -> U8:
    """Shrink so the short side equals ``short_side``; area filter, as upload pipelines do."""
    h, w = image.shape[:2]
    scale = short_side / min(h, w)
    if scale >= 1.0:
        return image.copy()
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------- batch helpers


def _traits_for(background: str, defects: Sequence[str]) -> tuple[str, ...]:
    traits = {"plain" if background in PLAIN_BACKGROUNDS else "cluttered", *defects}
    if "blurred" not in traits:
        traits.add("sharp")
    if background in ("white", "sweep") and "dark" not in traits:
        traits.add("bright")
    return tuple(t for t in TRAITS if t in traits)


def _noise_sigma(rng: np.random.Generator, defects: Sequence[str]) -> float:
    if "noisy" not in defects:
        return 0.0
    if "dark" in defects:
        return float(rng.uniform(7.0, 9.0))
    return float(rng.uniform(12.0, 16.0))


def _encode_sample(spec: SampleSpec) -> SampleImage:
    pixels = render_sample(spec)
    picture = Image.fromarray(np.ascontiguousarray(pixels[:, :, ::-1]))
    buffer = io.BytesIO()
    if spec.fmt == "jpeg":
        picture.save(buffer, format="JPEG", quality=spec.quality)
    elif spec.fmt == "png":
        picture.save(buffer, format="PNG", compress_level=3)
    else:
        picture.save(buffer, format="WEBP", quality=spec.quality, method=3)
    return SampleImage(
        name=spec.name, data=buffer.getvalue(), description=describe(spec), traits=spec.traits
    )


# --------------------------------------------------------------------------- geometry


def _unit(x: float, y: float, z: float) -> tuple[float, float, float]:
    n = math.sqrt(x * x + y * y + z * z)
    return (x / n, y / n, z / n)


_KEY = _unit(-0.5, -0.65, 0.7)
_FILL = _unit(0.75, -0.25, 0.55)
_HALF_KEY = _unit(_KEY[0], _KEY[1], _KEY[2] + 1.0)
_HALF_FILL = _unit(_FILL[0], _FILL[1], _FILL[2] + 1.0)


@dataclass(frozen=True)
class _Material:
    ambient: float = 0.3
    diffuse: float = 0.72
    fill: float = 0.22
    specular: float = 0.25
    shininess: float = 30.0


_MATTE = _Material(specular=0.03, shininess=6.0)
_SATIN = _Material(specular=0.18, shininess=18.0)
_GLOSSY = _Material(specular=0.6, shininess=70.0)
_GLASS = _Material(ambient=0.45, diffuse=0.5, fill=0.3, specular=0.95, shininess=110.0)
_METAL = _Material(ambient=0.25, diffuse=0.45, fill=0.35, specular=0.9, shininess=60.0)


def _ellipse(
    cx: float,
    cy: float,
    ax: float,
    ay: float,
    a0: float = 0.0,
    a1: float = 2 * math.pi,
    n: int = 72,
) -> F32:
    t = np.linspace(a0, a1, n, dtype=np.float32)
    return np.stack([cx + ax * np.cos(t), cy + ay * np.sin(t)], axis=1)


def _chaikin(points: F32 | npt.ArrayLike, iterations: int = 3) -> F32:
    """Corner cutting turns a handful of control points into a smooth, organic outline."""
    pts = np.asarray(points, dtype=np.float32)
    for _ in range(iterations):
        nxt = np.roll(pts, -1, axis=0)
        out = np.empty((pts.shape[0] * 2, 2), dtype=np.float32)
        out[0::2] = 0.75 * pts + 0.25 * nxt
        out[1::2] = 0.25 * pts + 0.75 * nxt
        pts = out
    return pts


def _fixed(points: F32) -> npt.NDArray[np.int32]:
    return np.round(np.asarray(points) * 16.0).astype(np.int32)


def _cv_color(color: float | Color) -> float | tuple[float, ...]:
    return float(color) if np.isscalar(color) else tuple(float(c) for c in color)  # type: ignore[union-attr]


def _fill(img: U8, polys: Sequence[F32], color: float | Color) -> None:
    """Anti-aliased sub-pixel fill, one polygon at a time so overlaps stay filled."""
    for p in polys:
        cv2.fillPoly(img, [_fixed(p)], _cv_color(color), cv2.LINE_AA, shift=4)


def _polyline(
    img: U8, pts: F32, color: float | Color, thickness: int, closed: bool = False
) -> None:
    cv2.polylines(
        img, [_fixed(pts)], closed, _cv_color(color), max(1, thickness), cv2.LINE_AA, shift=4
    )


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> F32:
    """Cheap value noise: a tiny random grid upsampled with cubic interpolation."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    grid = rng.standard_normal((gh, gw), dtype=np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def _vignette(w: int, h: int, amount: float) -> F32:
    y = (np.arange(h, dtype=np.float32) - h / 2) / (h / 2)
    x = (np.arange(w, dtype=np.float32) - w / 2) / (w / 2)
    r2 = y[:, None] ** 2 * 0.8 + x[None, :] ** 2 * 0.8
    return (1.0 - amount * np.clip(r2, 0, 1.6) / 1.6).astype(np.float32)


# --------------------------------------------------------------------------- shading


class _Layer:
    """Premultiplied colour + alpha canvas so product parts stack in painter's order."""

    def __init__(self, height: int, width: int) -> None:
        self.rgb = np.zeros((height, width, 3), dtype=np.float32)
        self.alpha = np.zeros((height, width), dtype=np.float32)

    def box(self, polys: Sequence[F32], pad: int = 4) -> tuple[int, int, int, int]:
        allpts = np.concatenate([np.asarray(p, dtype=np.float32) for p in polys])
        h, w = self.alpha.shape
        x0 = max(0, int(allpts[:, 0].min()) - pad)
        y0 = max(0, int(allpts[:, 1].min()) - pad)
        x1 = min(w, int(allpts[:, 0].max()) + pad + 1)
        y1 = min(h, int(allpts[:, 1].max()) + pad + 1)
        return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)

    def mask(self, polys: Sequence[F32], box: tuple[int, int, int, int]) -> U8:
        x0, y0, x1, y1 = box
        m = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
        _fill(m, [np.asarray(p, dtype=np.float32) - (x0, y0) for p in polys], 255)
        return m

    def paint(self, box: tuple[int, int, int, int], mask: U8, color: F32) -> None:
        x0, y0, x1, y1 = box
        a = mask.astype(np.float32) * (1.0 / 255.0)
        region = (slice(y0, y1), slice(x0, x1))
        self.rgb[region] = color * a[..., None] + self.rgb[region] * (1.0 - a[..., None])
        self.alpha[region] = a + self.alpha[region] * (1.0 - a)


def _albedo(albedo: Albedo, box: tuple[int, int, int, int]) -> F32:
    x0, y0, x1, y1 = box
    if callable(albedo):
        return albedo(x0, y0, y1 - y0, x1 - x0)
    return np.asarray(albedo, dtype=np.float32).reshape(1, 1, 3)


def _shade(height: F32, albedo: F32, mat: _Material) -> F32:
    """Blinn-Phong with a key and a fill light; the height field supplies the normals."""
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3) * 0.125
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3) * 0.125
    nz = 1.0 / np.sqrt(gx * gx + gy * gy + 1.0)
    nx = -gx * nz
    ny = -gy * nz
    key = np.maximum(nx * _KEY[0] + ny * _KEY[1] + nz * _KEY[2], 0.0)
    fill = np.maximum(nx * _FILL[0] + ny * _FILL[1] + nz * _FILL[2], 0.0)
    light = mat.ambient + mat.diffuse * key + mat.fill * fill
    hk = np.maximum(nx * _HALF_KEY[0] + ny * _HALF_KEY[1] + nz * _HALF_KEY[2], 0.0)
    hf = np.maximum(nx * _HALF_FILL[0] + ny * _HALF_FILL[1] + nz * _HALF_FILL[2], 0.0)
    spec = (hk**mat.shininess + 0.45 * hf**mat.shininess) * (255.0 * mat.specular)
    return albedo * light[..., None] + spec[..., None]


def _bevel(mask: U8, radius: float) -> F32:
    """Height field with rounded (quarter-circle) edges: makes flat shapes read as objects."""
    d = cv2.distanceTransform((mask >= 128).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    t = np.minimum(d / max(radius, 1e-3), 1.0)
    height = (radius * np.sqrt(t * (2.0 - t))).astype(np.float32)
    return cv2.GaussianBlur(height, (0, 0), 1.2)


def _bevel_part(
    layer: _Layer,
    polys: Sequence[F32],
    albedo: Albedo,
    mat: _Material,
    radius: float,
    bumps: F32 | None = None,
) -> None:
    box = layer.box(polys)
    m = layer.mask(polys, box)
    height = _bevel(m, radius)
    if bumps is not None:
        x0, y0, x1, y1 = box
        height = height + bumps[y0:y1, x0:x1] * np.minimum(height / max(radius, 1e-3), 1.0)
    layer.paint(box, m, _shade(height, _albedo(albedo, box), mat))


def _lathe(
    layer: _Layer,
    cx: float,
    ys: Sequence[float],
    rs: Sequence[float],
    albedo: Albedo,
    mat: _Material,
    *,
    top_tilt: float = 0.0,
    bottom_tilt: float = 0.0,
) -> None:
    """Surface of revolution seen from the front: mugs, bottles and lamp parts in one go."""
    y = np.asarray(ys, dtype=np.float32)
    r = np.asarray(rs, dtype=np.float32)
    outline = np.concatenate(
        [np.stack([cx - r, y], axis=1), np.stack([cx + r, y], axis=1)[::-1]]
    ).astype(np.float32)
    polys = [outline]
    if top_tilt > 0:
        polys.append(_ellipse(cx, float(y[0]), float(r[0]), float(r[0]) * top_tilt))
    if bottom_tilt > 0:
        polys.append(_ellipse(cx, float(y[-1]), float(r[-1]), float(r[-1]) * bottom_tilt))
    box = layer.box(polys)
    x0, y0, x1, y1 = box
    m = layer.mask(polys, box)
    rows = np.interp(np.arange(y0, y1, dtype=np.float32), y, r).astype(np.float32)
    dx = np.arange(x0, x1, dtype=np.float32) - cx
    height = np.sqrt(np.maximum(rows[:, None] ** 2 - dx[None, :] ** 2, 0.0))
    layer.paint(box, m, _shade(height.astype(np.float32), _albedo(albedo, box), mat))


def _flat_part(layer: _Layer, polys: Sequence[F32], albedo: Albedo, shade: float) -> None:
    box = layer.box(polys)
    m = layer.mask(polys, box)
    layer.paint(box, m, _albedo(albedo, box) * np.float32(shade))


def _printed(
    base: Color, draw: Callable[[U8, int, int], None]
) -> Callable[[int, int, int, int], F32]:
    """Albedo with printed graphics; ``draw`` gets an 8-bit canvas and its scene offset."""

    def make(x0: int, y0: int, h: int, w: int) -> F32:
        canvas = np.empty((h, w, 3), dtype=np.uint8)
        canvas[:] = np.clip(np.asarray(base), 0, 255).astype(np.uint8)
        draw(canvas, x0, y0)
        return canvas.astype(np.float32)

    return make


def _text_centered(
    img: U8, text: str, cx: float, cy: float, width: float, color: Color, bold: bool = True
) -> None:
    """Fit text to ``width`` px so labels scale with the product."""
    font = cv2.FONT_HERSHEY_DUPLEX if bold else cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), _ = cv2.getTextSize(text, font, 1.0, 2)
    scale = max(0.2, width / max(tw, 1))
    thickness = max(1, round(scale * (2.2 if bold else 1.3)))
    (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
    org = (round(cx - tw / 2), round(cy + th / 2))
    cv2.putText(img, text, org, font, scale, color, thickness, cv2.LINE_AA)


def _pick(rng: np.random.Generator, options: Sequence[Color]) -> Color:
    return options[int(rng.integers(len(options)))]


def _scaled(color: Color, k: float) -> Color:
    return (color[0] * k, color[1] * k, color[2] * k)


# --------------------------------------------------------------------------- products


@dataclass
class _Product:
    layer: _Layer
    base_y: float
    base_x0: float
    base_x1: float
    flat: bool = False


_BRANDS = ("NORD", "LUMA", "KIVO", "ORBIT", "TERRA", "FJELL", "SOLA", "BRISK", "ALTO", "MIRA")


def _mug(rng: np.random.Generator, w: int, h: int, cx: float, base: float, size: float) -> _Product:
    layer = _Layer(h, w)
    color = _pick(
        rng,
        [
            (236, 238, 240),
            (48, 52, 170),
            (110, 70, 35),
            (120, 150, 120),
            (40, 150, 205),
            (45, 45, 48),
        ],
    )
    r = 0.27 * size
    tilt = 0.17
    body_h = 0.74 * size
    yb = base - r * tilt
    yt = yb - body_h
    hcx, hcy = cx + r * 0.98, yt + body_h * 0.45
    ring = _ellipse(hcx, hcy, r * 0.42, body_h * 0.3)
    inner = _ellipse(hcx, hcy, r * 0.26, body_h * 0.19)[::-1]
    box = layer.box([ring])
    handle = layer.mask([ring], box)
    hole = layer.mask([inner], box)
    handle = cv2.subtract(handle, hole)
    layer.paint(box, handle, _shade(_bevel(handle, r * 0.09), _albedo(color, box), _GLOSSY))
    light_mug = sum(color) > 500
    ink = _pick(rng, [(40, 40, 40), (150, 90, 30), (50, 60, 180)]) if light_mug else (235, 235, 235)
    word = _BRANDS[int(rng.integers(len(_BRANDS)))]

    def decal(img: U8, x0: int, y0: int) -> None:
        my = yt + body_h * 0.5 - y0
        mx = cx - r * 0.1 - x0
        cv2.circle(img, (round(mx), round(my - r * 0.28)), round(r * 0.16), ink, -1, cv2.LINE_AA)
        _text_centered(img, word, mx, my + r * 0.12, r * 0.9, ink)

    _lathe(
        layer,
        cx,
        [yt, yb],
        [r, r],
        _printed(color, decal),
        _GLOSSY,
        top_tilt=tilt,
        bottom_tilt=tilt,
    )
    rim = r * 0.9
    opening = [_ellipse(cx, yt, rim, rim * tilt)]

    def interior(x0: int, y0: int, hh: int, ww: int) -> F32:
        xs = (np.arange(x0, x0 + ww, dtype=np.float32) - cx) / rim
        ys = (np.arange(y0, y0 + hh, dtype=np.float32) - (yt - rim * tilt)) / (2 * rim * tilt)
        k = (0.5 + 0.22 * xs[None, :]) * (1.0 - 0.35 * np.clip(ys[:, None], 0, 1))
        return np.asarray(color, np.float32)[None, None, :] * k[..., None]

    _flat_part(layer, opening, interior, 1.0)
    return _Product(layer, base, cx - r * 1.05, cx + r * 1.35)


def _bottle(
    rng: np.random.Generator, w: int, h: int, cx: float, base: float, size: float
) -> _Product:
    layer = _Layer(h, w)
    total = 1.02 * size
    r = 0.165 * size * float(rng.uniform(0.92, 1.08))
    neck = r * 0.36
    glass = _pick(rng, [(45, 105, 35), (25, 75, 140), (120, 55, 20), (70, 80, 75)])
    cap_color = _pick(rng, [(30, 30, 30), (40, 120, 200), (200, 200, 205), (35, 35, 150)])
    label_color = _pick(rng, [(225, 238, 244), (30, 30, 32), (200, 225, 235)])
    ink = (30, 30, 30) if sum(label_color) > 400 else (210, 225, 235)
    accent = _pick(rng, [(40, 60, 190), (60, 150, 40), (160, 100, 30), (30, 170, 220)])
    body_top = base - total * 0.6
    shoulder_top = base - total * 0.8
    neck_top = base - total * 0.94
    cap_top = base - total
    t = np.linspace(0.0, 1.0, 24, dtype=np.float32)
    ease = 0.5 - 0.5 * np.cos(np.pi * t)
    ys = np.concatenate(
        [
            [neck_top, shoulder_top],
            shoulder_top + (body_top - shoulder_top) * t[1:],
            [base - r * 0.12, base - r * 0.04, base],
        ]
    )
    rs = np.concatenate([[neck, neck], neck + (r - neck) * ease[1:], [r, r * 0.97, r * 0.9]])
    _lathe(layer, cx, ys, rs, glass, _GLASS)
    rib = cap_top + (neck_top + r * 0.12 - cap_top) * np.linspace(0, 1, 2)
    _lathe(layer, cx, rib, [neck * 1.18, neck * 1.18], cap_color, _SATIN)
    ring_y = neck_top + r * 0.12
    _lathe(layer, cx, [ring_y, ring_y + r * 0.1], [neck * 1.05, neck * 1.05], glass, _GLASS)
    word = _BRANDS[int(rng.integers(len(_BRANDS)))]
    l0, l1 = base - total * 0.5, base - total * 0.16

    def label(img: U8, x0: int, y0: int) -> None:
        lx, ly = cx - x0, l0 - y0
        lh = l1 - l0
        cv2.rectangle(
            img,
            (round(lx - r * 1.2), round(ly + lh * 0.08)),
            (round(lx + r * 1.2), round(ly + lh * 0.16)),
            accent,
            -1,
            cv2.LINE_AA,
        )
        _text_centered(img, word, lx, ly + lh * 0.42, r * 1.05, ink)
        _text_centered(img, "sparkling  75 cl", lx, ly + lh * 0.66, r * 0.9, ink, bold=False)
        cv2.rectangle(
            img,
            (round(lx - r * 1.2), round(ly + lh * 0.86)),
            (round(lx + r * 1.2), round(ly + lh * 0.9)),
            accent,
            -1,
            cv2.LINE_AA,
        )

    _lathe(layer, cx, [l0, l1], [r * 1.01, r * 1.01], _printed(label_color, label), _SATIN)
    return _Product(layer, base, cx - r, cx + r)


def _sneaker(
    rng: np.random.Generator, w: int, h: int, cx: float, base: float, size: float
) -> _Product:
    layer = _Layer(h, w)
    length = min(size * 1.3, w * 0.82)
    tall = length * 0.44
    left = cx - length / 2
    top = base - tall
    facing = 1.0 if rng.random() < 0.5 else -1.0

    def to_scene(pts: Sequence[tuple[float, float]]) -> F32:
        a = np.asarray(pts, dtype=np.float32)
        u = a[:, 0] if facing > 0 else 1.0 - a[:, 0]
        return np.stack([left + u * length, top + a[:, 1] * tall], axis=1).astype(np.float32)

    upper_color = _pick(
        rng,
        [
            (40, 40, 180),
            (90, 50, 25),
            (35, 35, 38),
            (150, 150, 150),
            (60, 110, 80),
            (225, 225, 228),
        ],
    )
    accent = _pick(rng, [(235, 235, 235), (30, 140, 230), (30, 30, 30), (200, 160, 40)])
    if abs(sum(accent) - sum(upper_color)) < 150:
        accent = (40, 40, 180) if sum(upper_color) > 400 else (235, 235, 235)
    sole_color = (232, 234, 236)
    outsole = _pick(rng, [(60, 95, 140), (40, 40, 42), (170, 172, 175)])
    lining = _scaled(upper_color, 0.3)
    stitch = _scaled(upper_color, 0.7) if sum(upper_color) > 300 else (150, 150, 150)

    def stitched(color: Color, paths: Sequence[F32]) -> Callable[[int, int, int, int], F32]:
        def draw(img: U8, x0: int, y0: int) -> None:
            dash = max(3.0, length / 120)
            for path in paths:
                seg = np.diff(path, axis=0)
                lengths = np.hypot(seg[:, 0], seg[:, 1])
                along = np.concatenate([[0.0], np.cumsum(lengths)])
                marks = np.arange(0.0, along[-1], dash * 2)
                xs = np.interp(marks, along, path[:, 0]) - x0
                ys = np.interp(marks, along, path[:, 1]) - y0
                xe = np.interp(marks + dash, along, path[:, 0]) - x0
                ye = np.interp(marks + dash, along, path[:, 1]) - y0
                for p0, p1, q0, q1 in zip(xs, ys, xe, ye, strict=True):
                    cv2.line(
                        img, (round(p0), round(p1)), (round(q0), round(q1)), stitch, 1, cv2.LINE_AA
                    )

        return _printed(color, draw)

    upper = _chaikin(
        to_scene(
            [
                (0.03, 0.8),
                (0.0, 0.5),
                (0.02, 0.2),
                (0.06, 0.08),
                (0.14, 0.1),
                (0.24, 0.2),
                (0.3, 0.16),
                (0.33, 0.0),
                (0.43, 0.02),
                (0.48, 0.18),
                (0.62, 0.32),
                (0.8, 0.43),
                (0.93, 0.5),
                (1.0, 0.62),
                (1.0, 0.8),
                (0.5, 0.82),
            ]
        ),
        3,
    )
    creases = _smooth_noise(rng, h, w, tall * 0.3) * (tall * 0.004)
    _bevel_part(layer, [upper], upper_color, _SATIN, tall * 0.14, creases)
    toe_line = to_scene([(0.78, 0.8), (0.77, 0.62), (0.86, 0.52), (0.94, 0.53)])
    toe = _chaikin(
        to_scene([(0.76, 0.81), (0.75, 0.6), (0.86, 0.5), (0.95, 0.52), (1.01, 0.64), (1.0, 0.81)]),
        3,
    )
    _bevel_part(layer, [toe], stitched(_scaled(upper_color, 0.9), [toe_line]), _SATIN, tall * 0.04)
    heel_line = to_scene([(0.03, 0.36), (0.12, 0.4), (0.19, 0.6), (0.2, 0.78)])
    heel = _chaikin(
        to_scene(
            [(0.0, 0.34), (0.13, 0.38), (0.21, 0.6), (0.22, 0.81), (0.02, 0.81), (-0.01, 0.5)]
        ),
        3,
    )
    _bevel_part(
        layer, [heel], stitched(_scaled(upper_color, 0.86), [heel_line]), _SATIN, tall * 0.04
    )
    swoosh = _chaikin(
        to_scene([(0.2, 0.7), (0.5, 0.6), (0.8, 0.42), (0.66, 0.56), (0.45, 0.7), (0.22, 0.75)]), 3
    )
    _bevel_part(layer, [swoosh], accent, _SATIN, tall * 0.02)
    collar = _chaikin(
        to_scene([(0.06, 0.1), (0.14, 0.12), (0.24, 0.21), (0.3, 0.19), (0.29, 0.26), (0.12, 0.2)]),
        3,
    )
    _flat_part(layer, [collar], lining, 1.0)
    tab = _chaikin(to_scene([(0.03, 0.02), (0.09, 0.03), (0.08, 0.16), (0.03, 0.16)]), 2)
    _bevel_part(layer, [tab], accent, _SATIN, tall * 0.02)
    tongue = _chaikin(
        to_scene([(0.3, 0.2), (0.33, 0.01), (0.43, 0.03), (0.46, 0.18), (0.38, 0.28)]), 2
    )
    _bevel_part(layer, [tongue], _scaled(upper_color, 1.08), _SATIN, tall * 0.05)
    lace_color = (238, 238, 238) if sum(upper_color) < 500 else (45, 45, 45)
    laces = []
    eyelets = []
    for i in range(6):
        f = i / 5
        u0, v0 = 0.43 + 0.27 * f, 0.1 + 0.3 * f
        a = to_scene([(u0 - 0.05, v0 + 0.045), (u0 + 0.035, v0 - 0.045)])
        d = (a[1] - a[0]) / max(float(np.linalg.norm(a[1] - a[0])), 1.0)
        n = np.array([-d[1], d[0]], dtype=np.float32) * (tall * 0.02)
        laces.append(np.stack([a[0] + n, a[1] + n, a[1] - n, a[0] - n]))
        for end in a:
            eyelets.append(_ellipse(float(end[0]), float(end[1]), tall * 0.024, tall * 0.024, n=20))
    _bevel_part(layer, eyelets, (170, 172, 175), _METAL, tall * 0.012)
    _bevel_part(layer, laces, lace_color, _SATIN, tall * 0.02)
    sole = _chaikin(
        to_scene(
            [
                (-0.02, 0.74),
                (0.0, 0.7),
                (0.25, 0.76),
                (0.6, 0.8),
                (0.88, 0.79),
                (0.97, 0.73),
                (1.03, 0.8),
                (1.0, 0.9),
                (0.92, 0.97),
                (0.5, 1.0),
                (0.08, 1.0),
                (-0.01, 0.92),
            ]
        ),
        3,
    )

    def tread(img: U8, x0: int, y0: int) -> None:
        y = to_scene([(0.0, 0.93)])[0, 1] - y0
        cv2.rectangle(img, (0, round(y)), (img.shape[1], img.shape[0]), outsole, -1)
        step = max(4, round(length / 70))
        for x in range(0, img.shape[1], step):
            cv2.line(img, (x, round(y)), (x, round(y + tall * 0.04)), _scaled(outsole, 0.7), 1)
        line_y = to_scene([(0.0, 0.87)])[0, 1] - y0
        cv2.line(
            img, (0, round(line_y)), (img.shape[1], round(line_y)), (205, 207, 210), 2, cv2.LINE_AA
        )

    _bevel_part(layer, [sole], _printed(sole_color, tread), _SATIN, tall * 0.05)
    base_pts = to_scene([(0.05, 1.0), (0.95, 1.0)])
    return _Product(layer, base, float(base_pts[:, 0].min()), float(base_pts[:, 0].max()))


def _box(rng: np.random.Generator, w: int, h: int, cx: float, base: float, size: float) -> _Product:
    layer = _Layer(h, w)
    fw = 0.72 * size
    fh = 0.55 * size
    dx, dy = fw * 0.32, fw * 0.2
    x0 = cx - (fw + dx) / 2
    x1 = x0 + fw
    y1 = base
    y0 = y1 - fh
    kraft = rng.random() < 0.6
    if kraft:
        card = (80 + rng.uniform(-6, 6), 138 + rng.uniform(-6, 6), 196 + rng.uniform(-6, 6))
    else:
        card = (238, 236, 234)
    accent = _pick(rng, [(40, 60, 190), (160, 100, 30), (50, 140, 60), (30, 30, 30)])
    grain = _smooth_noise(rng, h, w, 3.0) * 5.0 + _smooth_noise(rng, h, w, 40.0) * 6.0
    word = _BRANDS[int(rng.integers(len(_BRANDS)))]

    def face_texture(draw: Callable[[U8, int, int], None]) -> Callable[[int, int, int, int], F32]:
        inner = _printed(card, draw)

        def make(bx: int, by: int, hh: int, ww: int) -> F32:
            return inner(bx, by, hh, ww) + grain[by : by + hh, bx : bx + ww, None]

        return make

    def front_print(img: U8, ox: int, oy: int) -> None:
        fx0, fy0 = x0 - ox, y0 - oy
        if kraft:
            lx0, ly0 = fx0 + fw * 0.52, fy0 + fh * 0.52
            cv2.rectangle(
                img,
                (round(lx0), round(ly0)),
                (round(lx0 + fw * 0.38), round(ly0 + fh * 0.34)),
                (245, 245, 245),
                -1,
                cv2.LINE_AA,
            )
            for i in range(4):
                yy = round(ly0 + fh * (0.05 + i * 0.04))
                cv2.line(
                    img,
                    (round(lx0 + fw * 0.03), yy),
                    (round(lx0 + fw * (0.3 - 0.05 * (i % 2))), yy),
                    (60, 60, 60),
                    2,
                    cv2.LINE_AA,
                )
            bx = lx0 + fw * 0.03
            bar_rng = np.random.default_rng(len(word))
            while bx < lx0 + fw * 0.34:
                bw = 1 + int(bar_rng.integers(0, 3))
                cv2.rectangle(
                    img,
                    (round(bx), round(ly0 + fh * 0.21)),
                    (round(bx) + bw, round(ly0 + fh * 0.31)),
                    (25, 25, 25),
                    -1,
                )
                bx += bw + 1 + int(bar_rng.integers(0, 3))
            _text_centered(
                img, "FRAGILE", fx0 + fw * 0.24, fy0 + fh * 0.25, fw * 0.3, (40, 40, 150)
            )
            cv2.arrowedLine(
                img,
                (round(fx0 + fw * 0.1), round(fy0 + fh * 0.75)),
                (round(fx0 + fw * 0.1), round(fy0 + fh * 0.5)),
                (40, 40, 40),
                4,
                cv2.LINE_AA,
                tipLength=0.3,
            )
        else:
            cv2.rectangle(
                img,
                (round(fx0), round(fy0 + fh * 0.62)),
                (round(fx0 + fw), round(fy0 + fh * 0.8)),
                accent,
                -1,
            )
            _text_centered(img, word, fx0 + fw * 0.5, fy0 + fh * 0.32, fw * 0.55, accent)
            _text_centered(
                img,
                "wireless speaker",
                fx0 + fw * 0.5,
                fy0 + fh * 0.5,
                fw * 0.45,
                (60, 60, 60),
                bold=False,
            )

    def plain_print(img: U8, ox: int, oy: int) -> None:
        if not kraft:
            sx, sy = x1 - ox, y0 - oy
            pts = np.array(
                [
                    [sx, sy + fh * 0.62],
                    [sx + dx, sy - dy + fh * 0.62],
                    [sx + dx, sy - dy + fh * 0.8],
                    [sx, sy + fh * 0.8],
                ],
                np.float32,
            )
            _fill(img, [pts], accent)

    front = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
    side = np.array([[x1, y0], [x1 + dx, y0 - dy], [x1 + dx, y1 - dy], [x1, y1]], np.float32)
    top = np.array([[x0, y0], [x1, y0], [x1 + dx, y0 - dy], [x0 + dx, y0 - dy]], np.float32)

    def gradient(
        tex: Callable[[int, int, int, int], F32], k0: float, k1: float, axis: int
    ) -> Callable[[int, int, int, int], F32]:
        def make(bx: int, by: int, hh: int, ww: int) -> F32:
            n = hh if axis == 0 else ww
            ramp = np.linspace(k0, k1, n, dtype=np.float32)
            ramp = ramp[:, None, None] if axis == 0 else ramp[None, :, None]
            return tex(bx, by, hh, ww) * ramp

        return make

    _flat_part(layer, [front], gradient(face_texture(front_print), 0.86, 0.76, 0), 1.0)
    _flat_part(layer, [side], gradient(face_texture(plain_print), 0.62, 0.5, 1), 1.0)
    tape = np.array(
        [
            [x0 + fw * 0.5 - fw * 0.07, y0],
            [x0 + fw * 0.5 + fw * 0.07, y0],
            [x0 + fw * 0.5 + fw * 0.07 + dx, y0 - dy],
            [x0 + fw * 0.5 - fw * 0.07 + dx, y0 - dy],
        ],
        np.float32,
    )

    def top_print(img: U8, ox: int, oy: int) -> None:
        if kraft:
            _fill(img, [tape - (ox, oy)], (150, 185, 215))
        seam = np.array([[x0 + fw * 0.5, y0], [x0 + fw * 0.5 + dx, y0 - dy]], np.float32)
        _polyline(img, seam - (ox, oy), _scaled(card, 0.6), 2)

    _flat_part(layer, [top], gradient(face_texture(top_print), 1.05, 0.95, 0), 1.0)
    edge_box = layer.box([front, side, top])
    ex0, ey0, ex1, ey1 = edge_box
    edge = np.zeros((ey1 - ey0, ex1 - ex0), np.uint8)
    for a, b in ((top[0], top[1]), (top[1], top[2]), (front[1], front[2])):
        _polyline(edge, np.stack([a, b]) - (ex0, ey0), 255, max(1, round(size / 300)))
    highlight = np.full((ey1 - ey0, ex1 - ex0, 3), 255, np.float32)
    layer.paint(edge_box, (edge * 0.35).astype(np.uint8), highlight)
    return _Product(layer, base, x0, x1 + dx * 0.6)


def _tshirt(
    rng: np.random.Generator, w: int, h: int, cx: float, cy: float, size: float
) -> _Product:
    layer = _Layer(h, w)
    tw = size * 1.0
    th = size * 1.0
    left, top = cx - tw / 2, cy - th / 2
    color = _pick(
        rng,
        [
            (60, 60, 62),
            (140, 90, 40),
            (60, 60, 170),
            (110, 140, 110),
            (235, 235, 232),
            (80, 150, 200),
        ],
    )
    ink = (235, 235, 235) if sum(color) < 450 else (50, 45, 40)

    def pts(p: Sequence[tuple[float, float]]) -> F32:
        a = np.asarray(p, dtype=np.float32)
        return np.stack([left + a[:, 0] * tw, top + a[:, 1] * th], axis=1).astype(np.float32)

    right_half = [
        (0.61, 0.02),
        (0.79, 0.06),
        (0.995, 0.27),
        (0.995, 0.27),
        (0.885, 0.4),
        (0.885, 0.4),
        (0.785, 0.33),
        (0.79, 0.6),
        (0.8, 0.975),
        (0.8, 0.975),
    ]
    left_half = [(1.0 - u, v) for u, v in reversed(right_half)]
    outline = _chaikin(pts([(0.5, 0.05), *right_half, (0.5, 0.985), *left_half]), 2)
    folds = _fold_map(rng, w, h, left, top, tw, th)
    knit = _smooth_noise(rng, h, w, 1.5) * 4.0
    word = _BRANDS[int(rng.integers(len(_BRANDS)))]

    def fabric(x0: int, y0: int, hh: int, ww: int) -> F32:
        canvas = np.empty((hh, ww, 3), np.uint8)
        canvas[:] = np.asarray(color, np.uint8)
        gx, gy = left + tw * 0.5 - x0, top + th * 0.36 - y0
        cv2.circle(
            canvas,
            (round(gx), round(gy)),
            round(tw * 0.09),
            ink,
            max(2, round(tw * 0.012)),
            cv2.LINE_AA,
        )
        _text_centered(canvas, word, gx, gy + tw * 0.15, tw * 0.26, ink)
        for hem in (
            [(0.22, 0.92), (0.78, 0.92)],
            [(0.88, 0.37), (0.96, 0.3)],
            [(0.12, 0.37), (0.04, 0.3)],
        ):
            _polyline(canvas, pts(hem) - (x0, y0), _scaled(color, 0.8), max(1, round(tw / 400)))
        return canvas.astype(np.float32) + knit[y0 : y0 + hh, x0 : x0 + ww, None]

    _bevel_part(layer, [outline], fabric, _MATTE, size * 0.03, folds)
    back = _chaikin(
        pts([(0.38, 0.03), (0.5, 0.06), (0.62, 0.03), (0.58, 0.1), (0.5, 0.13), (0.42, 0.1)]), 2
    )
    _flat_part(layer, [back], _scaled(color, 0.62), 1.0)
    collar = _chaikin(
        pts(
            [
                (0.37, 0.025),
                (0.43, 0.11),
                (0.5, 0.14),
                (0.57, 0.11),
                (0.63, 0.025),
                (0.6, 0.03),
                (0.55, 0.095),
                (0.5, 0.115),
                (0.45, 0.095),
                (0.4, 0.03),
            ]
        ),
        2,
    )
    _bevel_part(layer, [collar], _scaled(color, 0.92), _MATTE, size * 0.008)
    return _Product(layer, cy + th / 2, left, left + tw, flat=True)


def _fold_map(
    rng: np.random.Generator, w: int, h: int, left: float, top: float, tw: float, th: float
) -> F32:
    """Soft cloth ripples plus a few long creases, built at quarter size because they are smooth."""
    q = 4
    sw, sh = max(2, w // q), max(2, h // q)
    size = min(tw, th) / q
    folds = _smooth_noise(rng, sh, sw, size * 0.18) * (size * 0.01)
    for _ in range(4):
        a = np.array(
            [left / q + rng.uniform(0.2, 0.8) * tw / q, top / q + rng.uniform(0.3, 0.9) * th / q]
        )
        ang = rng.uniform(-0.7, 0.7) + math.pi / 2
        d = np.array([math.cos(ang), math.sin(ang)]) * size * rng.uniform(0.12, 0.3)
        ridge = np.zeros((sh, sw), np.float32)
        p0 = (round(a[0] - d[0]), round(a[1] - d[1]))
        p1 = (round(a[0] + d[0]), round(a[1] + d[1]))
        cv2.line(ridge, p0, p1, 1.0, max(1, round(size * 0.01)), cv2.LINE_AA)
        sign = 1.0 if rng.random() < 0.6 else -1.0
        folds += cv2.GaussianBlur(ridge, (0, 0), size * 0.02) * (size * 0.05 * sign)
    return cv2.resize(folds * q, (w, h), interpolation=cv2.INTER_CUBIC)


def _lamp(
    rng: np.random.Generator, w: int, h: int, cx: float, base: float, size: float
) -> _Product:
    layer = _Layer(h, w)
    total = 1.05 * size
    ceramic = _pick(
        rng, [(140, 120, 60), (230, 232, 235), (70, 110, 150), (40, 40, 42), (120, 150, 110)]
    )
    linen = _pick(rng, [(205, 222, 232), (240, 242, 242), (150, 160, 170), (190, 205, 215)])
    brass = (60, 150, 200)
    base_h = total * 0.42
    t = np.linspace(0.0, 1.0, 160, dtype=np.float32)
    bulge = np.maximum(np.sin(np.pi * np.clip(t * 1.05, 0, 1)), 0.0) ** 0.7
    ys = base - base_h + t * base_h
    rs = size * (0.07 + 0.17 * bulge)
    rs[-3:] = rs[-3:] * np.array([0.97, 0.93, 0.88], np.float32)
    stem_top = base - total * 0.66
    _lathe(layer, cx, [stem_top, base - base_h + 4], [size * 0.018] * 2, brass, _METAL)
    _lathe(
        layer,
        cx,
        [base - base_h - size * 0.02, base - base_h + 2],
        [size * 0.05] * 2,
        brass,
        _METAL,
    )
    _lathe(layer, cx, ys, rs, ceramic, _GLOSSY, top_tilt=0.12)
    weave = _smooth_noise(rng, h, w, 1.2) * 5.0
    rows = (np.arange(h, dtype=np.float32) % 3 < 1).astype(np.float32)[:, None, None] * -4.0

    def fabric(x0: int, y0: int, hh: int, ww: int) -> F32:
        tex = np.asarray(linen, np.float32)[None, None, :] + weave[y0 : y0 + hh, x0 : x0 + ww, None]
        return tex + rows[y0 : y0 + hh]

    shade_top = base - total
    shade_bottom = base - total * 0.6
    r_top, r_bottom = size * 0.2, size * 0.33
    _lathe(
        layer,
        cx,
        [shade_top, shade_bottom],
        [r_top, r_bottom],
        fabric,
        _MATTE,
        top_tilt=0.1,
        bottom_tilt=0.1,
    )
    trim = [_ellipse(cx, shade_bottom, r_bottom, r_bottom * 0.1, 0.0, math.pi, 40)]
    trim_band = np.concatenate(
        [
            trim[0],
            _ellipse(cx, shade_bottom - size * 0.012, r_bottom, r_bottom * 0.1, math.pi, 0.0, 40),
        ]
    )
    _flat_part(layer, [trim_band], _scaled(linen, 0.55), 1.0)
    return _Product(layer, base, cx - size * 0.2, cx + size * 0.2)


_PRODUCT_PAINTERS: dict[
    str, Callable[[np.random.Generator, int, int, float, float, float], _Product]
] = {
    "mug": _mug,
    "bottle": _bottle,
    "sneaker": _sneaker,
    "box": _box,
    "tshirt": _tshirt,
    "lamp": _lamp,
}


def _shadow_map(item: _Product, w: int, h: int, soft: bool) -> F32:
    """Contact shadow plus a soft cast shadow, computed at quarter resolution for speed."""
    q = 4
    sw, sh = max(1, w // q), max(1, h // q)
    alpha = cv2.resize(item.layer.alpha, (sw, sh), interpolation=cv2.INTER_AREA)
    if item.flat:
        shifted = cv2.warpAffine(alpha, np.float32([[1, 0, 2.5], [0, 1, 4.0]]), (sw, sh))
        return cv2.resize(cv2.GaussianBlur(shifted, (0, 0), 3.5), (w, h)) * 0.6
    by = item.base_y / q
    squash, shear = 0.22, 0.55
    m = np.float32([[1, -shear, shear * by], [0, squash, by * (1 - squash)]])
    cast = cv2.warpAffine(alpha, m, (sw, sh))
    cast = cv2.GaussianBlur(cast, (0, 0), 5.0 if soft else 3.5) * 0.45
    contact = np.zeros((sh, sw), np.float32)
    cxm = (item.base_x0 + item.base_x1) / (2 * q)
    half = (item.base_x1 - item.base_x0) / (2 * q)
    cv2.ellipse(
        contact,
        (round(cxm), round(by)),
        (max(1, round(half * 1.02)), max(1, round(half * 0.08))),
        0,
        0,
        360,
        1.0,
        -1,
    )
    contact = cv2.GaussianBlur(contact, (0, 0), 1.6) * 0.7
    return cv2.resize(np.maximum(cast, contact), (w, h), interpolation=cv2.INTER_LINEAR)


# --------------------------------------------------------------------------- backgrounds


def _render_background(
    rng: np.random.Generator, kind: str, w: int, h: int, horizon: float | None, cx: float
) -> F32:
    if kind == "white":
        tone = float(rng.uniform(247, 252))
        img = np.full((h, w, 3), tone, np.float32)
        return img * (0.985 + 0.015 * _vignette(w, h, 1.0))[..., None]
    if kind == "grey":
        tone = float(rng.uniform(212, 228))
        ramp = np.linspace(0.97, 1.03, h, dtype=np.float32)[:, None, None]
        tint = np.asarray((tone, tone - 1, tone - 3), np.float32)
        return np.broadcast_to(tint * ramp, (h, w, 3)).astype(np.float32)
    if kind == "sweep":
        return _sweep(rng, w, h, horizon, cx)
    if kind == "wood":
        return _wood_scene(rng, w, h, horizon)
    return _desk_scene(rng, w, h, horizon)


def _sweep(rng: np.random.Generator, w: int, h: int, horizon: float | None, cx: float) -> F32:
    """Paper studio sweep: darker backdrop curving into a bright floor with a light pool."""
    tint = _pick(rng, [(1.0, 1.0, 1.0), (1.02, 1.0, 0.96), (0.96, 0.99, 1.03), (0.98, 0.98, 1.02)])
    yh = horizon if horizon is not None else h * 0.5
    y = np.arange(h, dtype=np.float32)
    s = 1.0 / (1.0 + np.exp(-(y - yh) / (h * 0.08)))
    tone = 196.0 + 44.0 * s
    x = (np.arange(w, dtype=np.float32) - cx) / w
    pool = np.exp(-(x[None, :] ** 2) / 0.08 - ((y[:, None] - yh * 1.15) / h) ** 2 / 0.12) * 12.0
    val = tone[:, None] + pool
    return val[..., None] * np.asarray(tint, np.float32)[None, None, :]


@dataclass(frozen=True)
class _Plane:
    """Maps table coordinates to the image so clutter recedes toward the wall."""

    w: int
    h: int
    horizon: float

    def __call__(self, pts: F32) -> F32:
        p = np.asarray(pts, dtype=np.float32)
        if self.horizon <= 0:
            return p
        depth = np.clip((p[:, 1] - self.horizon) / (self.h - self.horizon), 0.0, 1.6)
        k = 0.55 + 0.45 * depth
        x = self.w / 2 + (p[:, 0] - self.w / 2) * k
        return np.stack([x, p[:, 1]], axis=1).astype(np.float32)


def _to_u8(img: F32) -> U8:
    return np.clip(img, 0, 255).astype(np.uint8)


def _wood_texture(rng: np.random.Generator, w: int, h: int, top: int) -> F32:
    """Planks with grain: noise stretched along the boards, bent through a sine."""
    th = h - top
    depth = np.arange(th, dtype=np.float32) / max(th, 1)
    stretch = 0.55 + 0.45 * depth if top > 0 else np.ones(th, np.float32)
    v = np.cumsum(1.0 / stretch).astype(np.float32)
    span = float(v[-1]) if th else 1.0
    gh = max(2, int(span / 6))
    grid = rng.standard_normal((gh, max(2, w // 160)), dtype=np.float32)
    streaks = cv2.resize(grid, (w, gh), interpolation=cv2.INTER_CUBIC)
    rows = np.clip(v / span * (gh - 1), 0, gh - 1).astype(np.int32)
    streak = streaks[rows]
    warp = _smooth_noise(rng, th, w, 120.0) * 14.0
    rings = np.sin((v[:, None] + warp) * 0.45 + streak * 1.5)
    base = np.asarray(_pick(rng, [(60, 105, 150), (45, 80, 125), (85, 135, 175)]), np.float32)
    tone = 1.0 + 0.08 * rings + 0.07 * streak + _smooth_noise(rng, th, w, 2.0) * 0.03
    wood = base[None, None, :] * tone[..., None]
    plank = float(rng.uniform(0.1, 0.15)) * h
    board = np.floor(v / plank)
    seam = np.flatnonzero(np.diff(board) > 0) + 1
    for sy in seam:
        wood[max(0, sy - 1) : sy + 1] *= 0.5
    out = np.zeros((h, w, 3), np.float32)
    out[top:] = wood
    return out


def _wall(rng: np.random.Generator, w: int, h: int, bottom: int) -> F32:
    paint = np.asarray(
        _pick(rng, [(200, 210, 215), (170, 190, 200), (210, 205, 200), (185, 200, 180)]), np.float32
    )
    light = np.linspace(1.08, 0.86, w, dtype=np.float32)[None, :]
    if rng.random() < 0.5:
        light = light[:, ::-1]
    tex = (1.0 + _smooth_noise(rng, bottom, w, 6.0) * 0.01) * light
    out = np.zeros((h, w, 3), np.float32)
    out[:bottom] = paint[None, None, :] * tex[..., None]
    return out


def _shadowed(img: U8, polys: Sequence[F32], offset: tuple[float, float], blur: float) -> None:
    """Darken under an object before it is drawn, so it sits on the surface."""
    h, w = img.shape[:2]
    m = np.zeros((h, w), np.uint8)
    _fill(m, [p + np.asarray(offset, np.float32) for p in polys], 255)
    x, y, bw, bh = cv2.boundingRect(m)
    if bw == 0 or bh == 0:
        return
    pad = int(blur * 3) + 2
    x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(w, x + bw + pad), min(h, y + bh + pad)
    sm = cv2.GaussianBlur(m[y0:y1, x0:x1].astype(np.float32), (0, 0), blur) * (0.45 / 255)
    region = img[y0:y1, x0:x1].astype(np.float32) * (1.0 - sm[..., None])
    img[y0:y1, x0:x1] = _to_u8(region)


def _rect(cx: float, cy: float, w: float, h: float, angle: float) -> F32:
    c, s = math.cos(angle), math.sin(angle)
    corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    rot = corners @ np.array([[c, s], [-s, c]])
    return (rot + np.array([cx, cy])).astype(np.float32)


def _paper(rng: np.random.Generator, img: U8, plane: _Plane, x: float, y: float, s: float) -> None:
    ang = rng.uniform(-0.6, 0.6)
    pw, ph = s * 0.75, s
    sheet = _rect(x, y, pw, ph, ang)
    _shadowed(img, [plane(sheet)], (3, 4), 3)
    _fill(img, [plane(sheet)], _pick(rng, [(246, 246, 244), (235, 240, 242), (150, 220, 245)]))
    c, sn = math.cos(ang), math.sin(ang)
    for i in range(int(ph / (s * 0.07))):
        yy = -ph / 2 + s * 0.12 + i * s * 0.07
        if yy > ph / 2 - s * 0.08:
            break
        frac = rng.uniform(0.5, 0.85)
        a = np.array([[-pw * 0.4, yy], [-pw * 0.4 + pw * frac * 0.9, yy]])
        line = (a @ np.array([[c, sn], [-sn, c]]) + (x, y)).astype(np.float32)
        _polyline(img, plane(line), (90, 90, 95), max(1, round(s / 110)))


def _cable(rng: np.random.Generator, img: U8, plane: _Plane, w: int, h: int, y0: float) -> None:
    p = np.array(
        [
            [rng.uniform(-0.1, 0.2) * w, rng.uniform(y0, h)],
            [rng.uniform(0, 1) * w, rng.uniform(y0, h)],
            [rng.uniform(0, 1) * w, rng.uniform(y0, h)],
            [rng.uniform(0.8, 1.1) * w, rng.uniform(y0, h)],
        ]
    )
    t = np.linspace(0, 1, 80)[:, None]
    curve = (
        (1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t**2 * p[2] + t**3 * p[3]
    ).astype(np.float32)
    pts = plane(curve)
    color = _pick(rng, [(30, 30, 30), (235, 235, 235), (40, 40, 160)])
    width = max(3, round(min(w, h) / 110))
    under = _scaled(color, 0.5) if color[0] > 100 else (20, 20, 20)
    _polyline(img, pts + np.float32([2, 4]), under, width)
    _polyline(img, pts, color, width)
    shine = _scaled(color, 1.0)
    shine = (min(255, shine[0] + 70), min(255, shine[1] + 70), min(255, shine[2] + 70))
    _polyline(img, pts - np.float32([1, 1]), shine, max(1, width // 3))


def _phone(rng: np.random.Generator, img: U8, plane: _Plane, x: float, y: float, s: float) -> None:
    ang = rng.uniform(-0.8, 0.8)
    body = _rect(x, y, s * 0.5, s, ang)
    _shadowed(img, [plane(body)], (4, 6), 4)
    _fill(img, [plane(body)], (25, 25, 28))
    screen = _rect(x, y, s * 0.44, s * 0.9, ang)
    _fill(img, [plane(screen)], (70, 50, 40))
    glare = _rect(x - s * 0.05, y - s * 0.15, s * 0.12, s * 0.7, ang + 0.5)
    _fill(img, [plane(glare)], (95, 80, 72))


def _pen(rng: np.random.Generator, img: U8, plane: _Plane, x: float, y: float, s: float) -> None:
    ang = rng.uniform(0, math.pi)
    d = np.array([math.cos(ang), math.sin(ang)]) * s / 2
    centre = np.array([x, y])
    line = np.array([centre - d, centre + d], np.float32)
    color = _pick(rng, [(160, 60, 20), (30, 30, 30), (30, 30, 200), (40, 160, 230)])
    width = max(4, round(s / 18))
    _polyline(img, plane(line) + np.float32([2, 4]), (40, 40, 40), width)
    _polyline(img, plane(line), color, width)
    _polyline(img, plane(line[:1] * 0.85 + line[1:] * 0.15), (220, 220, 220), width)


def _note(rng: np.random.Generator, img: U8, plane: _Plane, x: float, y: float, s: float) -> None:
    s *= 0.5
    sq = _rect(x, y, s, s, rng.uniform(-0.5, 0.5))
    _shadowed(img, [plane(sq)], (2, 3), 2)
    _fill(img, [plane(sq)], _pick(rng, [(120, 240, 250), (200, 150, 250), (150, 240, 160)]))
    for i in range(3):
        yy = y - s * 0.2 + i * s * 0.18
        _polyline(
            img,
            plane(np.array([[x - s * 0.3, yy], [x + s * 0.25, yy]], np.float32)),
            (90, 70, 60),
            max(1, round(s / 40)),
        )


def _keys(rng: np.random.Generator, img: U8, plane: _Plane, x: float, y: float, s: float) -> None:
    ring = plane(_ellipse(x, y, s * 0.18, s * 0.18))
    _polyline(img, ring, (170, 170, 175), max(2, round(s / 40)), closed=True)
    for k in range(2):
        ang = rng.uniform(0, 2 * math.pi)
        kx, ky = x + math.cos(ang) * s * 0.45, y + math.sin(ang) * s * 0.45
        key = _rect(kx, ky, s * 0.16, s * 0.5, ang + math.pi / 2)
        _fill(img, [plane(key)], (110, 170, 200) if k else (185, 185, 190))


def _scatter(
    rng: np.random.Generator, img: U8, plane: _Plane, w: int, h: int, y0: float, n: int
) -> None:
    """Random overlapping everyday objects, biased toward the borders of the frame."""
    s = min(w, h)
    painters = [_paper, _paper, _phone, _pen, _note, _keys, _pen, _note]
    for _ in range(n):
        side = rng.integers(4)
        if side == 0:
            x, y = rng.uniform(0.0, 0.2) * w, rng.uniform(y0, h)
        elif side == 1:
            x, y = rng.uniform(0.8, 1.0) * w, rng.uniform(y0, h)
        else:
            x, y = rng.uniform(0.0, 1.0) * w, rng.uniform(max(y0, h * 0.82), h)
        painter = painters.pop(int(rng.integers(len(painters)))) if painters else _paper
        painter(rng, img, plane, float(x), float(y), s * float(rng.uniform(0.16, 0.3)))


def _frame(rng: np.random.Generator, img: U8, x: float, y: float, fw: float, fh: float) -> None:
    _shadowed(img, [_rect(x, y, fw, fh, 0)], (5, 7), 5)
    _fill(
        img, [_rect(x, y, fw, fh, 0)], _pick(rng, [(30, 30, 30), (60, 100, 140), (235, 235, 235)])
    )
    _fill(img, [_rect(x, y, fw * 0.84, fh * 0.86, 0)], (240, 240, 238))
    ax0, ay0, aw, ah = x - fw * 0.32, y - fh * 0.33, fw * 0.64, fh * 0.66
    sky = np.linspace(0, 1, max(2, int(ah)))[:, None]
    art = np.asarray((220, 190, 150)) * (1 - sky) + np.asarray((170, 200, 230)) * sky
    strip = np.broadcast_to(art[:, None, :], (art.shape[0], max(2, int(aw)), 3))
    yy, xx = int(ay0), int(ax0)
    hh = min(strip.shape[0], img.shape[0] - yy)
    ww = min(strip.shape[1], img.shape[1] - xx)
    if hh > 0 and ww > 0 and yy >= 0 and xx >= 0:
        img[yy : yy + hh, xx : xx + ww] = strip[:hh, :ww].astype(np.uint8)
    hills = np.array(
        [
            [ax0, ay0 + ah],
            [ax0, ay0 + ah * 0.6],
            [ax0 + aw * 0.3, ay0 + ah * 0.35],
            [ax0 + aw * 0.55, ay0 + ah * 0.62],
            [ax0 + aw * 0.8, ay0 + ah * 0.42],
            [ax0 + aw, ay0 + ah * 0.55],
            [ax0 + aw, ay0 + ah],
        ],
        np.float32,
    )
    _fill(img, [hills], (90, 120, 70))
    sun = _ellipse(ax0 + aw * 0.72, ay0 + ah * 0.22, aw * 0.07, aw * 0.07)
    _fill(img, [sun], (120, 210, 250))


def _shelf(rng: np.random.Generator, img: U8, x0: float, x1: float, y: float) -> None:
    x = x0
    colors = [(40, 40, 150), (130, 90, 40), (60, 120, 60), (200, 200, 200), (40, 140, 200)]
    h = img.shape[0]
    while x < x1:
        bw = h * rng.uniform(0.02, 0.035)
        bh = h * rng.uniform(0.1, 0.15)
        color = _pick(rng, colors)
        book = np.array([[x, y - bh], [x + bw, y - bh], [x + bw, y], [x, y]], np.float32)
        _fill(img, [book], color)
        band = np.array([[x, y - bh * 0.8], [x + bw, y - bh * 0.8]], np.float32)
        _polyline(img, band, _scaled(color, 0.6), max(1, round(bw / 8)))
        x += bw + 1
    plank = np.array(
        [[x0 - 10, y], [x1 + 10, y], [x1 + 10, y + h * 0.02], [x0 - 10, y + h * 0.02]], np.float32
    )
    _shadowed(img, [plank], (0, 8), 6)
    _fill(img, [plank], (70, 110, 150))


def _plant(rng: np.random.Generator, img: U8, x: float, y: float, s: float) -> None:
    for _ in range(14):
        ang = rng.uniform(-math.pi * 0.95, -math.pi * 0.05)
        ln = s * rng.uniform(0.35, 0.6)
        tip = (x + math.cos(ang) * ln, y - s * 0.05 + math.sin(ang) * ln)
        mid = ((x + tip[0]) / 2, (y + tip[1]) / 2)
        leaf = cv2.ellipse2Poly(
            (round(mid[0]), round(mid[1])),
            (round(ln / 2), max(2, round(ln * 0.13))),
            round(math.degrees(ang)),
            0,
            360,
            10,
        ).astype(np.float32)
        _fill(img, [leaf], _pick(rng, [(50, 120, 40), (40, 100, 30), (70, 150, 60)]))
        _polyline(img, np.array([mid, tip], np.float32), (40, 80, 30), 1)
    pot = np.array(
        [
            [x - s * 0.2, y],
            [x + s * 0.2, y],
            [x + s * 0.15, y + s * 0.35],
            [x - s * 0.15, y + s * 0.35],
        ],
        np.float32,
    )
    _fill(img, [pot], _pick(rng, [(60, 90, 180), (220, 220, 220), (50, 50, 50)]))


def _blinds(img: U8, x: float, y: float, bw: float, bh: float) -> None:
    _fill(img, [_rect(x, y, bw * 1.06, bh * 1.04, 0)], (235, 235, 235))
    _fill(img, [_rect(x, y, bw, bh, 0)], (250, 248, 240))
    step = max(6, round(bh / 18))
    for yy in np.arange(y - bh / 2 + step, y + bh / 2, step):
        line = np.array([[x - bw / 2, yy], [x + bw / 2, yy]], np.float32)
        _polyline(img, line, (200, 200, 205), max(2, step // 3))


def _corkboard(rng: np.random.Generator, img: U8, x: float, y: float, bw: float, bh: float) -> None:
    _fill(img, [_rect(x, y, bw + 14, bh + 14, 0)], (70, 110, 150))
    board = _rect(x, y, bw, bh, 0)
    _fill(img, [board], (95, 150, 200))
    for _ in range(6):
        nx = x + rng.uniform(-0.4, 0.4) * bw
        ny = y + rng.uniform(-0.35, 0.35) * bh
        ns = bh * rng.uniform(0.25, 0.38)
        note = _rect(nx, ny, ns, ns * 1.1, rng.uniform(-0.2, 0.2))
        _fill(img, [note], _pick(rng, [(245, 245, 245), (120, 240, 250), (200, 160, 250)]))
        cv2.circle(
            img,
            (round(nx), round(ny - ns * 0.45)),
            max(2, round(ns / 14)),
            (40, 40, 200),
            -1,
            cv2.LINE_AA,
        )


def _wood_scene(rng: np.random.Generator, w: int, h: int, horizon: float | None) -> F32:
    """A home table against a wall with a frame, shelf and plant: a typical casual listing."""
    if horizon is None:
        img = _to_u8(_wood_texture(rng, w, h, 0))
        plane = _Plane(w, h, 0.0)
        _cable(rng, img, plane, w, h, 0.0)
        _scatter(rng, img, plane, w, h, 0.0, 9)
        _plant(rng, img, w * 0.92, h * 0.12, min(w, h) * 0.35)
        return img.astype(np.float32)
    top = int(horizon)
    base = _wall(rng, w, h, top) + _wood_texture(rng, w, h, top)
    img = _to_u8(base)
    s = min(w, h)
    _frame(rng, img, w * rng.uniform(0.12, 0.25), top * 0.45, s * 0.26, s * 0.32)
    _shelf(rng, img, w * 0.62, w * 0.98, top * rng.uniform(0.35, 0.55))
    _plant(rng, img, w * rng.uniform(0.05, 0.12), top - s * 0.2, s * 0.32)
    edge = np.array([[0, top], [w, top], [w, top + 6], [0, top + 6]], np.float32)
    _fill(img, [edge], (40, 70, 100))
    plane = _Plane(w, h, horizon)
    _cable(rng, img, plane, w, h, horizon + (h - horizon) * 0.3)
    _scatter(rng, img, plane, w, h, horizon + 10, 7)
    return img.astype(np.float32)


def _desk_scene(rng: np.random.Generator, w: int, h: int, horizon: float | None) -> F32:
    """An office desk under a window: blinds, cork board, papers, cables and pens."""
    s = min(w, h)
    laminate = np.asarray(
        _pick(rng, [(205, 208, 210), (225, 228, 230), (170, 175, 178)]), np.float32
    )
    speck = 1.0 + _smooth_noise(rng, h, w, 1.5) * 0.03 + _smooth_noise(rng, h, w, 60.0) * 0.02
    if horizon is None:
        img = _to_u8(laminate[None, None, :] * speck[..., None])
        plane = _Plane(w, h, 0.0)
        _cable(rng, img, plane, w, h, 0.0)
        _cable(rng, img, plane, w, h, 0.0)
        _scatter(rng, img, plane, w, h, 0.0, 10)
        return img.astype(np.float32)
    top = int(horizon)
    desk = np.zeros((h, w, 3), np.float32)
    desk[top:] = laminate[None, None, :] * speck[top:, :, None]
    img = _to_u8(_wall(rng, w, h, top) + desk)
    _blinds(img, w * rng.uniform(0.15, 0.25), top * 0.45, s * 0.32, top * 0.7)
    _corkboard(rng, img, w * rng.uniform(0.75, 0.85), top * 0.45, s * 0.3, top * 0.5)
    edge = np.array([[0, top], [w, top], [w, top + 5], [0, top + 5]], np.float32)
    _fill(img, [edge], _scaled(tuple(laminate), 0.7))
    plane = _Plane(w, h, horizon)
    _cable(rng, img, plane, w, h, horizon + (h - horizon) * 0.2)
    _cable(rng, img, plane, w, h, horizon + (h - horizon) * 0.4)
    _scatter(rng, img, plane, w, h, horizon + 10, 8)
    return img.astype(np.float32)
