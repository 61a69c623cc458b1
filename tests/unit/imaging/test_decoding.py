import io

import numpy as np
import pytest
from PIL import Image

from imaging.decoding import UndecodableImage, decode_image
from tests import hostile_files as hf


def test_large_jpeg_is_reduced_to_the_working_size():
    decoded = decode_image(hf.photo(3000, 2000), max_side=1024)
    assert (decoded.original_width, decoded.original_height) == (3000, 2000)
    assert max(decoded.bgr.shape[:2]) <= 1024
    assert decoded.bgr.shape[1] / decoded.bgr.shape[0] == pytest.approx(1.5, rel=0.01)
    assert decoded.scale == pytest.approx(decoded.bgr.shape[1] / 3000)


def test_small_images_are_not_resized():
    decoded = decode_image(hf.photo(400, 300, "PNG"), max_side=1024)
    assert decoded.bgr.shape == (300, 400, 3) and decoded.scale == 1.0


def test_exif_orientation_is_applied():
    decoded = decode_image(hf.photo(320, 200, exif_orientation=6), max_side=1024)
    assert decoded.bgr.shape[:2] == (320, 200)
    assert (decoded.original_width, decoded.original_height) == (200, 320)


def test_transparency_is_flattened_on_white():
    rgba = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (16, 16, 48, 48))
    out = io.BytesIO()
    rgba.save(out, format="PNG")
    bgr = decode_image(out.getvalue()).bgr
    assert tuple(bgr[2, 2]) == (255, 255, 255)
    assert tuple(bgr[32, 32]) == (255, 0, 0)  # blue in BGR order


def test_channels_are_bgr():
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0] = 200  # red
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    assert tuple(decode_image(out.getvalue()).bgr[0, 0]) == (0, 0, 200)


@pytest.mark.parametrize("data", [b"", b"garbage", hf.truncated_jpeg()])
def test_undecodable_bytes_raise_a_permanent_error(data):
    with pytest.raises(UndecodableImage):
        decode_image(data)
