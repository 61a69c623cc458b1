"""Lossless JPEG metadata stripping (imaging/clean_jpeg.py): clean output, same pixels."""

import glob
import io
import struct
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms

from imaging.clean_jpeg import MAX_MARKERS, is_clean_jpeg, strip_jpeg_metadata

SELLERS = Path(__file__).resolve().parents[4] / "shared" / "images" / "sellers"
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _pixels(width: int = 320, height: int = 240, seed: int = 3) -> np.ndarray:
    """Gradient + noise: compresses like a photo and yields stuffed 0xFF00 bytes."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, np.full_like(x, 128.0)], axis=-1)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def _exif(orientation: int | None = 1, gps: bool = True) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Camera maker"
    exif[ExifTags.Base.Model] = "Phone 12"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    if gps:
        exif.get_ifd(ExifTags.IFD.GPSInfo).update({
            ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (52.0, 22.0, 1.5),
            ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (4.0, 53.0, 2.0),
            ExifTags.GPS.GPSMapDatum: "WGS-84",
            ExifTags.GPS.GPSProcessingMethod: b"ASCII\x00\x00\x00GPS"})
    return exif.tobytes()


def _jpeg(progressive: bool = False, mode: str = "RGB", width: int = 320, height: int = 240,
          **save) -> bytes:
    image = Image.fromarray(_pixels(width, height))
    if mode != "RGB":
        image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90, progressive=progressive, **save)
    return out.getvalue()


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("secret.txt", "seller's home address")
    return out.getvalue()


def _segment(code: int, payload: bytes) -> bytes:
    return bytes((0xFF, code)) + struct.pack(">H", len(payload) + 2) + payload


def _after_soi(jpeg: bytes, *segments: bytes) -> bytes:
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


def _scan_data(jpeg: bytes) -> tuple[int, int]:
    """(start, end) of the entropy-coded data of a single-scan JPEG."""
    sos = jpeg.index(b"\xff\xda")
    return sos + 2 + struct.unpack(">H", jpeg[sos + 2:sos + 4])[0], jpeg.rindex(b"\xff\xd9")


def _with_fill_bytes(jpeg: bytes) -> bytes:
    """``jpeg`` with 0xFF fill bytes before every marker, RST markers in the scan included."""
    out, pos = [jpeg[:2]], 2
    while jpeg[pos + 1] != 0xDA:
        end = pos + 2 + struct.unpack(">H", jpeg[pos + 2:pos + 4])[0]
        out.append(b"\xff\xff" + jpeg[pos:end])
        pos = end
    start, end = _scan_data(jpeg)
    scan = jpeg[start:end]
    for rst in range(0xD0, 0xD8):
        scan = scan.replace(bytes((0xFF, rst)), bytes((0xFF, 0xFF, rst)))
    return b"".join(out) + b"\xff\xff" + jpeg[pos:start] + scan + b"\xff\xff\xff\xd9"


def _assert_same_pixels(before: bytes, after: bytes) -> None:
    with Image.open(io.BytesIO(before)) as a, Image.open(io.BytesIO(after)) as b:
        assert a.mode == b.mode and a.size == b.size
        assert np.array_equal(np.asarray(a), np.asarray(b))
    for flags in (cv2.IMREAD_UNCHANGED, cv2.IMREAD_COLOR):
        a = cv2.imdecode(np.frombuffer(before, np.uint8), flags)
        b = cv2.imdecode(np.frombuffer(after, np.uint8), flags)
        assert a is not None and np.array_equal(a, b)


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_strips_exif_gps_comment_and_appended_zip(progressive):
    clean = _jpeg(progressive)
    original = _jpeg(progressive, exif=_exif(), icc_profile=SRGB, comment=b"shot at home")
    original += _zip()
    with Image.open(io.BytesIO(original)) as image:  # the fixture really carries it all
        assert image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert image.info["comment"] == b"shot at home"
    assert b"Exif" in original and b"GPS" in original and zipfile.is_zipfile(io.BytesIO(original))

    stripped = strip_jpeg_metadata(original)

    with Image.open(io.BytesIO(stripped)) as image:
        assert len(image.getexif()) == 0
        assert "exif" not in image.info and "comment" not in image.info
        assert image.info["icc_profile"] == SRGB
        assert bool(image.info.get("progressive")) == progressive
    assert b"Exif" not in stripped and b"GPS" not in stripped
    assert b"shot at home" not in stripped and b"secret.txt" not in stripped
    assert stripped.endswith(b"\xff\xd9") and is_clean_jpeg(stripped)
    assert not zipfile.is_zipfile(io.BytesIO(stripped))
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(stripped))
    _assert_same_pixels(original, stripped)
    # the scans are copied byte for byte: the same bytes as the JPEG saved without metadata
    assert stripped[stripped.index(b"\xff\xdb"):] == clean[clean.index(b"\xff\xdb"):]


def test_clean_jpeg_is_unchanged_and_stripping_is_idempotent():
    for jpeg in (_jpeg(), _jpeg(True, icc_profile=SRGB),
                 cv2.imencode(".jpg", _pixels(), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()):
        assert is_clean_jpeg(jpeg)
        assert strip_jpeg_metadata(jpeg) == jpeg
    dirty = _jpeg(exif=_exif()) + b"trailer"
    assert not is_clean_jpeg(dirty)
    assert strip_jpeg_metadata(strip_jpeg_metadata(dirty)) == strip_jpeg_metadata(dirty)


@pytest.mark.parametrize("segment", [
    _segment(0xE1, b"Exif\x00\x00" + b"MM\x00*\x00\x00\x00\x08\x00\x00"),
    _segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>GPS</x:xmpmeta>"),
    _segment(0xE2, b"MPF\x00" + b"\x00" * 20),
    _segment(0xED, b"Photoshop 3.0\x00" + b"8BIM" * 5),
    _segment(0xE0, b"JFXX\x00\x10" + b"\x00" * 30),
    _segment(0xEE, b"NotAdobe" + b"\x00" * 8),
    _segment(0xFE, b"comment"),
], ids=["exif", "xmp", "mpf", "photoshop", "jfxx", "other-app14", "com"])
def test_metadata_segments_are_dropped(segment):
    jpeg = _jpeg()
    dirty = _after_soi(jpeg, segment)
    assert not is_clean_jpeg(dirty)
    assert strip_jpeg_metadata(dirty) == jpeg


def test_orientation_other_than_1_refuses_to_strip():
    """Dropping EXIF orientation 6 would publish the photo on its side: re-encode instead."""
    turned = _jpeg(exif=_exif(orientation=6))
    with pytest.raises(ValueError, match="orientation 6"):
        strip_jpeg_metadata(turned)
    assert not is_clean_jpeg(turned)
    xmp = _segment(0xE1, b'http://ns.adobe.com/xap/1.0/\x00<rdf tiff:Orientation="8"/>')
    with pytest.raises(ValueError, match="orientation 8"):
        strip_jpeg_metadata(_after_soi(_jpeg(), xmp))
    # orientation 1, or none at all, is safe to drop
    for exif in (_exif(orientation=1), _exif(orientation=None)):
        assert strip_jpeg_metadata(_jpeg(exif=exif)) == _jpeg()


def test_large_icc_profile_split_over_several_segments_is_kept():
    profile = SRGB + bytes(range(256)) * 600  # ~150 KB: three APP2 chunks
    original = _jpeg(True, icc_profile=profile, exif=_exif())
    stripped = strip_jpeg_metadata(original)
    assert stripped.count(b"ICC_PROFILE\x00") == 3
    with Image.open(io.BytesIO(stripped)) as image:
        assert image.info["icc_profile"] == profile
    _assert_same_pixels(original, stripped)


def test_adobe_segment_of_cmyk_jpeg_is_kept():
    """Its transform flag tells decoders how to read the channels."""
    original = _after_soi(_jpeg(mode="CMYK"), _segment(0xE1, b"Exif\x00\x00junk"))
    stripped = strip_jpeg_metadata(original)
    assert b"Adobe" in stripped and b"Exif" not in stripped
    with Image.open(io.BytesIO(stripped)) as image:
        assert image.mode == "CMYK" and "adobe" in image.info
    _assert_same_pixels(original, stripped)


def test_jfif_thumbnail_and_segment_padding_are_dropped():
    jpeg = _jpeg()
    app0 = jpeg[2:20]
    assert app0[4:9] == b"JFIF\x00"
    thumbnail = bytes((2, 2)) + bytes(range(12))
    with_thumbnail = _segment(0xE0, app0[4:16] + thumbnail)
    adobe = _segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01" + b"hidden payload")
    original = jpeg[:2] + with_thumbnail + adobe + jpeg[2 + len(app0):]
    stripped = strip_jpeg_metadata(original)
    assert stripped[2:20] == app0
    assert _segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01") in stripped
    assert b"hidden payload" not in stripped
    _assert_same_pixels(original, stripped)


def test_restart_markers_fill_bytes_and_stuffing_survive():
    jpeg = _jpeg(exif=_exif(), restart_marker_blocks=4)
    start, end = _scan_data(jpeg)
    assert b"\xff\xd0" in jpeg[start:end] and b"\xff\x00" in jpeg[start:end]
    assert b"\xff\xdd" in jpeg  # DRI
    filled = _with_fill_bytes(jpeg)
    _assert_same_pixels(jpeg, filled)  # libjpeg reads the fill bytes as the spec says
    stripped = strip_jpeg_metadata(filled)
    assert b"Exif" not in stripped
    # fill between segments dropped; the scan (fill before its RST markers too) kept as is
    assert stripped == strip_jpeg_metadata(jpeg)[:-2 - (end - start)] + \
        filled[filled.index(jpeg[start:start + 64]):-4] + b"\xff\xd9"
    _assert_same_pixels(filled, stripped)


def test_stray_parameterless_markers_between_segments_are_dropped():
    jpeg = _jpeg()
    assert strip_jpeg_metadata(jpeg[:2] + b"\xff\x01\xff\xd3" + jpeg[2:]) == jpeg


@pytest.mark.skipif(not SELLERS.is_dir(), reason="no seller photos")
def test_seller_photos_strip_losslessly():
    for path in sorted(glob.glob(str(SELLERS / "*" / "*.jpg")))[::25]:
        original = Path(path).read_bytes()
        stripped = strip_jpeg_metadata(original)
        assert is_clean_jpeg(stripped) and len(stripped) <= len(original)
        _assert_same_pixels(original, stripped)


def test_every_truncation_raises_value_error():
    original = _jpeg(True, width=48, height=32, exif=_exif(), icc_profile=SRGB,
                     comment=b"c")
    for cut in range(len(original)):
        with pytest.raises(ValueError):
            strip_jpeg_metadata(original[:cut])


SMALL = _jpeg(width=32, height=16)
SOF_AT = SMALL.index(b"\xff\xc0")
SOS_AT = SMALL.index(b"\xff\xda")


@pytest.mark.parametrize(("data", "message"), [
    (b"", "SOI"),
    (b"\xff", "SOI"),
    (b"GIF89a" + bytes(100), "SOI"),
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "SOI"),
    (b"\xff\xd8", "without EOI"),
    (b"\xff\xd8\xff", "fill bytes"),
    (b"\xff\xd8\xff\xd9", "no image data"),
    (b"\xff\xd8" + b"not a marker" * 10, "expected a marker"),
    (b"\xff\xd8\xff\xe1", "no length"),
    (b"\xff\xd8\xff\xe1\x00", "no length"),
    (b"\xff\xd8\xff\xe1\xff\xffExif\x00\x00", "past the end"),
    (b"\xff\xd8\xff\xe1\x00\x01\xff\xd9", "< 2"),
    (b"\xff\xd8\xff\xe1\x00\x00\xff\xd9", "< 2"),
    (b"\xff\xd8\xff\x00\xff\xd9", "invalid marker"),
    (b"\xff\xd8\xff\x02\xff\xd9", "invalid marker"),
    (b"\xff\xd8\xff\xd8\xff\xd9", "second SOI"),
    (b"\xff\xd8\xff\xde\x00\x02\xff\xd9", "unsupported marker"),
    (b"\xff\xd8\xff\xf7\x00\x02\xff\xd9", "unsupported marker"),
    (SMALL[:SOF_AT] + SMALL[SOS_AT:], "before frame header"),
    (SMALL[:SOS_AT] + SMALL[SOF_AT:], "second frame"),
    (SMALL[:SOF_AT + 5] + b"\x00\x00" + SMALL[SOF_AT + 7:], "32x0 pixels"),
    (SMALL[:SOF_AT + 3] + b"\x10" + SMALL[SOF_AT + 4:], "frame header"),
    (SMALL[:SOS_AT + 4] + b"\x07" + SMALL[SOS_AT + 5:], "scan header"),
    (SMALL[:-2], "truncated"),
    (SMALL[:-2] + b"\x00\x00", "truncated"),
    (SMALL + b"\xff\xd9", None),  # a second EOI is just trailing data
], ids=lambda value: value[:12].hex() if isinstance(value, bytes) else str(value))
def test_hostile_input_raises_value_error(data, message):
    if message is None:
        assert strip_jpeg_metadata(data) == SMALL
        return
    with pytest.raises(ValueError, match=message):
        strip_jpeg_metadata(data)
    assert not is_clean_jpeg(data)


def test_not_bytes_is_a_type_error():
    with pytest.raises(TypeError):
        strip_jpeg_metadata("\xff\xd8")  # type: ignore[arg-type]
    assert not is_clean_jpeg("\xff\xd8")  # type: ignore[arg-type]


@pytest.mark.parametrize("data", [
    b"\xff\xd8" + b"\xff" * 5_000_000,  # fill bytes forever
    SMALL[:SOS_AT + 14] + b"\xff" * 5_000_000 + b"\x00" * 10,  # 0xFF run inside a scan
    SMALL[:SOS_AT + 14] + b"\xff\x00" * 2_500_000,  # stuffed bytes and no end
    SMALL[:2] + _segment(0xFE, b"") * (MAX_MARKERS + 1) + SMALL[2:],  # marker flood
], ids=["fill", "ff-run", "stuffing", "marker-flood"])
def test_hostile_input_does_not_hang(data):
    started = time.perf_counter()
    with pytest.raises(ValueError):
        strip_jpeg_metadata(data)
    assert time.perf_counter() - started < 1.0


def test_random_corruption_only_ever_raises_value_error():
    original = _jpeg(True, width=64, height=48, exif=_exif(), icc_profile=SRGB) + _zip()
    rng = np.random.default_rng(7)
    for _ in range(2000):
        data = bytearray(original)
        for at in rng.integers(0, len(data), rng.integers(1, 4)):
            data[at] = rng.choice([0x00, 0xFF, 0xD9, 0xDA, int(rng.integers(0, 256))])
        try:
            stripped = strip_jpeg_metadata(bytes(data))
        except ValueError:
            continue
        assert is_clean_jpeg(stripped) and b"Exif" not in stripped
        assert not zipfile.is_zipfile(io.BytesIO(stripped))
