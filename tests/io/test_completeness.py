"""A movie counts as whole only when its structure proves it: every cut of a good file is
"incomplete" (wait), a file of the wrong kind is "invalid" (register it; the reader says why)."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest
import tifffile

from cryolive.io.completeness import check_movie
from cryolive.simulate._eer import EerWriter, encode_eer_frame

FRAMES = 6


def _frames() -> np.ndarray:
    return np.random.default_rng(1).poisson(1.0, (FRAMES, 24, 20)).astype(np.uint8)


def _tiff(path: Path, **options: object) -> Path:
    tifffile.imwrite(path, _frames(), **options)  # one page per frame
    return path


def _mrc(path: Path, extended: int = 0) -> Path:
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(_frames().astype(np.int16))
        if extended:
            mrc.set_extended_header(np.zeros(extended, dtype=np.uint8))
    return path


def _last_needed_byte(path: Path) -> int:
    """The end of the last byte a reader needs (tifffile may leave a few spare bytes after the
    last directory)."""
    if path.suffix == ".mrc":
        return path.stat().st_size
    with tifffile.TiffFile(path) as tif:
        big = tif.is_bigtiff
        ends = []
        for page in tif.pages:
            ends.append(
                page.offset + (8 + 20 * len(page.tags) + 8 if big else 2 + 12 * len(page.tags) + 4)
            )
            ends.extend(o + c for o, c in zip(page.dataoffsets, page.databytecounts, strict=True))
        return max(ends)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: _tiff(p / "m.tiff"),
        lambda p: _tiff(p / "m.tiff", compression="lzw", bigtiff=True),
        lambda p: _tiff(p / "m.tiff", tile=(16, 16)),
        lambda p: _mrc(p / "m.mrc"),
        lambda p: _mrc(p / "m.mrc", extended=4096),
    ],
)
def test_every_cut_of_a_whole_movie_is_incomplete(tmp_path: Path, make) -> None:
    path = make(tmp_path)
    whole = path.read_bytes()
    found = check_movie(path, expected_frames=FRAMES)
    assert found.complete and found.frames == FRAMES
    needed = _last_needed_byte(path)
    assert needed > len(whole) - 32  # a writer fills the file up to (about) its end
    step = max(1, needed // 97)
    for cut in [*range(0, needed, step), needed - 1]:
        path.write_bytes(whole[:cut])
        assert check_movie(path, expected_frames=FRAMES).state == "incomplete", cut


def test_fewer_frames_than_promised_waits_more_is_invalid(tmp_path: Path) -> None:
    path = _tiff(tmp_path / "m.tiff")
    short = check_movie(path, expected_frames=FRAMES + 4)
    assert short.state == "incomplete" and "6 of the 10 frames" in short.reason
    assert check_movie(path, expected_frames=FRAMES - 1).state == "invalid"
    assert check_movie(path).complete


def test_other_files_are_invalid(tmp_path: Path) -> None:
    text = tmp_path / "m.tiff"
    text.write_text("<html>not a movie</html>" * 50)
    assert check_movie(text).state == "invalid"
    plain = _tiff(tmp_path / "m.eer")  # a classic TIFF named .eer
    assert check_movie(plain).state == "invalid"
    with pytest.raises(ValueError, match="expected_frames"):
        check_movie(plain, expected_frames=0)


def eer_movie(path: Path, frames: int, *, seed: int = 2) -> Path:
    """A small EER movie of ``frames`` EER frames (64 x 64)."""
    rng = np.random.default_rng(seed)
    writer = EerWriter(path, (64, 64), metadata_xml="<metadata/>")
    for _ in range(frames):
        position = np.sort(rng.choice(64 * 64, size=40, replace=False)).astype(np.int64)
        sub = np.zeros(position.size, dtype=np.uint8)
        writer.write_frame(encode_eer_frame(position, sub, sub, n_pixels=64 * 64))
    writer.close()
    return path


def test_an_eer_movie_counts_its_eer_frames(tmp_path: Path) -> None:
    path = eer_movie(tmp_path / "m_EER.eer", 12)
    found = check_movie(path, expected_frames=3)  # EPU's fractions: not the EER frames
    assert found.complete and found.frames == 12
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - 7])
    assert check_movie(path).state == "incomplete"
