import io

import numpy as np
from PIL import Image

from imaging.encoding import render_outputs
from profiles import load_profile

OUTPUTS = load_profile("default").outputs


def test_renditions_sizes_formats_and_no_upscaling():
    bgr = np.random.default_rng(1).integers(0, 255, (1800, 2400, 3), dtype=np.uint8)
    renditions = {(r.name, r.format): r for r in render_outputs(bgr, OUTPUTS)}
    assert set(renditions) == {("large", "jpeg"), ("large", "webp"), ("thumb", "jpeg"),
                               ("thumb", "webp")}
    assert (renditions["large", "jpeg"].width, renditions["large", "jpeg"].height) == (1600, 1200)
    assert (renditions["thumb", "webp"].width, renditions["thumb", "webp"].height) == (400, 300)
    for r in renditions.values():
        decoded = Image.open(io.BytesIO(r.data))
        assert decoded.format == r.format.upper() and decoded.size == (r.width, r.height)
    small = np.zeros((300, 200, 3), np.uint8)
    assert {(r.width, r.height) for r in render_outputs(small, OUTPUTS)} == {(200, 300)}


def test_renditions_are_deterministic():
    bgr = np.random.default_rng(2).integers(0, 255, (500, 600, 3), dtype=np.uint8)
    assert [r.sha256 for r in render_outputs(bgr, OUTPUTS)] == [
        r.sha256 for r in render_outputs(bgr, OUTPUTS)]
