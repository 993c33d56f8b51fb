"""Readers of CTFFIND 4/5 output: the results table (``*.txt``) and 1D profiles
(``*_avrot.txt``)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from cryolive.engines.ctf import CtfResult
from cryolive.errors import BadInputError


class CtffindOutputError(BadInputError):
    """A CTFFIND output file that cannot be read; the message says where and why."""


@dataclass(frozen=True, kw_only=True)
class CtffindRow:
    """One micrograph's line of CTFFIND's results table.

    Defocus in Å (positive underfocus; ``defocus_1_a`` along the azimuth), azimuth in
    degrees, phase shift in radians as CTFFIND writes it, fit resolution in Å. CTFFIND 5 adds
    tilt axis/angle (degrees) and sample thickness (Å); they are None for CTFFIND 4.
    """

    micrograph: int
    defocus_1_a: float
    defocus_2_a: float
    azimuth_deg: float
    phase_shift_rad: float
    cc: float
    fit_resolution_a: float
    tilt_axis_deg: float | None = None
    tilt_angle_deg: float | None = None
    thickness_a: float | None = None


@dataclass(frozen=True, kw_only=True)
class CtffindResults:
    """A CTFFIND results table: header values and one row per micrograph."""

    version: str
    pixel_size_a: float
    voltage_kv: float
    cs_mm: float
    amplitude_contrast: float
    box_px: int
    min_res_a: float
    max_res_a: float
    rows: tuple[CtffindRow, ...]

    def ctf_result(self, index: int = 0) -> CtfResult:
        """Row ``index`` in cryolive's conventions (U >= V, angle in [0, 180), degrees)."""
        row = self.rows[index]
        u, v, angle = row.defocus_1_a, row.defocus_2_a, row.azimuth_deg
        if v > u:
            u, v, angle = v, u, angle + 90.0
        return CtfResult(
            defocus_u_a=u,
            defocus_v_a=v,
            astigmatism_angle_deg=angle % 180.0,
            phase_shift_deg=math.degrees(row.phase_shift_rad),
            cc=row.cc,
            fit_resolution_a=row.fit_resolution_a,
            significance=None,
            box_px=self.box_px,
            pixel_size_a=self.pixel_size_a,
            min_res_a=self.min_res_a,
            max_res_a=self.max_res_a,
        )


@dataclass(frozen=True, kw_only=True)
class CtffindProfiles:
    """One micrograph's 1D profiles from ``*_avrot.txt`` (all the same length).

    frequency_per_a (Å⁻¹), rotational average without and with astigmatism correction, CTF
    fit, cross-correlation of fit and spectrum, and twice the SD of the correlation expected
    from noise.
    """

    frequency_per_a: tuple[float, ...]
    rotational_average: tuple[float, ...]
    equiphase_average: tuple[float, ...]
    fit: tuple[float, ...]
    cc: tuple[float, ...]
    noise_2sigma: tuple[float, ...]


_HEADER = {
    "version": re.compile(r"CTFFind version (\S+)", re.I),
    "pixel_size_a": re.compile(r"Pixel size:\s*([-\d.eE+]+)"),
    "voltage_kv": re.compile(r"acceleration voltage:\s*([-\d.eE+]+)"),
    "cs_mm": re.compile(r"spherical aberration:\s*([-\d.eE+]+)"),
    "amplitude_contrast": re.compile(r"amplitude contrast:\s*([-\d.eE+]+)"),
    "box_px": re.compile(r"Box size:\s*(\d+)"),
    "min_res_a": re.compile(r"min\. res\.:\s*([-\d.eE+]+)"),
    "max_res_a": re.compile(r"max\. res\.:\s*([-\d.eE+]+)"),
}


def _floats(line: str, where: str) -> list[float]:
    try:
        values = [float(x) for x in line.split()]
    except ValueError as exc:
        raise CtffindOutputError(f"{where}: not a row of numbers: {line[:80]!r}") from exc
    if not all(math.isfinite(v) for v in values):
        raise CtffindOutputError(f"{where}: non-finite number in {line[:80]!r}")
    return values


def parse_ctffind_results(text: str, *, source: str = "CTFFIND results") -> CtffindResults:
    """Parse the text of CTFFIND's results table (the ``.txt`` next to the diagnostic image).

    Raises
    ------
    CtffindOutputError
        Missing header values, no rows, or a row that is not 7 (CTFFIND 4) or 10 (CTFFIND 5)
        numbers.
    """
    comments = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    header: dict[str, str] = {}
    for key, pattern in _HEADER.items():
        found = pattern.search(comments)
        if found is None:
            raise CtffindOutputError(f"{source}: header has no readable {key}")
        header[key] = found.group(1)
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        values = _floats(line, f"{source} line {number}")
        if len(values) not in (7, 10):
            raise CtffindOutputError(
                f"{source} line {number}: {len(values)} columns, expected 7 (CTFFIND 4) "
                "or 10 (CTFFIND 5)"
            )
        extra = values[7:] if len(values) == 10 else [None, None, None]
        rows.append(
            CtffindRow(
                micrograph=int(values[0]),
                defocus_1_a=values[1],
                defocus_2_a=values[2],
                azimuth_deg=values[3],
                phase_shift_rad=values[4],
                cc=values[5],
                fit_resolution_a=values[6],
                tilt_axis_deg=extra[0],
                tilt_angle_deg=extra[1],
                thickness_a=extra[2],
            )
        )
    if not rows:
        raise CtffindOutputError(f"{source}: no result rows")
    try:
        return CtffindResults(
            version=header["version"].rstrip(","),
            pixel_size_a=float(header["pixel_size_a"]),
            voltage_kv=float(header["voltage_kv"]),
            cs_mm=float(header["cs_mm"]),
            amplitude_contrast=float(header["amplitude_contrast"]),
            box_px=int(header["box_px"]),
            min_res_a=float(header["min_res_a"]),
            max_res_a=float(header["max_res_a"]),
            rows=tuple(rows),
        )
    except ValueError as exc:
        raise CtffindOutputError(f"{source}: unreadable header value ({exc})") from exc


def parse_ctffind_profiles(
    text: str, *, source: str = "CTFFIND profiles"
) -> tuple[CtffindProfiles, ...]:
    """Parse ``*_avrot.txt``: six lines of numbers per micrograph.

    Raises
    ------
    CtffindOutputError
        No data, a number of data lines that is not a multiple of six, unequal lengths, or a
        line that is not numbers.
    """
    lines = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.startswith("#")
    ]
    if not lines or len(lines) % 6:
        raise CtffindOutputError(
            f"{source}: {len(lines)} data lines, expected a positive multiple of 6"
        )
    out = []
    for start in range(0, len(lines), 6):
        block = [tuple(_floats(line, f"{source} line {n}")) for n, line in lines[start : start + 6]]
        if len({len(values) for values in block}) != 1 or not block[0]:
            raise CtffindOutputError(
                f"{source} lines {lines[start][0]}-{lines[start + 5][0]}: profiles of unequal "
                "or zero length"
            )
        out.append(
            CtffindProfiles(
                frequency_per_a=block[0],
                rotational_average=block[1],
                equiphase_average=block[2],
                fit=block[3],
                cc=block[4],
                noise_2sigma=block[5],
            )
        )
    return tuple(out)
