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


def fit(bgr: np.ndarray, max_side: int) -> np.ndarray:
    h, w = bgr.shape[:2]
    if max(h, w) <= max_side:
        return bgr
    factor = max_side / max(h, w)
    return cv2.resize(bgr, (max(1, round(w * factor)), max(1, round(h * factor))),
                      interpolation=cv2.INTER_AREA)


def render_outputs(bgr: np.ndarray, outputs: Outputs, keep: str | None = None):
    """Every rendition of ``bgr``; with ``keep`` (a rendition name), also that
    rendition's pixels, for an after-check that measures what was just rendered."""
    renditions, kept = [], None
    for name, max_side in (("large", outputs.large_max_side), ("thumb", outputs.thumb_max_side)):
        image = fit(bgr, max_side)
        if name == keep:
            kept = image
        h, w = image.shape[:2]
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, outputs.jpeg_quality,
                                                cv2.IMWRITE_JPEG_OPTIMIZE, 1])
        if not ok:
            raise ValueError(f"JPEG encoding failed for {w}x{h}")
        renditions.append(Rendition(name, "jpeg", w, h, jpeg.tobytes()))
        webp = io.BytesIO()
        Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).save(
            webp, format="WEBP", quality=outputs.webp_quality, method=outputs.webp_method)
        renditions.append(Rendition(name, "webp", w, h, webp.getvalue()))
    return (renditions, kept) if keep else renditions
