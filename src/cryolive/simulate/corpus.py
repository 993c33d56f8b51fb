"""A corpus of bad input: movies, gains and metadata files that can never be processed.

Each case writes one movie (and what lies beside it) into a raw folder in the EPU layout, and
says at which stage the pipeline must record its failure: ``"register"`` (the watcher, for
metadata it cannot read or a name it refuses) or ``"motioncorr"`` (the movie or its gain cannot
be read or corrected). Used by the corpus test and the chaos benchmark::

    for index in range(len(KINDS)):
        case = write_case(index, visit / ("raw" if not needs_own_folder(index) else f"raw{index}"))

Cases whose fault is the raw folder's gain reference (``own_folder``) must each get a raw
folder of their own: the gain applies to every movie of its folder.

Notes
-----
An unreadable file cannot be made by ``chmod 000`` where the tests run as root (root reads it
anyway); the case ``permission_000`` still sets mode 000 but also fills the file with bytes
that are no movie, so it fails for root and for a user alike. A dangling symbolic link and a
named pipe stand for the files a user cannot open.
"""

from __future__ import annotations

import os
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import tifffile

from cryolive.simulate._layout import ImageRecord, epu_image_xml
from cryolive.simulate._writers import Pacer, write_gain_reference, write_mrc_movie

SHAPE = (64, 64)  # (y, x) pixels of the corpus' movies
FRAMES = 4
PIXEL_SIZE_A = 1.0


@dataclass(frozen=True)
class Case:
    """One bad input as written.

    Attributes
    ----------
    kind
        Name of the case (one of :data:`KINDS`).
    movie
        The movie path the failure is recorded against.
    stage
        Stage that must record the failure: ``"register"`` or ``"motioncorr"``.
    own_folder
        The fault is the raw folder's (its gain): the case needs a raw folder of its own.
    """

    kind: str
    movie: Path
    stage: str
    own_folder: bool = False


def _record(frames: int = FRAMES) -> ImageRecord:
    return ImageRecord(
        pixel_size_a=PIXEL_SIZE_A,
        voltage_kv=300.0,
        exposure_time_s=2.0,
        dose_e_per_a2=40.0,
        nominal_defocus_a=15000.0,
        magnification=105000,
        n_fractions=frames,
        shape_px=SHAPE,
        stage_um=(1.0, 2.0, 0.0),
        acquired_at=datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC),
        detector="Corpus",
    )


def _frames(rng: np.random.Generator, n: int = FRAMES, dtype: str = "uint8") -> np.ndarray:
    return rng.poisson(2.0, size=(n, *SHAPE)).astype(dtype)


def _tiff(path: Path, frames: np.ndarray, **options: object) -> None:
    tifffile.imwrite(path, frames, photometric="minisblack", metadata=None, **options)  # type: ignore[arg-type]


def _mrc(path: Path, frames: np.ndarray) -> None:
    write_mrc_movie(
        path,
        iter(frames),
        shape=frames.shape,
        dtype=frames.dtype,
        pixel_size_a=PIXEL_SIZE_A,
        pacer=Pacer(0.0),
    )


def _classic_tiff(ifd_at: int, entries: list[tuple[int, int, int, int]], tail: bytes) -> bytes:
    """A little-endian classic TIFF: header, ``tail`` bytes from offset 8, one IFD at
    ``ifd_at`` (which must follow ``tail``) whose next-IFD pointer is 0."""
    head = b"II" + struct.pack("<HI", 42, ifd_at) + tail
    head += b"\0" * (ifd_at - len(head))
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHII", tag, kind, count, value)
    return head + ifd + struct.pack("<I", 0)


def _strip_entries(
    width: int, height: int, offset: int, count: int
) -> list[tuple[int, int, int, int]]:
    return [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 16),
        (259, 3, 1, 5),  # LZW
        (262, 3, 1, 1),
        (273, 4, 1, offset),
        (277, 3, 1, 1),
        (278, 4, 1, height),
        (279, 4, 1, count),
    ]


def _mrc_header(nx: int, ny: int, nz: int, *, mode: int = 1, nsymbt: int = 0) -> bytes:
    header = bytearray(1024)
    struct.pack_into("<iiii", header, 0, nx, ny, nz, mode)
    struct.pack_into("<i", header, 92, nsymbt)
    header[208:212] = b"MAP "
    header[212:216] = bytes((0x44, 0x44, 0, 0))
    return bytes(header)


# Each writer makes the movie at ``path`` (and whatever else the case needs beside it) and
# returns the stage that must record the failure.
Writer = Callable[[Path, np.random.Generator], str]


def _zero_length(path: Path, rng: np.random.Generator) -> str:
    path.write_bytes(b"")
    return "motioncorr"


def _random_bytes(path: Path, rng: np.random.Generator) -> str:
    path.write_bytes(rng.bytes(4096))
    return "motioncorr"


def _text(path: Path, rng: np.random.Generator) -> str:
    path.write_text("<html><body>Service unavailable</body></html>\n")
    return "motioncorr"


def _truncated_tiff(path: Path, rng: np.random.Generator) -> str:
    _tiff(path, _frames(rng))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return "motioncorr"


def _truncated_tiff_header(path: Path, rng: np.random.Generator) -> str:
    path.write_bytes(b"II*\0\x08\0")
    return "motioncorr"


def _tiff_ifd_loop(path: Path, rng: np.random.Generator) -> str:
    data = bytearray(_classic_tiff(8, _strip_entries(*SHAPE, 0, 0)[:3], b""))
    struct.pack_into("<I", data, len(data) - 4, 8)  # the next directory is this one again
    path.write_bytes(bytes(data))
    return "motioncorr"


def _tiff_ifd_past_end(path: Path, rng: np.random.Generator) -> str:
    path.write_bytes(b"II" + struct.pack("<HI", 42, 10_000_000) + b"\0" * 64)
    return "motioncorr"


def _tiff_rgb(path: Path, rng: np.random.Generator) -> str:
    frames = rng.integers(0, 255, size=(FRAMES, *SHAPE, 3), dtype=np.uint8)
    tifffile.imwrite(path, frames, photometric="rgb", metadata=None)
    return "motioncorr"


def _tiff_mixed_shapes(path: Path, rng: np.random.Generator) -> str:
    with tifffile.TiffWriter(path) as tif:
        for n in range(FRAMES):
            shape = SHAPE if n % 2 == 0 else (SHAPE[0] // 2, SHAPE[1])
            tif.write(rng.poisson(2.0, size=shape).astype(np.uint8), photometric="minisblack")
    return "motioncorr"


def _tiff_huge_dimensions(path: Path, rng: np.random.Generator) -> str:
    # 60000 x 60000 16-bit pixels (7.2 GB decoded) from 16 bytes of LZW data.
    strip = rng.bytes(16)
    path.write_bytes(_classic_tiff(24, _strip_entries(60_000, 60_000, 8, len(strip)), strip))
    return "motioncorr"


def _tiff_corrupt_lzw(path: Path, rng: np.random.Generator) -> str:
    strip = rng.bytes(200)
    width, height = SHAPE
    path.write_bytes(_classic_tiff(208, _strip_entries(width, height, 8, len(strip)), strip))
    return "motioncorr"


def _tiff_float64(path: Path, rng: np.random.Generator) -> str:
    _tiff(path, _frames(rng, dtype="float64"))
    return "motioncorr"


def _tiff_complex(path: Path, rng: np.random.Generator) -> str:
    _tiff(path, _frames(rng, dtype="complex64"))
    return "motioncorr"


def _tiff_nan(path: Path, rng: np.random.Generator) -> str:
    frames = _frames(rng, dtype="float32")
    frames[1, 10:20, 10:20] = np.nan
    _tiff(path, frames)
    return "motioncorr"


def _tiff_inf(path: Path, rng: np.random.Generator) -> str:
    frames = _frames(rng, dtype="float32")
    frames[2, 5, 5] = np.inf
    _tiff(path, frames)
    return "motioncorr"


def _tiff_fewer_frames(path: Path, rng: np.random.Generator) -> str:
    _tiff(path, _frames(rng, n=FRAMES - 2))  # the metadata promises FRAMES
    return "motioncorr"


def _tiff_blank(path: Path, rng: np.random.Generator) -> str:
    _tiff(path, np.zeros((FRAMES, *SHAPE), dtype=np.uint8))
    return "motioncorr"


def _directory(path: Path, rng: np.random.Generator) -> str:
    path.mkdir()
    (path / "frame0.tiff").write_bytes(b"")
    return "motioncorr"


def _dangling_link(path: Path, rng: np.random.Generator) -> str:
    path.symlink_to(path.with_name("gone-" + path.name))
    return "motioncorr"


def _named_pipe(path: Path, rng: np.random.Generator) -> str:
    os.mkfifo(path)
    return "motioncorr"


def _permission_000(path: Path, rng: np.random.Generator) -> str:
    path.write_bytes(rng.bytes(1024))  # root reads past mode 000: the content fails too
    path.chmod(0)
    return "motioncorr"


def _mrc_truncated(path: Path, rng: np.random.Generator) -> str:
    _mrc(path, _frames(rng, dtype="int16"))
    data = path.read_bytes()
    path.write_bytes(data[: 1024 + len(data) // 3])
    return "motioncorr"


def _mrc_header_only(path: Path, rng: np.random.Generator) -> str:
    path.write_bytes(_mrc_header(*SHAPE, FRAMES)[:512])
    return "motioncorr"


def _mrc_absurd_dimensions(path: Path, rng: np.random.Generator) -> str:
    path.write_bytes(_mrc_header(2**30, 2**30, 2**20) + rng.bytes(256))
    return "motioncorr"


def _mrc_negative_dimensions(path: Path, rng: np.random.Generator) -> str:
    path.write_bytes(_mrc_header(-64, 64, 4) + rng.bytes(64 * 64 * 8))
    return "motioncorr"


def _mrc_unknown_mode(path: Path, rng: np.random.Generator) -> str:
    path.write_bytes(_mrc_header(*SHAPE, FRAMES, mode=99) + rng.bytes(64 * 64 * 8))
    return "motioncorr"


def _mrc_complex(path: Path, rng: np.random.Generator) -> str:
    n_bytes = SHAPE[0] * SHAPE[1] * FRAMES * 8
    path.write_bytes(_mrc_header(*SHAPE, FRAMES, mode=4) + rng.bytes(n_bytes))
    return "motioncorr"


def _mrc_huge_extended_header(path: Path, rng: np.random.Generator) -> str:
    path.write_bytes(_mrc_header(*SHAPE, FRAMES, nsymbt=2**31 - 1) + rng.bytes(4096))
    return "motioncorr"


def _mrc_nan(path: Path, rng: np.random.Generator) -> str:
    frames = _frames(rng, dtype="float32")
    frames[0, 0, :] = np.nan
    _mrc(path, frames)
    return "motioncorr"


def _eer_random(path: Path, rng: np.random.Generator) -> str:
    path.write_bytes(b"II+\0" + rng.bytes(4092))  # a BigTIFF mark, then noise
    return "motioncorr"


def _eer_plain_tiff(path: Path, rng: np.random.Generator) -> str:
    _tiff(path, _frames(rng), bigtiff=True)
    return "motioncorr"


def _eer_truncated(path: Path, rng: np.random.Generator) -> str:
    from cryolive.simulate._eer import EerWriter, encode_eer_frame

    writer = EerWriter(path, SHAPE, metadata_xml="<metadata/>")
    n_pixels = SHAPE[0] * SHAPE[1]
    for _ in range(8):
        position = np.sort(rng.choice(n_pixels, size=50, replace=False)).astype(np.int64)
        sub = np.zeros(position.size, dtype=np.uint8)
        writer.write_frame(encode_eer_frame(position, sub, sub, n_pixels=n_pixels))
    writer.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return "motioncorr"


def _good_movie_with_gain(gain: Callable[[np.random.Generator], np.ndarray | bytes]) -> Writer:
    def write(path: Path, rng: np.random.Generator) -> str:
        _tiff(path, _frames(rng))
        raw = _raw_folder(path)
        made = gain(rng)
        if isinstance(made, bytes):
            (raw / "gain.mrc").write_bytes(made)
        else:
            with warnings.catch_warnings():  # mrcfile warns of the NaN planted on purpose
                warnings.simplefilter("ignore", RuntimeWarning)
                write_gain_reference(raw / "gain.mrc", made, pixel_size_a=PIXEL_SIZE_A)
        return "motioncorr"

    return write


def _raw_folder(movie: Path) -> Path:
    return movie.parents[3]  # raw/Images-Disc1/GridSquare_*/Data/movie


def _bad_xml(text: str, *, good_movie: bool = True) -> Writer:
    def write(path: Path, rng: np.random.Generator) -> str:
        _tiff(path, _frames(rng))
        _metadata_path(path).write_text(text)
        return "register"

    return write


def _metadata_path(movie: Path) -> Path:
    stem = movie.stem.removesuffix("_fractions").removesuffix("_EER")
    return movie.with_name(stem + ".xml")


_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">\n'
        for n in range(1, 10)
    )
    + "]>\n<MicroscopeImage>&lol9;</MicroscopeImage>\n"
)
_QUADRATIC = (
    f'<?xml version="1.0"?>\n<!DOCTYPE q [<!ENTITY a "{"x" * 50_000}">]>\n'
    f"<MicroscopeImage>{'&a;' * 2_000}</MicroscopeImage>\n"
)
_EXTERNAL = (
    '<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]>\n'
    "<MicroscopeImage><name>&secret;</name></MicroscopeImage>\n"
)


def _good_xml_with(old: str, new: str) -> Writer:
    def write(path: Path, rng: np.random.Generator) -> str:
        _tiff(path, _frames(rng))
        text = epu_image_xml(_record())
        assert old in text, old
        _metadata_path(path).write_text(text.replace(old, new, 1))
        return "register"

    return write


def _xml_binary(path: Path, rng: np.random.Generator) -> str:
    _tiff(path, _frames(rng))
    _metadata_path(path).write_bytes(rng.bytes(2048))
    return "register"


def _xml_truncated(path: Path, rng: np.random.Generator) -> str:
    _tiff(path, _frames(rng))
    text = epu_image_xml(_record())
    _metadata_path(path).write_text(text[: len(text) // 2])
    return "register"


def _mdoc(text: str | bytes) -> Writer:
    def write(path: Path, rng: np.random.Generator) -> str:
        _tiff(path, _frames(rng))
        mdoc = path.with_name(path.name + ".mdoc")
        if isinstance(text, bytes):
            mdoc.write_bytes(text)
        else:
            mdoc.write_text(text)
        return "register"

    return write


def _newline_name(path: Path, rng: np.random.Generator) -> str:
    _tiff(path, _frames(rng))
    return "register"


# kind -> (file name suffix, writer, the gain is the fault)
_CASES: dict[str, tuple[str, Writer, bool]] = {
    "tiff_zero_length": (".tiff", _zero_length, False),
    "tiff_random_bytes": (".tiff", _random_bytes, False),
    "tiff_html_text": (".tiff", _text, False),
    "tiff_truncated": (".tiff", _truncated_tiff, False),
    "tiff_truncated_header": (".tiff", _truncated_tiff_header, False),
    "tiff_directory_loop": (".tiff", _tiff_ifd_loop, False),
    "tiff_directory_past_end": (".tiff", _tiff_ifd_past_end, False),
    "tiff_rgb": (".tiff", _tiff_rgb, False),
    "tiff_mixed_frame_shapes": (".tiff", _tiff_mixed_shapes, False),
    "tiff_huge_dimensions": (".tiff", _tiff_huge_dimensions, False),
    "tiff_corrupt_compression": (".tiff", _tiff_corrupt_lzw, False),
    "tiff_float64": (".tiff", _tiff_float64, False),
    "tiff_complex": (".tiff", _tiff_complex, False),
    "tiff_nan_frames": (".tiff", _tiff_nan, False),
    "tiff_inf_frames": (".tiff", _tiff_inf, False),
    "tiff_fewer_frames_than_metadata": (".tiff", _tiff_fewer_frames, False),
    "tiff_blank": (".tiff", _tiff_blank, False),
    "directory_named_like_a_movie": (".tiff", _directory, False),
    "dangling_symlink": (".tiff", _dangling_link, False),
    "named_pipe": (".tiff", _named_pipe, False),
    "permission_000": (".tiff", _permission_000, False),
    "unicode_name_random_bytes": ("_ünï©ødé_µ.tiff", _random_bytes, False),
    "newline_in_name": ("_new\nline.tiff", _newline_name, False),
    "mrc_zero_length": (".mrc", _zero_length, False),
    "mrc_random_bytes": (".mrc", _random_bytes, False),
    "mrc_truncated": (".mrc", _mrc_truncated, False),
    "mrc_header_only": (".mrc", _mrc_header_only, False),
    "mrc_absurd_dimensions": (".mrc", _mrc_absurd_dimensions, False),
    "mrc_negative_dimensions": (".mrc", _mrc_negative_dimensions, False),
    "mrc_unknown_mode": (".mrc", _mrc_unknown_mode, False),
    "mrc_complex": (".mrc", _mrc_complex, False),
    "mrc_huge_extended_header": (".mrc", _mrc_huge_extended_header, False),
    "mrc_nan_frames": (".mrc", _mrc_nan, False),
    "eer_random_bytes": (".eer", _eer_random, False),
    "eer_plain_tiff": (".eer", _eer_plain_tiff, False),
    "eer_truncated": (".eer", _eer_truncated, False),
    "gain_wrong_shape": (
        ".tiff",
        _good_movie_with_gain(lambda rng: np.ones((48, 80), np.float32)),
        True,
    ),
    "gain_random_bytes": (".tiff", _good_movie_with_gain(lambda rng: rng.bytes(3000)), True),
    "gain_nan": (
        ".tiff",
        _good_movie_with_gain(lambda rng: np.full(SHAPE, np.nan, np.float32)),
        True,
    ),
    "gain_zero": (".tiff", _good_movie_with_gain(lambda rng: np.zeros(SHAPE, np.float32)), True),
    "xml_truncated": (".tiff", _xml_truncated, False),
    "xml_zero_length": (".tiff", _bad_xml(""), False),
    "xml_random_bytes": (".tiff", _xml_binary, False),
    "xml_billion_laughs": (".tiff", _bad_xml(_LAUGHS), False),
    "xml_quadratic_blowup": (".tiff", _bad_xml(_QUADRATIC), False),
    "xml_external_entity": (".tiff", _bad_xml(_EXTERNAL), False),
    "xml_wrong_root": (".tiff", _bad_xml("<html><body>EPU</body></html>"), False),
    "xml_no_microscope_data": (
        ".tiff",
        _bad_xml('<MicroscopeImage xmlns="http://x"><name>x</name></MicroscopeImage>'),
        False,
    ),
    "xml_negative_pixel_size": (
        ".tiff",
        _good_xml_with("<numericValue>1e-10</numericValue>", "<numericValue>-1e-10</numericValue>"),
        False,
    ),
    "xml_nan_voltage": (
        ".tiff",
        _good_xml_with("<AccelerationVoltage>300000", "<AccelerationVoltage>NaN"),
        False,
    ),
    "mdoc_random_bytes": (".tiff", _mdoc(bytes(range(128, 256)) * 8), False),
    "mdoc_not_key_value": (".tiff", _mdoc("[ZValue = 0]\nthis is no mdoc\n"), False),
    "mdoc_missing_keys": (".tiff", _mdoc("[ZValue = 0]\nMagnification = 105000\n"), False),
    "mdoc_bad_numbers": (
        ".tiff",
        _mdoc("[ZValue = 0]\nPixelSpacing = abc\nVoltage = 300\nExposureTime = 2\n"),
        False,
    ),
}

KINDS: tuple[str, ...] = tuple(_CASES)


def needs_own_folder(index: int) -> bool:
    """Whether case ``index`` must have a raw folder of its own (its fault is the gain)."""
    return _CASES[KINDS[index]][2]


def write_case(index: int, raw_dir: Path, *, seed: int = 0) -> Case:
    """Write bad-input case ``index`` (of :data:`KINDS`) into ``raw_dir`` (EPU layout).

    The movie goes to ``raw_dir/Images-Disc1/GridSquare_9/Data/`` with a valid EPU ``.xml``
    beside it unless the metadata is the fault. Returns what was written and the stage that
    must record its failure.
    """
    kind = KINDS[index]
    suffix, writer, own = _CASES[kind]
    data = raw_dir / "Images-Disc1" / "GridSquare_9" / "Data"
    data.mkdir(parents=True, exist_ok=True)
    movie = data / f"FoilHole_9{index:03d}_Data_1_1_20261206_120000_fractions{suffix}"
    rng = np.random.default_rng(seed + index)
    stage = writer(movie, rng)
    xml = _metadata_path(movie)
    if not xml.exists() and not movie.with_name(movie.name + ".mdoc").exists():
        xml.write_text(epu_image_xml(_record()))
    return Case(kind, movie, stage, own)
