"""Web renditions: the published sizes and formats of a photo (pure).

Two sizes from the profile (``large`` for listing pages, ``thumb`` for search results),
each as baseline optimised JPEG and WebP. Never upscaled here: upscaling is an enhancement step
with its own decision.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from imaging.decoding import fit
from imaging.profile import Outputs


@dataclass(frozen=True)
class Rendition:
    name: str
    format: str
    width: int
    height: int
    data: bytes

    @property
    def extension(self) -> str:
        return "jpg" if self.format == "jpeg" else self.format

    @property
    def content_type(self) -> str:
        return f"image/{self.format}"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def jpeg_rendition(name: str, image: np.ndarray, outputs: Outputs) -> Rendition:
    """Baseline JPEG with optimised Huffman tables: the pixels of progressive, 2.7x faster
    to encode for ~1.5% more bytes (docs/benchmarks.md)."""
    h, w = image.shape[:2]
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, outputs.jpeg_quality,
                                            cv2.IMWRITE_JPEG_OPTIMIZE, 1])
    if not ok:
        raise ValueError(f"JPEG encoding failed for {w}x{h}")
    return Rendition(name, "jpeg", w, h, jpeg.tobytes())


def webp_rendition(name: str, image: np.ndarray, outputs: Outputs) -> Rendition:
    h, w = image.shape[:2]
    webp = io.BytesIO()
    Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).save(
        webp, format="WEBP", quality=outputs.webp_quality, method=outputs.webp_method)
    return Rendition(name, "webp", w, h, webp.getvalue())


def large_jpeg(bgr: np.ndarray, outputs: Outputs) -> tuple[np.ndarray, Rendition]:
    """The large rendition's pixels and its JPEG: what the after-check measures before
    anything else is encoded."""
    image = fit(bgr, outputs.large_max_side)
    return image, jpeg_rendition("large", image, outputs)


def render_outputs(bgr: np.ndarray, outputs: Outputs,
                   large: tuple[np.ndarray, Rendition] | None = None) -> list[Rendition]:
    """Every rendition of ``bgr``: large and thumb, JPEG and WebP. ``large``: the large
    pixels and JPEG when already made (``large_jpeg``)."""
    large_pixels, large_rendition = large or large_jpeg(bgr, outputs)
    thumb = fit(bgr, outputs.thumb_max_side)
    return [large_rendition, webp_rendition("large", large_pixels, outputs),
            jpeg_rendition("thumb", thumb, outputs), webp_rendition("thumb", thumb, outputs)]
