"""The full-size matte and the composite on the fill colour (pure)."""

import numpy as np

from imaging.matting import backdrop_texture, composite, remove_spill, spill_rim


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


def _spilled(product_bgr, backdrop_bgr, spill=0.4, width=3):
    """A product (right half) on a backdrop whose colour bleeds ``width`` px into it, as
    JPEG's half-resolution chroma leaves it; the matte is solid over the product."""
    image = np.zeros((60, 80, 3), np.float32)
    image[:, :40] = backdrop_bgr
    image[:, 40:] = product_bgr
    rim = np.asarray(product_bgr, np.float32) * (1 - spill) + np.asarray(backdrop_bgr) * spill
    image[:, 40:40 + width] = rim
    alpha = np.zeros((60, 80), np.float32)
    alpha[:, 40:] = 1.0
    return image, alpha


def _chroma(bgr):
    bgr = np.asarray(bgr, np.float32)
    return bgr - bgr.mean(axis=-1, keepdims=True)


def test_a_grey_products_rim_loses_the_red_backdrops_colour_but_not_its_brightness():
    image, alpha = _spilled((128, 128, 128), (40, 40, 220))
    out = remove_spill(image, alpha)
    before, after = image[:, 40:43], out[:, 40:43]
    assert np.abs(_chroma(after)).max() < np.abs(_chroma(before)).max() / 4
    assert np.allclose(after.mean(axis=-1), before.mean(axis=-1), atol=1.0)
    assert (out[:, :40] == image[:, :40]).all()  # the backdrop is the composite's business
    assert (out[:, 50:] == image[:, 50:]).all()  # deeper than the rim: untouched


def test_a_product_the_colour_of_its_backdrop_keeps_its_rim():
    image, alpha = _spilled((44, 46, 214), (40, 40, 220))  # a red garment on a red sheet
    assert np.allclose(remove_spill(image, alpha), image)


def test_a_rim_leaning_away_from_the_backdrop_is_the_products_own_colour():
    image, alpha = _spilled((128, 128, 128), (40, 40, 220))
    image[:, 40:43] = (200, 120, 60)  # a blue piping along the edge of a grey garment
    assert np.allclose(remove_spill(image, alpha)[:, 40:43], image[:, 40:43], atol=1.0)


def test_a_product_too_thin_to_have_an_inside_is_left_as_it_is():
    image, alpha = _spilled((128, 128, 128), (40, 40, 220))
    alpha[:, 44:] = 0.0  # a strap four pixels wide: nothing deeper than the rim
    assert np.allclose(remove_spill(image, alpha), image)


def test_the_rim_grows_with_the_photo():
    assert spill_rim((400, 533)) == 3 and spill_rim((1500, 2000)) == 10
