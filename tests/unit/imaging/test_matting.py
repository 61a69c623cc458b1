"""The full-size matte and the composite on the fill colour (pure)."""

import numpy as np

from imaging.matting import backdrop_texture, composite


def _grey_on_red(edge_alpha):
    """A grey product (right) on a red backdrop (left); the product's first column is
    given ``edge_alpha`` although its pixels are pure product: an alpha a little low."""
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, :30] = (40, 40, 220)  # BGR red
    image[:, 30:] = 128
    alpha = np.zeros((40, 60), np.float32)
    alpha[:, 30:] = 1.0
    alpha[:, 30] = edge_alpha
    return image, alpha


def test_an_edge_pixel_does_not_take_the_backdrops_complementary_colour():
    image, alpha = _grey_on_red(0.5)
    out = composite(image, alpha, (255, 255, 255)).astype(int)
    blue, green, red = out[:, 30].mean(axis=0)
    assert green - red < 30, f"cyan rim: BGR {blue, green, red}"


def test_the_product_inside_and_the_fill_outside_are_exact():
    image, alpha = _grey_on_red(1.0)
    out = composite(image, alpha, (10, 20, 30))
    assert (out[:, :25] == (10, 20, 30)).all()
    assert (out[:, 36:] == 128).all()


def test_a_patterned_backdrop_is_busy_and_a_plain_one_with_a_sharp_product_is_not():
    rng = np.random.default_rng(1)
    alpha = np.zeros((80, 80), np.float32)
    alpha[20:60, 20:60] = 1.0
    plain = np.where(alpha > 0, 0.1, 0.9).astype(np.float32)  # a dark product on white
    busy = plain.copy()
    busy[alpha == 0] = rng.uniform(0.4, 1.0, (alpha == 0).sum())  # a rug
    edge = (slice(18, 22), slice(30, 50))
    assert backdrop_texture(plain, alpha, 6)[edge].max() == 0.0
    assert backdrop_texture(busy, alpha, 6)[edge].min() > 0.9
