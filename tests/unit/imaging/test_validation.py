import hashlib

import pytest

from imaging.errors import RejectedUpload
from imaging.validation import (
    UploadLimits,
    check_filename,
    sniff_format,
    validate_image,
)
from streams.http_status import rejection_status
from tests import hostile_files as hf

LIMITS = UploadLimits(max_bytes=2_000_000, max_pixels=40_000_000, max_side=12_000, min_side=32)


@pytest.mark.parametrize("fmt,name", [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp")])
def test_accepts_supported_formats(fmt, name):
    data = hf.photo(320, 200, fmt)
    image = validate_image(data, LIMITS)
    assert (image.format, image.width, image.height) == (name, 320, 200)
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert image.storage_key == f"originals/{image.sha256[:2]}/{image.sha256}.{image.extension}"


def test_exif_rotation_swaps_displayed_dimensions():
    image = validate_image(hf.photo(320, 200, exif_orientation=6), LIMITS)
    assert (image.width, image.height, image.orientation) == (200, 320, 6)


@pytest.mark.parametrize(
    "payload,code,status",
    [
        (b"", "empty_file", 400),
        (hf.text_as_jpg(), "not_an_image", 415),
        (hf.gif(), "unsupported_format", 415),
        (hf.truncated_jpeg(), "corrupt_image", 422),
        (hf.png_bomb_header(), "image_too_large", 413),
        (hf.photo(16, 16, "PNG"), "image_too_small", 422),
        (b"\xff\xd8\xff" + b"\x00" * 3_000_000, "file_too_large", 413),
        (b"\xff\xd8\xff\xe0garbage after a JPEG signature", "corrupt_image", 422),
    ],
    ids=["empty", "text", "gif", "truncated", "bomb", "tiny", "oversize", "fake-jpeg"],
)
def test_rejects_bad_uploads_with_a_reason(payload, code, status):
    with pytest.raises(RejectedUpload) as info:
        validate_image(payload, LIMITS)
    assert info.value.code == code
    assert rejection_status(info.value.code) == status  # chosen at the HTTP boundary
    assert len(info.value.reason) > 10


def test_bomb_is_refused_from_its_header_without_decoding():
    with pytest.raises(RejectedUpload) as info:
        validate_image(hf.png_bomb_header(), LIMITS)
    assert "50000x50000" in info.value.reason


def test_the_content_decides_and_a_contradicting_declared_type_is_recorded():
    image = validate_image(hf.photo(100, 100, "JPEG"), LIMITS, declared_type="image/png")
    assert image.format == "jpeg"
    assert image.notes == ("type_mismatch: sent as PNG, the content is JPEG",)
    assert validate_image(hf.photo(100, 100), LIMITS, "application/octet-stream").notes == ()


def _png_with_bad_crc(width: int, height: int, chunk: bytes) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    pixels = np.broadcast_to(ramp, (height, width, 3)).astype(np.uint8)  # compresses well
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    at = data.find(chunk)
    length = int.from_bytes(data[at - 4:at], "big")
    data[at + 4 + length] ^= 0xFF
    return bytes(data)


@pytest.mark.parametrize("size", [(64, 48), (1600, 1200)])
@pytest.mark.parametrize("chunk", [b"IHDR", b"IDAT", b"IEND"])
def test_a_png_failing_a_checksum_is_refused_whatever_its_size(size, chunk):
    with pytest.raises(RejectedUpload) as info:
        validate_image(_png_with_bad_crc(*size, chunk), LIMITS)
    assert info.value.code == "corrupt_image" and chunk.decode() in info.value.reason


@pytest.mark.parametrize("data,fmt", [
    (b"GIF89a....", "gif"), (b"BM......", "bmp"), (b"II*\x00", "tiff"),
    (b"\x00\x00\x00\x18ftypheic", "heic"), (b"%PDF-1.7", "pdf"), (b"hello", None),
])
def test_sniff_format(data, fmt):
    assert sniff_format(data) == fmt


@pytest.mark.parametrize("name, recorded", [
    ("../../etc/passwd", "passwd"), ("a/b.jpg", "b.jpg"), ("..\\x.jpg", "x.jpg"),
    ("a\x00.jpg", "a.jpg"), ("x" * 300, "x" * 255), ("my..photo.jpg", "my..photo.jpg"),
    ("..", None), ("/", None),
])
def test_odd_filenames_are_cleaned_not_refused(name, recorded):
    assert check_filename(name) == recorded


def test_plain_filenames_pass():
    assert check_filename("summer dress (1).JPG") == "summer dress (1).JPG"
    assert check_filename(None) is None
