"""Movies read back pixel for pixel; damaged files give MovieReadError saying what is wrong."""

from __future__ import annotations

import os
from pathlib import Path

import imagecodecs
import mrcfile
import numpy as np
import pytest
import tifffile

from cryolive.io import MovieReadError
from cryolive.io.movies import movie_frame_count, read_movie
from cryolive.simulate._eer import EerWriter, encode_eer_frame, spread_counts, write_eer_fractions
from cryolive.simulate._writers import Pacer, write_mrc_movie, write_tiff_movie


@pytest.fixture
def counts() -> np.ndarray:
    return np.random.default_rng(0).poisson(1.5, size=(5, 48, 64)).astype(np.uint8)


def test_tiff_round_trip_is_exact_lzw_one_page_per_frame(
    tmp_path: Path, counts: np.ndarray
) -> None:
    path = tmp_path / "m_fractions.tiff"
    write_tiff_movie(path, iter(counts), n_frames=5, pacer=Pacer(0))
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages) == 5
        assert all(p.compression == tifffile.COMPRESSION.LZW for p in tif.pages)
    np.testing.assert_array_equal(read_movie(path, expected_frames=5), counts)
    assert movie_frame_count(path) == 5


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_mrc_round_trip_keeps_values(tmp_path: Path, counts: np.ndarray, dtype: type) -> None:
    path = tmp_path / "m.mrc"
    data = counts.astype(dtype)
    write_mrc_movie(
        path, iter(data), shape=data.shape, dtype=np.dtype(dtype), pixel_size_a=1.1, pacer=Pacer(0)
    )
    with mrcfile.open(path, permissive=False) as mrc:
        assert mrc.voxel_size.x == pytest.approx(1.1)
        np.testing.assert_array_equal(mrc.data, data)
    frames = read_movie(path)
    np.testing.assert_array_equal(frames, data)
    assert (frames.dtype == np.float32) == (dtype is np.float32)


def test_eer_decodes_through_tifffile_to_the_planted_events(
    tmp_path: Path, counts: np.ndarray
) -> None:
    path = tmp_path / "m_EER.eer"
    writer = EerWriter(path, counts.shape[1:], metadata_xml="<metadata></metadata>")
    write_eer_fractions(writer, iter(counts), frames_per_fraction=10, rng=np.random.default_rng(1))
    writer.close()
    with tifffile.TiffFile(path) as tif:
        assert tif.is_eer
        events = tif.asarray()
    assert events.shape == (50, 48, 64) and events.max() == 1
    np.testing.assert_array_equal(events.reshape(5, 10, 48, 64).sum(axis=1), counts)
    np.testing.assert_array_equal(read_movie(path, eer_group=10), counts)
    eight_k = read_movie(path, eer_group=10, eer_upsampling=2)
    assert eight_k.shape == (5, 96, 128)
    np.testing.assert_array_equal(eight_k.reshape(5, 48, 2, 64, 2).sum(axis=(2, 4)), counts)
    assert read_movie(path, eer_group=20).shape == (2, 48, 64)


def test_eer_sub_pixel_positions_are_the_planted_ones() -> None:
    rng = np.random.default_rng(2)
    positions = np.sort(rng.choice(16 * 16, size=40, replace=False))
    sx, sy = rng.integers(0, 4, 40), rng.integers(0, 4, 40)
    strip = encode_eer_frame(positions, sx, sy, n_pixels=256)
    image = imagecodecs.eer_decode(strip, (64, 64), 7, 2, 2, superres=2)
    ys, xs = np.nonzero(image)
    expected = sorted(zip((positions // 16) * 4 + sy, (positions % 16) * 4 + sx, strict=True))
    assert sorted(zip(ys, xs, strict=True)) == expected


def test_spreading_keeps_every_count_and_at_most_one_event_per_frame() -> None:
    counts = np.random.default_rng(3).poisson(3.0, size=(32, 32)).astype(np.uint8)
    frame, position = spread_counts(counts, 8, np.random.default_rng(4))
    assert np.all(np.diff(frame.astype(int)) >= 0)
    assert (
        np.bincount(position, minlength=counts.size).reshape(32, 32).tolist()
        == np.minimum(counts, 8).tolist()
    )
    keys = frame.astype(np.int64) * counts.size + position
    assert np.unique(keys).size == keys.size


def test_missing_zero_byte_and_unknown_files(tmp_path: Path) -> None:
    with pytest.raises(MovieReadError, match="no such file"):
        read_movie(tmp_path / "absent.tiff")
    (tmp_path / "empty.tiff").write_bytes(b"")
    with pytest.raises(MovieReadError, match="zero-byte"):
        read_movie(tmp_path / "empty.tiff")
    (tmp_path / "movie.dm4").write_bytes(b"x" * 10)
    with pytest.raises(MovieReadError, match="unknown movie suffix"):
        read_movie(tmp_path / "movie.dm4")
    (tmp_path / "folder.tiff").mkdir()
    with pytest.raises(MovieReadError, match="not a regular file"):
        read_movie(tmp_path / "folder.tiff")


@pytest.mark.parametrize("name", ["garbage.tiff", "garbage.mrc", "garbage.eer"])
def test_garbage_bytes_are_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(5).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(MovieReadError):
        read_movie(path, eer_group=1)


def test_truncated_files_say_truncated(tmp_path: Path, counts: np.ndarray) -> None:
    tiff, mrc, eer = tmp_path / "a.tiff", tmp_path / "a.mrc", tmp_path / "a.eer"
    write_tiff_movie(tiff, iter(counts), n_frames=5, pacer=Pacer(0))
    write_mrc_movie(
        mrc,
        iter(counts),
        shape=counts.shape,
        dtype=np.dtype(np.uint8),
        pixel_size_a=1.0,
        pacer=Pacer(0),
    )
    writer = EerWriter(eer, counts.shape[1:], metadata_xml="<metadata></metadata>")
    write_eer_fractions(writer, iter(counts), frames_per_fraction=4, rng=np.random.default_rng(6))
    writer.close()
    for path in (tiff, mrc, eer):
        os.truncate(path, int(path.stat().st_size * 0.6))
        with pytest.raises(MovieReadError, match=r"truncated|not a readable"):
            read_movie(path, eer_group=4)


def test_wrong_frame_count_and_bad_parameters(tmp_path: Path, counts: np.ndarray) -> None:
    path = tmp_path / "a.tiff"
    write_tiff_movie(path, iter(counts), n_frames=5, pacer=Pacer(0))
    with pytest.raises(MovieReadError, match="has 5 frames but its metadata promises 6"):
        read_movie(path, expected_frames=6)
    with pytest.raises(ValueError, match="eer_upsampling"):
        read_movie(path, eer_upsampling=3)
    with pytest.raises(ValueError, match="eer_group"):
        read_movie(path, eer_group=0)
    eer = tmp_path / "b.eer"
    writer = EerWriter(eer, (8, 8), metadata_xml="<metadata></metadata>")
    writer.write_frame(encode_eer_frame(np.array([3]), np.array([0]), np.array([0]), n_pixels=64))
    writer.close()
    with pytest.raises(MovieReadError, match="sets no eer_grouping"):
        read_movie(eer)
    with pytest.raises(MovieReadError, match="fewer than eer_group"):
        read_movie(eer, eer_group=2)


def test_a_plain_tiff_is_not_an_eer(tmp_path: Path, counts: np.ndarray) -> None:
    path = tmp_path / "fake.eer"
    tifffile.imwrite(path, counts)
    with pytest.raises(MovieReadError, match="not an EER"):
        read_movie(path, eer_group=1)


def test_unreadable_file_is_reported_as_a_permission_problem(
    tmp_path: Path, counts: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.tiff"
    write_tiff_movie(path, iter(counts), n_frames=5, pacer=Pacer(0))

    def refuse(self: Path, *args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(MovieReadError, match="permission denied"):
        read_movie(path)
