import time

import numpy as np
import pytest

from lowlight import scenes


def test_dead_leaves_is_an_srgb_image_of_the_size():
    image = scenes.dead_leaves((64, 96), np.random.default_rng(0))
    assert image.shape == (64, 96, 3) and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0


def test_dead_leaves_is_deterministic_per_seed_and_varies_between_seeds():
    a = scenes.dead_leaves((64, 96), np.random.default_rng(5))
    b = scenes.dead_leaves((64, 96), np.random.default_rng(5))
    c = scenes.dead_leaves((64, 96), np.random.default_rng(6))
    assert np.array_equal(a, b)
    assert np.abs(a - c).mean() > 0.1


def test_dead_leaves_have_variety_of_colours_edges_and_textures():
    image = scenes.dead_leaves((256, 384), np.random.default_rng(1))
    # Many leaves: many distinct colours, every channel spread over its range.
    assert len(np.unique(image.reshape(-1, 3).round(2), axis=0)) > 2000
    assert (image.reshape(-1, 3).std(axis=0) > 0.15).all()
    # Flat leaves (zero gradient) and textured ones (small, non-zero steps) both appear.
    step = np.abs(np.diff(image, axis=1)).max(axis=2)
    assert 0.2 < (step == 0).mean() < 0.9
    assert ((step > 0) & (step < 0.05)).mean() > 0.05
    # Sharp occlusion edges.
    assert (step > 0.3).mean() > 0.01


def test_leaves_occlude_the_ones_before_them():
    centres = np.array([[10.0, 10.0], [10.0, 16.0]])
    labels = scenes.leaf_labels((20, 30), centres, np.array([6.0, 4.0]))
    assert labels[10, 10] == 0 and labels[10, 14] == 1 and labels[10, 17] == 1
    assert labels[0, 29] == -1


def test_radii_follow_the_power_law():
    radii = scenes.power_law_radii(200_000, 2.0, 200.0, np.random.default_rng(2))
    assert radii.min() >= 2.0 and radii.max() <= 200.0
    # density ~ r**-3: P(r < 2 r_min) = (1 - 1/4) / (1 - (r_min / r_max)**2)
    assert (radii < 4.0).mean() == pytest.approx(0.75 / (1 - 1e-4), abs=0.005)


def test_dead_leaves_are_quick():
    start = time.perf_counter()
    scenes.dead_leaves((512, 768), np.random.default_rng(3))
    assert time.perf_counter() - start < 1.5  # ~0.3 s on one core
