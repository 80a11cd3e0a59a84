"""Scenes as a camera sees them: magnification, lens and pixel blur against their formulas, and
night-time light against the CIE's numbers."""

import math

import numpy as np
import pytest
from scipy.special import j1

from lowlight import colour, optics


def grating(shape: tuple[int, int], cycles: int, amplitude: float = 0.4) -> np.ndarray:
    """A vertical cosine grating with a whole number of ``cycles`` across the width."""
    x = np.arange(shape[1])
    row = 0.5 + amplitude * np.cos(2 * np.pi * cycles * x / shape[1])
    return np.broadcast_to(row, shape).copy()


def contrast(image: np.ndarray) -> float:
    row = image[image.shape[0] // 2]
    return (row.max() - row.min()) / 2


def expected_otf(f: float, fnumber: float, radius: float, shake: float = 0.0) -> float:
    """The chain's transfer at ``f`` cycles/pixel along x, written out from the textbooks."""
    cutoff = optics.PIXEL_PITCH_UM / (0.55 * fnumber)
    v = f / cutoff
    diffraction = 2 / math.pi * (math.acos(v) - v * math.sqrt(1 - v * v))
    x = 2 * math.pi * radius * f
    disk = 2 * j1(x) / x if x else 1.0
    return diffraction * disk * np.sinc(f) * np.sinc(shake * f)


@pytest.mark.parametrize(
    "cycles, scale, fnumber, radius, shake",
    [(12, 2.0, 8.0, 1.0, 0.0), (20, 1.5, 2.8, 0.0, 0.0), (30, 3.0, 11.0, 1.5, 0.0),
     (12, 2.0, 4.0, 0.5, 3.0)],
)  # fmt: skip
def test_a_gratings_contrast_after_magnification_and_lens_is_the_formulas(
    cycles, scale, fnumber, radius, shake
):
    photo = grating((64, 96), cycles)
    out_shape = (round(64 * scale), round(96 * scale))
    lens = optics.Optics(scale, fnumber, radius, shake, shake_angle=0.0)
    frame = optics.fourier_zoom(photo, out_shape, optics.transfer(out_shape, lens))
    f = cycles / out_shape[1]  # the grating's frequency on the sensor, cycles per pixel
    assert f == pytest.approx(cycles / 96 / scale)
    assert contrast(frame) == pytest.approx(0.4 * abs(expected_otf(f, fnumber, radius, shake)))
    assert frame.mean() == pytest.approx(0.5)  # light is neither made nor lost


def test_the_formulas_themselves():
    # diffraction: 1 at f = 0, 0 at the cutoff pitch / (lambda N); f/8 at Nyquist 0.67
    assert optics.diffraction_otf(np.array(0.0), 8.0) == pytest.approx(1.0)
    cutoff = optics.PIXEL_PITCH_UM / (optics.WAVELENGTH_UM * 8.0)
    assert optics.diffraction_otf(np.array(cutoff), 8.0) == pytest.approx(0.0, abs=1e-12)
    assert optics.diffraction_otf(np.array(0.5), 8.0) == pytest.approx(0.670, abs=1e-3)
    # the blur disk's first zero: 2 pi r f = 3.8317 (J1's first zero)
    assert optics.defocus_otf(np.array([3.8317 / (2 * np.pi * 1.5)]), 1.5)[0] == pytest.approx(
        0.0, abs=1e-4
    )
    assert pytest.approx(8.396, abs=1e-3) == optics.PIXEL_PITCH_UM


def test_a_frame_is_a_crop_at_full_detail_and_a_small_photo_is_magnified_more():
    rng = np.random.default_rng(0)
    photo = rng.uniform(0, 1, (300, 450, 3))
    window, scale = optics.place(photo, (128, 192), 2.0, rng)
    assert scale == 2.0 and window.shape == (64 + 2 * optics.MARGIN, 96 + 2 * optics.MARGIN, 3)
    # 300x450 photo pixels cannot fill 900x900 at 2x: the scale rises to 3
    window, scale = optics.place(photo, (900, 900), 2.0, rng)
    assert scale == 3.0 and window.shape[:2] == (300 + 2 * optics.MARGIN, 300 + 2 * optics.MARGIN)
    lens = optics.Optics(scale, 5.6, 0.5)
    frame = optics.image_on_sensor(window, (900, 900), lens)
    assert frame.shape == (900, 900, 3) and frame.min() >= 0.0
    assert frame.mean() == pytest.approx(photo[:, :300].mean(), abs=0.02)


def test_image_on_sensor_matches_the_formula_inside_the_frame():
    """The whole path (margin, magnification, crop): a grating's contrast in the frame."""
    window = np.repeat(grating((40 + 2 * optics.MARGIN, 112), 14)[..., None], 3, axis=2)
    lens = optics.Optics(2.0, 5.6, 0.8)
    frame = optics.image_on_sensor(window, (80, 192), lens)
    f = 14 / 112 / 2.0
    assert contrast(frame[..., 1]) == pytest.approx(0.4 * expected_otf(f, 5.6, 0.8), rel=0.01)


def test_drawn_optics_stay_in_their_ranges():
    rng = np.random.default_rng(3)
    draws = [optics.draw_optics(rng, (1.5, 4.0), (2.8, 11.0), (0.0, 1.5)) for _ in range(300)]
    assert {d.fnumber for d in draws} == {2.8, 4.0, 5.6, 8.0, 11.0}
    assert all(1.5 <= d.scale <= 4.0 and 0.0 <= d.defocus <= 1.5 for d in draws)
    assert all(d.shake == 0.0 for d in draws)
    # log-uniform: the geometric middle splits the draws in half
    assert np.mean([d.scale < math.sqrt(6.0) for d in draws]) == pytest.approx(0.5, abs=0.08)


def test_night_light_is_on_the_planckian_locus_or_a_sodium_lamp():
    # CIE standard illuminant A is a 2856 K blackbody: x 0.44757, y 0.40745 (CIE 15:2004)
    assert colour.planckian_xy(2856) == pytest.approx((0.44757, 0.40745), abs=1e-3)
    # a tint moves the light off the locus by Duv in CIE 1960 uv
    on, off = colour.planckian_xy(4000), colour.tinted_planckian_xy(4000, 0.006)
    assert np.linalg.norm(colour._uv(off) - colour._uv(on)) == pytest.approx(0.006, rel=1e-3)
    assert off[1] > on[1]  # positive Duv: greener
    rng = np.random.default_rng(0)
    lights = [colour.draw_night_light(rng, (2500, 7500), 0.2) for _ in range(1000)]
    sodium = [xy for name, xy in lights if name.startswith("sodium")]
    assert len(sodium) / len(lights) == pytest.approx(0.2, abs=0.04)
    assert set(sodium) == set(colour.SODIUM_XY)
    ccts = [float(name.split(" K")[0]) for name, _ in lights if " K" in name]
    assert min(ccts) >= 2500 and max(ccts) <= 7500
    with pytest.raises(ValueError, match="1667-25000 K"):
        colour.planckian_xy(1000)


def test_a_warm_light_lowers_blue_and_the_neutral_says_so():
    from lowlight import noise, synth

    sony = noise.load_profile("SonyA7S2")
    _, d65 = synth.scene_colour(sony)
    _, tungsten = synth.scene_colour(sony, colour.planckian_xy(2856))
    _, sodium = synth.scene_colour(sony, colour.SODIUM_XY[0])
    assert tungsten[2] < d65[2] / 1.8 and tungsten[0] > d65[0] * 1.5
    assert sodium[2] < tungsten[2] and sodium[0] > tungsten[0]
