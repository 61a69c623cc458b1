"""The bundled sample batch must be reproducible and its advertised defects must be measurable."""

from __future__ import annotations

import io
import re
from collections import Counter

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from imaging.samples import (
    BACKGROUNDS,
    PRODUCTS,
    TRAITS,
    SampleImage,
    SampleSpec,
    add_noise,
    blur,
    darken,
    downscale,
    generate_sample_batch,
    plan_sample_batch,
    render_product_scene,
    render_sample,
)

U8 = npt.NDArray[np.uint8]
DEFECTS = frozenset({"blurred", "dark", "noisy", "small"})
PIL_FORMAT = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}


@pytest.fixture(scope="module")
def batch() -> list[SampleImage]:
    return generate_sample_batch()


@pytest.fixture(scope="module")
def specs() -> list[SampleSpec]:
    return plan_sample_batch()


def decode(sample: SampleImage) -> U8:
    with Image.open(io.BytesIO(sample.data)) as picture:
        rgb = np.asarray(picture.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])


def gray(image: U8) -> U8:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def laplacian_variance(image: U8) -> float:
    return float(cv2.Laplacian(gray(image), cv2.CV_64F).var())


def high_frequency_energy(image: U8) -> float:
    g = gray(image).astype(np.float32)
    return float(np.mean((g - cv2.GaussianBlur(g, (0, 0), 1.5)) ** 2))


def border_edge_density(image: U8) -> float:
    edges = cv2.Canny(gray(image), 100, 200) > 0
    h, w = edges.shape
    bh, bw = int(h * 0.15), int(w * 0.15)
    border = np.ones_like(edges)
    border[bh : h - bh, bw : w - bw] = False
    return float(edges[border].mean())


def with_trait(samples: list[SampleImage], trait: str) -> list[SampleImage]:
    return [s for s in samples if trait in s.traits]


def test_same_seed_gives_byte_identical_batch(batch: list[SampleImage]) -> None:
    again = generate_sample_batch(seed=7)
    assert [(s.name, s.data, s.description, s.traits) for s in again] == [
        (s.name, s.data, s.description, s.traits) for s in batch
    ]


def test_different_seeds_give_different_pixels(batch: list[SampleImage]) -> None:
    other = generate_sample_batch(seed=8, count=3)
    assert [s.name for s in other] == [s.name for s in batch[:3]]
    assert all(a.data != b.data for a, b in zip(other, batch[:3], strict=True))


def test_each_sample_depends_only_on_seed_and_position(batch: list[SampleImage]) -> None:
    assert [s.data for s in generate_sample_batch(count=2)] == [s.data for s in batch[:2]]


def test_default_count_and_unique_safe_names(batch: list[SampleImage]) -> None:
    assert len(batch) == 12
    names = [s.name for s in batch]
    assert len(set(names)) == len(names)
    for name in names:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*\.(jpg|png|webp)", name), name


def test_larger_batches_cycle_with_unique_names() -> None:
    names = [spec.name for spec in plan_sample_batch(seed=3, count=30)]
    assert len(set(names)) == 30
    assert plan_sample_batch(count=0) == []


def test_bad_arguments_are_refused() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        plan_sample_batch(seed=-1)
    with pytest.raises(ValueError):
        plan_sample_batch(count=-1)
    with pytest.raises(ValueError):
        render_product_scene(rng, product="sofa", background="white", width=400, height=400)
    with pytest.raises(ValueError):
        render_product_scene(rng, product="mug", background="beach", width=400, height=400)


def test_every_sample_decodes_and_format_matches_extension(batch: list[SampleImage]) -> None:
    for sample in batch:
        with Image.open(io.BytesIO(sample.data)) as picture:
            assert picture.format == PIL_FORMAT[sample.name.rsplit(".", 1)[1]], sample.name
            picture.load()
            assert picture.mode == "RGB"
    formats = Counter(sample.name.rsplit(".", 1)[1] for sample in batch)
    assert formats["png"] >= 1
    assert formats["webp"] >= 1
    assert formats["jpg"] > len(batch) / 2


def test_traits_descriptions_and_names_agree(batch: list[SampleImage]) -> None:
    for sample in batch:
        assert set(sample.traits) <= set(TRAITS)
        assert ("plain" in sample.traits) != ("cluttered" in sample.traits)
        assert ("sharp" in sample.traits) != ("blurred" in sample.traits)
        assert not {"dark", "bright"} <= set(sample.traits)
        assert "\n" not in sample.description
        assert sample.description
        for trait in ("cluttered", "blurred", "dark", "noisy", "small"):
            if trait in sample.traits:
                assert trait in sample.description, sample


def test_default_batch_covers_every_trait(batch: list[SampleImage]) -> None:
    counts = Counter(t for s in batch for t in s.traits)
    plain_sharp = [s for s in batch if {"plain", "sharp"} <= set(s.traits)]
    excellent = [s for s in plain_sharp if "bright" in s.traits and not DEFECTS & set(s.traits)]
    assert len(plain_sharp) >= 3
    assert len(excellent) >= 2
    assert counts["cluttered"] >= 3
    assert counts["blurred"] >= 2
    assert counts["dark"] >= 2
    assert counts["noisy"] >= 2
    assert counts["small"] >= 2
    assert any(len(DEFECTS & set(s.traits)) >= 2 for s in batch)
    assert any("cluttered" in s.traits and DEFECTS & set(s.traits) for s in batch)


def test_blurred_samples_lose_most_laplacian_variance(
    batch: list[SampleImage], specs: list[SampleSpec]
) -> None:
    for sample, spec in zip(batch, specs, strict=True):
        if "blurred" in sample.traits:
            sharp_twin = render_sample(spec, skip={"blurred"})
            assert laplacian_variance(decode(sample)) < 0.2 * laplacian_variance(sharp_twin)


def test_dark_samples_are_underexposed(batch: list[SampleImage]) -> None:
    for sample in with_trait(batch, "dark"):
        assert gray(decode(sample)).mean() < 70, sample.name
    for sample in with_trait(batch, "bright"):
        assert gray(decode(sample)).mean() > 150, sample.name


def test_noisy_samples_have_more_high_frequency_energy(
    batch: list[SampleImage], specs: list[SampleSpec]
) -> None:
    for sample, spec in zip(batch, specs, strict=True):
        if "noisy" in sample.traits:
            clean_twin = render_sample(spec, skip={"noisy"})
            assert high_frequency_energy(decode(sample)) > 3 * high_frequency_energy(clean_twin)


def test_small_samples_have_a_short_side_below_500(batch: list[SampleImage]) -> None:
    for sample in batch:
        short = min(decode(sample).shape[:2])
        if "small" in sample.traits:
            assert 300 <= short < 500, sample.name
        else:
            assert short >= 800, sample.name


def test_cluttered_backgrounds_have_busier_borders(
    batch: list[SampleImage], specs: list[SampleSpec]
) -> None:
    pristine = {spec.name: border_edge_density(render_sample(spec, skip=TRAITS)) for spec in specs}
    cluttered = [pristine[s.name] for s in with_trait(batch, "cluttered")]
    plain = [pristine[s.name] for s in with_trait(batch, "plain")]
    assert min(cluttered) > 2 * max(plain)
    as_shipped = {s.name: border_edge_density(decode(s)) for s in batch}
    clean = [s for s in batch if not {"blurred", "dark", "noisy"} & set(s.traits)]
    busy = [as_shipped[s.name] for s in clean if "cluttered" in s.traits]
    calm = [as_shipped[s.name] for s in clean if "plain" in s.traits]
    assert busy
    assert calm
    assert min(busy) > 2 * max(calm)


@pytest.mark.parametrize("product", PRODUCTS)
@pytest.mark.parametrize("background", BACKGROUNDS)
def test_every_product_renders_on_every_background(product: str, background: str) -> None:
    scene = render_product_scene(
        np.random.default_rng(5), product=product, background=background, width=360, height=320
    )
    assert scene.shape == (320, 360, 3)
    assert scene.dtype == np.uint8
    assert float(scene[100:220, 120:240].std()) > 8.0, "no product in the middle"


def test_scene_is_deterministic_given_the_generator_seed() -> None:
    def draw(seed: int) -> U8:
        return render_product_scene(
            np.random.default_rng(seed), product="bottle", background="desk", width=400, height=400
        )

    assert np.array_equal(draw(1), draw(1))
    assert not np.array_equal(draw(1), draw(2))


def test_degradation_helpers_keep_type_and_do_what_they_say() -> None:
    scene = render_product_scene(
        np.random.default_rng(3), product="mug", background="wood", width=400, height=360
    )
    blurred = blur(scene, 3.0)
    dark = darken(scene, 0.25)
    noisy = add_noise(scene, np.random.default_rng(0), 12.0)
    small = downscale(scene, 200)
    for out in (blurred, dark, noisy, small):
        assert out.dtype == np.uint8
        assert out.ndim == 3
    assert blurred.shape == dark.shape == noisy.shape == scene.shape
    assert small.shape == (200, 222, 3)
    assert laplacian_variance(blurred) < 0.2 * laplacian_variance(scene)
    assert gray(dark).mean() < 0.3 * gray(scene).mean()
    assert high_frequency_energy(noisy) > high_frequency_energy(scene)
    assert np.array_equal(noisy, add_noise(scene, np.random.default_rng(0), 12.0))
    assert downscale(small, 400).shape == small.shape
