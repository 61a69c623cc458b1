"""Lossless JPEG metadata stripping (pure: bytes in, bytes out).

A kept original is published without a re-encode so it cannot lose quality, but its
bytes must not leak what the seller's camera or tools put around the pixels: EXIF (with
GPS position and an embedded thumbnail), XMP, comments, maker segments, or a payload
appended after the end-of-image marker (an appended ZIP, a motion-photo video, MPF
images). ``strip_jpeg_metadata`` walks the marker segments, keeps only what decoding and
colour need and copies the entropy-coded data byte for byte, so decoded pixels are
identical. Anything it cannot parse raises ``ValueError``: the caller then re-encodes.

Kept: SOI, APP0 JFIF (canonical 14 bytes, thumbnail dropped), APP2 ICC_PROFILE chunks,
APP14 Adobe (canonical 12 bytes: its transform flag decides YCbCr/RGB/YCCK), DQT, SOF,
DHT, DAC, DRI, DNL, SOS with its entropy-coded data and RST markers, EOI. Dropped: APP1
(EXIF, XMP), every other APPn, COM, TEM and stray RST markers, fill bytes between
segments, and everything after EOI.
"""

from __future__ import annotations

import re
import struct

__all__ = ["is_clean_jpeg", "strip_jpeg_metadata"]

SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
DQT, DHT, DAC, DRI, DNL = 0xDB, 0xC4, 0xCC, 0xDD, 0xDC
APP0, APP1, APP2, APP14, COM, TEM = 0xE0, 0xE1, 0xE2, 0xEE, 0xFE, 0x01
# Non-differential frames: baseline, extended, progressive, lossless (Huffman/arithmetic).
FRAMES = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC9, 0xCA, 0xCB})
TABLES = frozenset({DQT, DHT, DAC, DRI})
RST = frozenset(range(0xD0, 0xD8))

JFIF_ID, ICC_ID, ADOBE_ID = b"JFIF\x00", b"ICC_PROFILE\x00", b"Adobe"
JFIF_LEN, ADOBE_LEN = 14, 12  # what libjpeg reads of these segments; the rest is unused
EXIF_ID, XMP_ID = b"Exif\x00\x00", b"http://ns.adobe.com/xap/1.0/\x00"
ORIENTATION_TAG = 0x0112

# A real photo has a few dozen markers (a progressive one up to ~100 with its tables and
# ICC chunks); the cap keeps a file made of millions of tiny segments from costing seconds.
MAX_MARKERS = 10_000

# Entropy-coded data: bytes other than 0xFF, and 0xFF runs (a data byte, fill bytes)
# followed by a stuffed zero (0xFF00 = data byte 0xFF) or a restart marker (RST0-7 belong
# to the scan). It ends at the 0xFF run of the next marker. Possessive, never backtracking:
# linear and fast (~1 ms/MB) even on hostile 0xFF runs.
_SCAN_DATA = re.compile(rb"(?:[^\xff]++|\xff++[\x00\xd0-\xd7])*+")
_NOT_FF = re.compile(rb"[^\xff]")
_XMP_ORIENTATION = re.compile(rb'tiff:Orientation(?:="|>)\s*([0-9])')


def strip_jpeg_metadata(data: bytes) -> bytes:
    """``data`` rewritten without metadata or trailing bytes; pixels decode identically.

    Raises ValueError when ``data`` is not a JPEG this parser fully understands
    (truncated, lengths past the end, no EOI, hierarchical/JPEG-LS, garbage between
    segments...) or when dropping its EXIF/XMP would change how it is displayed (an
    orientation other than 1: that photo must be re-encoded with orientation applied).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    view = memoryview(data)
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG: does not start with SOI (FF D8)")
    out: list[bytes | memoryview] = [b"\xff\xd8"]
    pos, markers, frame_components, scans = 2, 0, 0, 0
    while True:
        code, pos = _next_marker(data, pos)
        markers += 1
        if markers > MAX_MARKERS:
            raise ValueError(f"more than {MAX_MARKERS} markers: refusing to walk further")
        if code == EOI:
            if not scans:
                raise ValueError("EOI before any scan: no image data")
            out.append(b"\xff\xd9")
            return b"".join(out)  # whatever follows EOI is dropped
        if code == TEM or code in RST:
            continue  # parameterless, meaningless outside a scan: decoders ignore them
        if code == SOI:
            raise ValueError(f"unexpected second SOI at offset {pos - 2}")
        if code < 0xC0:  # 0x00 (a stuffed zero outside a scan) and reserved codes
            raise ValueError(f"invalid marker FF {code:02X} at offset {pos - 2}")
        body_end = _segment_end(data, pos, code)
        body = view[pos + 2:body_end]
        if code in FRAMES:
            if frame_components:
                raise ValueError(f"second frame header (SOF) at offset {pos - 2}")
            frame_components = _check_frame(body)
            out += (bytes((0xFF, code)), view[pos:body_end])
        elif code in TABLES or code == DNL:
            if code == DNL and len(body) != 2:
                raise ValueError(f"DNL segment of {len(body)} bytes at offset {pos - 2}")
            out += (bytes((0xFF, code)), view[pos:body_end])
        elif code == SOS:
            if not frame_components:
                raise ValueError(f"scan (SOS) before frame header at offset {pos - 2}")
            _check_scan(body, frame_components)
            scan = _SCAN_DATA.match(data, body_end)  # always matches, maybe empty
            end = scan.end() if scan else body_end
            if end == len(data):
                raise ValueError(f"scan {scans + 1} is truncated: no marker after its data")
            # the entropy-coded data (with its RST markers) byte for byte
            out += (b"\xff\xda", view[pos:end])
            scans += 1
            pos = end  # the 0xFF run of the marker that ends the scan
            continue
        elif 0xE0 <= code <= 0xEF or code == COM:
            _check_orientation(code, body)
            if not scans:  # decoders read colour information before the first scan only
                out += _kept_app_segment(code, body)
        else:
            raise ValueError(f"unsupported marker FF {code:02X} at offset {pos - 2} "
                             "(hierarchical, JPEG-LS or reserved)")
        pos = body_end


def is_clean_jpeg(data: bytes) -> bool:
    """True when ``data`` is a JPEG that ``strip_jpeg_metadata`` leaves unchanged.

    That is: no APP1 (EXIF/XMP), COM or other APPn, only canonical JFIF/ICC/Adobe
    segments, no fill bytes between segments and nothing after EOI. Unparsable input is
    not clean.
    """
    try:
        return strip_jpeg_metadata(data) == bytes(data)
    except (ValueError, TypeError):
        return False


def _next_marker(data: bytes, pos: int) -> tuple[int, int]:
    """(marker code, offset after it) at ``pos``, skipping 0xFF fill bytes."""
    if pos >= len(data):
        raise ValueError("truncated: data ends without EOI")
    if data[pos] != 0xFF:
        raise ValueError(f"expected a marker at offset {pos}, found byte {data[pos]:02X}")
    code = _NOT_FF.search(data, pos)
    if code is None:
        raise ValueError("truncated: data ends in fill bytes without EOI")
    return data[code.start()], code.end()


def _segment_end(data: bytes, pos: int, code: int) -> int:
    """End offset of the segment whose length field starts at ``pos``."""
    if pos + 2 > len(data):
        raise ValueError(f"truncated: segment FF {code:02X} has no length field")
    length = (data[pos] << 8) | data[pos + 1]
    if length < 2:
        raise ValueError(f"segment FF {code:02X} at offset {pos - 2} has length {length} < 2")
    if pos + length > len(data):
        raise ValueError(f"segment FF {code:02X} at offset {pos - 2} has length {length}, "
                         f"past the end of the data")
    return pos + length


def _check_frame(body: memoryview) -> int:
    """Number of components of a sane frame header (SOF)."""
    if len(body) < 6:
        raise ValueError(f"frame header of {len(body)} bytes is too short")
    _precision, height, width, components = struct.unpack(">BHHB", body[:6])
    if components == 0 or len(body) != 6 + 3 * components:
        raise ValueError(f"frame header length {len(body)} does not match "
                         f"{components} components")
    if width == 0 or height == 0:
        raise ValueError(f"frame of {width}x{height} pixels (DNL-defined height unsupported)")
    return components


def _check_scan(body: memoryview, frame_components: int) -> None:
    if not body:
        raise ValueError("empty scan header")
    components = body[0]
    if not 1 <= components <= min(4, frame_components) or len(body) != 4 + 2 * components:
        raise ValueError(f"scan header of {len(body)} bytes with {components} components "
                         f"in a {frame_components}-component frame")


def _kept_app_segment(code: int, body: memoryview) -> tuple[bytes, ...]:
    """The canonical form of an APPn segment decoders need, or nothing."""
    if code == APP0 and body[:5] == JFIF_ID and len(body) >= JFIF_LEN:
        # version, density units and density kept; the optional RGB thumbnail dropped
        return (b"\xff\xe0\x00\x10", bytes(body[:12]), b"\x00\x00")
    if code == APP2 and body[:12] == ICC_ID and len(body) >= 14:  # id, chunk no., count
        return (b"\xff\xe2", struct.pack(">H", len(body) + 2), bytes(body))
    if code == APP14 and body[:5] == ADOBE_ID and len(body) >= ADOBE_LEN:
        return (b"\xff\xee\x00\x0e", bytes(body[:ADOBE_LEN]))
    return ()


def _check_orientation(code: int, body: memoryview) -> None:
    """Refuse to drop an EXIF/XMP orientation other than 1 (the photo would turn)."""
    if code != APP1:
        return
    head = bytes(body[:len(XMP_ID)])
    if head.startswith(EXIF_ID):
        orientation = _exif_orientation(bytes(body[len(EXIF_ID):]))
    elif head == XMP_ID:  # Pillow honours tiff:Orientation in XMP when EXIF has none
        match = _XMP_ORIENTATION.search(bytes(body))
        orientation = int(match[1]) if match else None
    else:
        return
    if orientation is not None and 2 <= orientation <= 8:
        raise ValueError(f"orientation {orientation}: stripping it would turn the photo; "
                         "re-encode with the orientation applied")


def _exif_orientation(tiff: bytes) -> int | None:
    """The Orientation tag of IFD0 of a TIFF/EXIF block, or None (absent or unreadable)."""
    if tiff[:4] == b"II*\x00":
        order = "<"
    elif tiff[:4] == b"MM\x00*":
        order = ">"
    else:
        return None
    if len(tiff) < 8:
        return None
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        return None
    (count,) = struct.unpack(order + "H", tiff[ifd:ifd + 2])
    for entry in range(ifd + 2, min(ifd + 2 + 12 * count, len(tiff) - 11), 12):
        tag, kind = struct.unpack(order + "HH", tiff[entry:entry + 4])
        if tag == ORIENTATION_TAG:
            if kind == 3:  # SHORT
                return struct.unpack(order + "H", tiff[entry + 8:entry + 10])[0]
            if kind == 4:  # LONG
                return struct.unpack(order + "I", tiff[entry + 8:entry + 12])[0]
            return None
    return None
