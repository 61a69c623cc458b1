"""Hostile and broken upload payloads, built in code (shared by unit and integration tests)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def photo(width: int = 640, height: int = 480, fmt: str = "JPEG", seed: int = 1,
          exif_orientation: int | None = None) -> bytes:
    """A small, valid, photo-like image (gradient + noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * 255 / width), (y * 255 / height), np.full_like(x, 128.0)], axis=-1)
    pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    out = io.BytesIO()
    kwargs: dict = {"quality": 90} if fmt in ("JPEG", "WEBP") else {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif.tobytes()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def truncated_jpeg() -> bytes:
    data = photo(800, 600)
    return data[: len(data) // 2]


def png_bomb_header(width: int = 50_000, height: int = 50_000) -> bytes:
    """A PNG whose header claims width x height pixels, with a tiny compressed body."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1_000_000, 9)  # deflates to ~1 KB; a bomb if decoded
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(out, format="GIF")
    return out.getvalue()


def text_as_jpg() -> bytes:
    return b"This is not a photo, just some text that was renamed to photo.jpg\n" * 20
