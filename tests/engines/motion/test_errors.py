"""Unusable movies and bad parameters give a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from cryolive.engines.motion import UnusableMovieError, correct_motion


def _frames(n: int = 4, shape: tuple[int, int] = (128, 128)) -> np.ndarray:
    return np.random.default_rng(0).poisson(1.0, size=(n, *shape)).astype(np.float32)


def _run(frames: np.ndarray, **settings: object) -> None:
    correct_motion(frames, pixel_size_a=1.0, dose_per_frame_e_per_a2=1.0, **settings)  # type: ignore[arg-type]


def test_nan_pixels_are_reported_with_the_frame() -> None:
    frames = _frames()
    frames[2, 10:18, 20:28] = np.nan
    with pytest.raises(UnusableMovieError, match="frame 2 has 64 NaN") as info:
        _run(frames)
    assert info.value.reason == "non-finite"


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        (_frames(n=1), "too-few-frames"),
        (np.zeros((4, 128, 128), dtype=np.uint8), "empty"),
        (_frames()[0], "shape"),
        (_frames(shape=(32, 32)), "shape"),
    ],
)
def test_unusable_movies_name_the_reason(frames: np.ndarray, reason: str) -> None:
    with pytest.raises(UnusableMovieError) as info:
        _run(frames)
    assert info.value.reason == reason


def test_a_gain_of_the_wrong_orientation_is_refused() -> None:
    with pytest.raises(UnusableMovieError, match="wrong orientation"):
        _run(_frames(shape=(128, 96)), gain=np.ones((96, 128), dtype=np.float32))


@pytest.mark.parametrize(
    ("settings", "name"),
    [
        ({"pixel_size_a": 0.0}, "pixel_size_a"),
        ({"dose_per_frame_e_per_a2": -1.0}, "dose_per_frame_e_per_a2"),
        ({"patches": (0, 5)}, "patches"),
        ({"tile_px": 8}, "tile_px"),
        ({"max_iterations": 0}, "max_iterations"),
    ],
)
def test_bad_parameters_name_themselves(settings: dict[str, object], name: str) -> None:
    arguments: dict[str, object] = {"pixel_size_a": 1.0, "dose_per_frame_e_per_a2": 1.0}
    arguments.update(settings)
    with pytest.raises(ValueError, match=name):
        correct_motion(_frames(), **arguments)  # type: ignore[arg-type]
