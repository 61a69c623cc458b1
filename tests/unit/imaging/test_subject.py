import cv2
import numpy as np

from imaging.samples import generate_sample_batch
from imaging.subject import find_subject


def _decode(sample):
    return cv2.imdecode(np.frombuffer(sample.data, np.uint8), cv2.IMREAD_COLOR)


def test_product_on_plain_backdrop_is_boxed():
    canvas = np.full((600, 800, 3), 245, np.uint8)
    cv2.rectangle(canvas, (300, 200), (500, 450), (40, 60, 160), -1)
    subject = find_subject(canvas, padding=0.0)
    assert subject.method == "backdrop"
    assert abs(subject.x0 - 300) <= 6 and abs(subject.x1 - 501) <= 6
    assert abs(subject.y0 - 200) <= 6 and abs(subject.y1 - 451) <= 6
    assert subject.mask is not None and subject.mask[300, 400] and not subject.mask[50, 50]


def test_gradient_studio_sweep_is_still_a_backdrop():
    ramp = np.linspace(250, 150, 600, dtype=np.float32)[:, None, None]
    canvas = np.repeat(np.repeat(ramp, 800, axis=1), 3, axis=2).astype(np.uint8)
    cv2.circle(canvas, (400, 300), 120, (20, 20, 20), -1)
    subject = find_subject(canvas)
    assert subject.method == "backdrop"
    assert 0.05 < subject.fraction(800, 600) < 0.25


def test_busy_borders_fall_back_to_the_centre():
    rng = np.random.default_rng(3)
    canvas = rng.integers(0, 255, (600, 800, 3), dtype=np.uint8)
    subject = find_subject(canvas)
    assert subject.method == "center" and subject.mask is None


def test_generated_samples_plain_vs_cluttered():
    for sample in generate_sample_batch():
        subject = find_subject(_decode(sample))
        if "cluttered" in sample.traits:
            assert subject.method == "center", sample.name
        elif "plain" in sample.traits and "noisy" not in sample.traits:
            assert subject.method == "backdrop", sample.name
