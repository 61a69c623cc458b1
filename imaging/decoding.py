"""Decode photos for analysis at a bounded working resolution.

Assessment cost grows with pixels while the quality signals we need survive a reduction,
so large photos are analysed on a copy whose longest side is at most ``max_side``. JPEGs
are decoded directly at 1/2, 1/4 or 1/8 scale (libjpeg DCT scaling via Pillow's draft
mode: several times cheaper than a full decode), the rest is an area resize. EXIF
orientation is applied and transparency is flattened onto white (how a marketplace shows
a cut-out product).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from imaging.errors import PermanentError


class UndecodableImage(PermanentError):
    """The bytes cannot be decoded as an image."""


@dataclass(frozen=True)
class DecodedImage:
    """A BGR working copy plus the facts of the original it came from."""

    bgr: np.ndarray
    original_width: int
    original_height: int

    @property
    def scale(self) -> float:
        """Working width / original width (1.0 when not reduced)."""
        return self.bgr.shape[1] / self.original_width


def decode_image(data: bytes, max_side: int | None = None) -> DecodedImage:
    """Decode ``data`` (oriented, flattened, BGR uint8), reduced to ``max_side`` if given."""
    try:
        image = Image.open(io.BytesIO(data))
        orientation = image.getexif().get(0x0112, 1) if image.format == "JPEG" else None
        width, height = image.size
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        if max_side and image.format == "JPEG" and max(width, height) > max_side:
            factor = max_side / max(width, height)
            # draft picks the smallest DCT scale that still gives at least this size
            image.draft("RGB", (int(image.size[0] * factor), int(image.size[1] * factor)))
        image = ImageOps.exif_transpose(image)
        rgb = _to_rgb(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UndecodableImage(f"cannot decode image: {exc}") from exc
    if max_side:
        rgb = fit(rgb, max_side)
    return DecodedImage(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), width, height)


def fitted_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) with the long side at most ``max_side``, the aspect kept."""
    factor = min(1.0, max_side / max(width, height))
    return max(1, round(width * factor)), max(1, round(height * factor))


def fit(image: np.ndarray, max_side: int) -> np.ndarray:
    """``image`` area-reduced so its long side is at most ``max_side`` (itself if it fits).
    Every reduced copy is made this one way (the assessment's working copy, renditions,
    the mask's input), so copies of the same pixels at the same size are equal."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    return cv2.resize(image, fitted_size(w, h, max_side), interpolation=cv2.INTER_AREA)


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        image = canvas
    elif image.mode.startswith("I;16") or image.mode == "I":
        array = np.asarray(image, dtype=np.float32)
        scale = 255.0 / 65535.0 if array.max() > 255 else 1.0
        image = Image.fromarray(np.clip(array * scale, 0, 255).astype(np.uint8))
    return np.asarray(image.convert("RGB"))
