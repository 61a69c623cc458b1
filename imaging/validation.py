"""Upload validation by content: what a seller sent must really be a photo we can use.

Pure code (bytes in, facts out). Checks, in order of cost: size, magic bytes, declared vs
real type, header dimensions (before any pixel is decoded, so a decompression bomb is
refused for the price of reading its header), a full decode (catches truncated files),
and the EXIF orientation the photo should be displayed with.
"""

from __future__ import annotations

import hashlib
import io
import warnings
import zlib
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from imaging.errors import RejectedUpload

#: Formats we accept, keyed by the name ``sniff_format`` returns.
ACCEPTED_FORMATS: dict[str, tuple[str, str]] = {
    "jpeg": ("image/jpeg", "jpg"),
    "png": ("image/png", "png"),
    "webp": ("image/webp", "webp"),
}

#: Formats we recognise only to refuse them with a helpful message.
_REFUSED_FORMATS: dict[str, str] = {
    "gif": "GIF",
    "bmp": "BMP",
    "tiff": "TIFF",
    "heic": "HEIC/HEIF",
    "avif": "AVIF",
    "pdf": "PDF",
}

_DECLARED_TYPES: dict[str, str] = {
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/pjpeg": "jpeg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
    "image/heic": "heic",
    "image/heif": "heic",
    "image/avif": "avif",
}

_EXIF_ORIENTATION = 0x0112
_MAX_FILENAME = 255


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    max_pixels: int
    max_side: int
    min_side: int


@dataclass(frozen=True)
class ValidatedImage:
    """Facts about an accepted upload; width/height are as displayed (EXIF applied)."""

    format: str
    content_type: str
    extension: str
    width: int
    height: int
    orientation: int
    size_bytes: int
    sha256: str
    # What the client said that the content contradicts (recorded, not refused).
    notes: tuple[str, ...] = ()

    @property
    def storage_key(self) -> str:
        """Content-addressed key: the same bytes always land on the same object."""
        return f"originals/{self.sha256[:2]}/{self.sha256}.{self.extension}"


def sniff_format(data: bytes) -> str | None:
    """The real format of ``data`` from its magic bytes, or None when unknown."""
    head = data[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:2] == b"BM":
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "avif"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1"):
            return "heic"
    if head.startswith(b"%PDF"):
        return "pdf"
    return None


def check_filename(filename: str | None) -> str | None:
    """The name to record for an upload: its last path component, without control
    characters, at most 255 characters. A name is only a label here (objects are keyed
    by content), so an odd one is cleaned, never a reason to refuse a good photo."""
    if not filename:
        return None
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ord(ch) >= 32 and ord(ch) != 127).strip()
    if base in ("", ".", ".."):
        return None
    return base[:_MAX_FILENAME]


def validate_image(
    data: bytes, limits: UploadLimits, declared_type: str | None = None
) -> ValidatedImage:
    """Validate an upload by its content; raise :class:`RejectedUpload` with a reason."""
    size = len(data)
    if size == 0:
        raise RejectedUpload("empty_file", "The file is empty.")
    if size > limits.max_bytes:
        raise RejectedUpload(
            "file_too_large",
            f"The file is {_mb(size)}; the limit is {_mb(limits.max_bytes)}.",
        )

    fmt = sniff_format(data)
    if fmt is None:
        raise RejectedUpload(
            "not_an_image",
            "The file is not an image we can read. Upload a JPEG, PNG or WebP photo.",
        )
    if fmt not in ACCEPTED_FORMATS:
        raise RejectedUpload(
            "unsupported_format",
            f"{_REFUSED_FORMATS[fmt]} files are not supported. "
            "Save the photo as JPEG, PNG or WebP and upload it again.",
        )
    notes = _declared_type_notes(declared_type, fmt)
    if fmt == "png":
        _check_png_checksums(data)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=[fmt.upper()])
        except Image.DecompressionBombError:
            raise _too_many_pixels(*_header_size(data, fmt), limits) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise _corrupt(fmt) from exc
        with image:
            width, height = image.size
            _check_dimensions(width, height, limits)
            if getattr(image, "n_frames", 1) > 1:
                raise RejectedUpload(
                    "animated_image",
                    "Animated images are not supported. Upload a still photo.",
                )
            orientation = _orientation(image)
            if fmt == "jpeg":
                # Every entropy-coded byte is still decoded (truncation and corrupt
                # scans are caught), only at 1/8 scale: half the CPU of a full decode.
                image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
            try:
                image.load()
            except Image.DecompressionBombError:
                raise _too_many_pixels(width, height, limits) from None
            except (OSError, SyntaxError, ValueError) as exc:
                raise _corrupt(fmt) from exc

    if orientation in (5, 6, 7, 8):
        width, height = height, width
    content_type, extension = ACCEPTED_FORMATS[fmt]
    return ValidatedImage(
        format=fmt,
        content_type=content_type,
        extension=extension,
        width=width,
        height=height,
        orientation=orientation,
        size_bytes=size,
        sha256=hashlib.sha256(data).hexdigest(),
        notes=notes,
    )


def _declared_type_notes(declared_type: str | None, real: str) -> tuple[str, ...]:
    """A declared type the content contradicts is recorded: the content decides."""
    if not declared_type:
        return ()
    declared = _DECLARED_TYPES.get(declared_type.split(";")[0].strip().lower())
    if declared is not None and declared != real:
        return (f"type_mismatch: sent as {declared.upper()}, the content is {real.upper()}",)
    return ()


def _check_png_checksums(data: bytes) -> None:
    """Every chunk's CRC must match (decoders skip most of them): a PNG damaged in
    transit is refused whatever its size."""
    position = 8  # after the signature
    while position + 12 <= len(data):
        length = int.from_bytes(data[position:position + 4], "big")
        end = position + 8 + length
        if end + 4 > len(data):
            break  # truncated: the decode reports it
        kind = data[position + 4:position + 8]
        stored = int.from_bytes(data[end:end + 4], "big")
        if zlib.crc32(data[position + 4:end]) != stored:
            raise RejectedUpload(
                "corrupt_image",
                f"The PNG file is damaged: its {kind.decode('latin-1')} chunk fails its "
                "checksum. Upload the original file again.")
        if kind == b"IEND":
            return
        position = end + 4


def _check_dimensions(width: int, height: int, limits: UploadLimits) -> None:
    if width * height > limits.max_pixels or max(width, height) > limits.max_side:
        raise _too_many_pixels(width, height, limits)
    if min(width, height) < limits.min_side:
        raise RejectedUpload(
            "image_too_small",
            f"The image is {width}x{height} px; each side needs at least "
            f"{limits.min_side} px.",
        )


def _header_size(data: bytes, fmt: str) -> tuple[int | None, int | None]:
    """Dimensions from a PNG or JPEG header, for the message when Pillow refuses a bomb."""
    if fmt == "png" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if fmt == "jpeg":
        i = 2
        while i + 9 < len(data) and data[i] == 0xFF:
            marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                return (int.from_bytes(data[i + 7:i + 9], "big"),
                        int.from_bytes(data[i + 5:i + 7], "big"))
            i += 2 + length
    return None, None


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a broken EXIF block must not reject an otherwise good photo
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _too_many_pixels(width: int | None, height: int | None, limits: UploadLimits) -> RejectedUpload:
    size = f"{width}x{height} px" if width and height else "too large"
    return RejectedUpload(
        "image_too_large",
        f"The image is {size}; the limit is {limits.max_pixels / 1e6:.0f} megapixels "
        f"and {limits.max_side} px per side.",
    )


def _corrupt(fmt: str) -> RejectedUpload:
    return RejectedUpload(
        "corrupt_image",
        f"The {fmt.upper()} file is damaged or incomplete and cannot be decoded. "
        "Upload the original photo again.",
    )


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"
