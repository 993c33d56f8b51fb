"""The files the CTF and ice stages write for one micrograph (CLI and service alike).

For micrograph ``<stem>`` in ``out``:

- ``<stem>_ctf.json``: status (``ok``, ``not-trusted`` or ``failed``), the result (for
  ``not-trusted``: the best guess, never to be used) or the failure's reason in words, the
  optics and search used, and the other files' names;
- ``<stem>_ctf_curves.json``: 1D profiles (frequency Å⁻¹, data, fit, local cc) for plots;
- ``<stem>_ctf_diag.png``: the diagnostic spectrum, data left, model right (only over the
  fitted rings); a best guess is stamped NOT TRUSTED across its top;
- ``<stem>_ice.json``: status and the relative ice thickness summary.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cryolive.engines.ctf import CtfCurves, CtfFit, CtfSearch, Optics
from cryolive.engines.ice import IceThickness
from cryolive.io.png import write_png


def _write_json(path: Path, payload: dict[str, Any]) -> Path:
    path.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n")
    return path


# 5 x 7 glyphs of the stamp on a best guess's diagnostic PNG
_GLYPHS = {
    "N": ("X...X", "XX..X", "X.X.X", "X..XX", "X...X", "X...X", "X...X"),
    "O": (".XXX.", "X...X", "X...X", "X...X", "X...X", "X...X", ".XXX."),
    "T": ("XXXXX", "..X..", "..X..", "..X..", "..X..", "..X..", "..X.."),
    "R": ("XXXX.", "X...X", "X...X", "XXXX.", "X.X..", "X..X.", "X...X"),
    "U": ("X...X", "X...X", "X...X", "X...X", "X...X", "X...X", ".XXX."),
    "S": (".XXXX", "X....", "X....", ".XXX.", "....X", "....X", "XXXX."),
    "E": ("XXXXX", "X....", "X....", "XXXX.", "X....", "X....", "XXXXX"),
    "D": ("XXXX.", "X...X", "X...X", "X...X", "X...X", "X...X", "XXXX."),
    " ": (".....",) * 7,
}
STAMP = "NOT TRUSTED"


def stamp_not_trusted(image: NDArray[np.floating]) -> NDArray[np.float32]:
    """``image`` (y, x) in [0, 1] with a black band across its top reading NOT TRUSTED."""
    out = np.array(image, dtype=np.float32)
    cells = np.hstack(
        [
            np.array([[c == "X" for c in row] + [False] for row in _GLYPHS[ch]], dtype=bool)
            for ch in STAMP
        ]
    )
    scale = max(1, int(0.8 * out.shape[1]) // cells.shape[1])
    text = np.repeat(np.repeat(cells, scale, axis=0), scale, axis=1)
    h, w = text.shape
    pad = scale
    if h + 2 * pad > out.shape[0] or w > out.shape[1]:
        return out
    out[: h + 2 * pad] = 0.0
    x0 = (out.shape[1] - w) // 2
    out[pad : pad + h, x0 : x0 + w][text] = 1.0
    return out


def write_ctf_outputs(
    fit: CtfFit,
    out: Path,
    stem: str,
    *,
    micrograph: Path,
    optics: Optics,
    search: CtfSearch,
    not_trusted: str | None = None,
) -> Path:
    """Write the result JSON, curves JSON and diagnostic PNG; return the result JSON's path.

    ``not_trusted``: the reason, in words, that ``fit`` is only a best guess (a
    :class:`~cryolive.engines.ctf.CtfFitError`'s ``best_guess``); the JSON's status is then
    ``not-trusted`` with that reason, and the PNG is stamped NOT TRUSTED.
    """
    curves = out / f"{stem}_ctf_curves.json"
    diagnostic = out / f"{stem}_ctf_diag.png"
    _write_json(curves, fit.curves.to_dict())
    picture = fit.diagnostic if not_trusted is None else stamp_not_trusted(fit.diagnostic)
    write_png(diagnostic, picture)
    payload: dict[str, Any] = {
        "micrograph": str(micrograph),
        "status": "ok" if not_trusted is None else "not-trusted",
    }
    if not_trusted is not None:
        payload["reason"] = not_trusted
    payload |= {
        "result": fit.result.to_dict(),
        "optics": asdict(optics),
        "search": asdict(search),
        "files": {"curves": curves.name, "diagnostic": diagnostic.name},
    }
    return _write_json(out / f"{stem}_ctf.json", payload)


def write_failure(
    out: Path, stem: str, stage: str, *, micrograph: Path, reason: str, message: str
) -> Path:
    """Record a failed stage (``ctf`` or ``ice``) with a reason a person can act on."""
    return _write_json(
        out / f"{stem}_{stage}.json",
        {"micrograph": str(micrograph), "status": "failed", "reason": reason, "message": message},
    )


def write_ice_output(
    result: IceThickness, out: Path, stem: str, *, micrograph: Path, incident_e_per_px: float
) -> Path:
    """Write ``<stem>_ice.json``."""
    return _write_json(
        out / f"{stem}_ice.json",
        {
            "micrograph": str(micrograph),
            "status": "ok",
            "result": result.to_dict(),
            "incident_e_per_px": incident_e_per_px,
        },
    )


CURVES_MAX_BYTES = 4 * 1024 * 1024  # a profile is a few hundred points: a few kB
_CURVE_KEYS = ("frequency_per_a", "data", "fit", "cc")


@dataclass(frozen=True, kw_only=True)
class CtfProfile:
    """A micrograph's CTF profile as its files say: the curves, the fit's status
    (``ok`` or ``not-trusted``: a best guess, never to be used), the reason it is not trusted,
    and the fit resolution (Å) and mean defocus (Å, positive is underfocus) where known."""

    status: str
    reason: str | None
    fit_resolution_a: float | None
    defocus_a: float | None
    curves: CtfCurves


def _load(path: Path, what: str) -> Any:
    try:
        if path.stat().st_size > CURVES_MAX_BYTES:
            raise ValueError(f"{what}: larger than {CURVES_MAX_BYTES} bytes")
        return json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{what}: not readable JSON ({type(exc).__name__})") from exc


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)
    return float(value) if ok else None


def _curves(payload: Any) -> CtfCurves:
    if not isinstance(payload, dict) or any(k not in payload for k in _CURVE_KEYS):
        raise ValueError(f"curves: an object with {', '.join(_CURVE_KEYS)} expected")
    columns: dict[str, tuple[float, ...]] = {}
    for key in _CURVE_KEYS:
        values = payload[key]
        numbers = [_number(v) for v in values] if isinstance(values, list) else [None]
        if any(v is None for v in numbers):
            raise ValueError(f"curves: {key} must be a list of finite numbers")
        columns[key] = tuple(float(v) for v in numbers if v is not None)
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1 or lengths.pop() < 2:
        raise ValueError("curves: the four lists must have one length, at least 2")
    frequency = np.asarray(columns["frequency_per_a"])
    if frequency[0] < 0 or np.any(np.diff(frequency) <= 0):
        raise ValueError("curves: frequency_per_a must be non-negative and increasing")
    return CtfCurves(**columns)


def read_ctf_profile(curves: Path, summary: Path | None, *, recorded: bool) -> CtfProfile:
    """Read ``<stem>_ctf_curves.json`` and, where given, ``<stem>_ctf.json``.

    ``recorded``: whether the database holds the fit; without a summary file the status is
    then ``ok``, else ``not-trusted``. Raises ``ValueError`` naming the file and what is wrong
    with it (unreadable, not JSON, missing or non-finite values, a failed fit's summary).
    """
    profile = _curves(_load(curves, "curves"))
    if summary is None:
        status = "ok" if recorded else "not-trusted"
        return CtfProfile(
            status=status, reason=None, fit_resolution_a=None, defocus_a=None, curves=profile
        )
    payload = _load(summary, "summary")
    if not isinstance(payload, dict) or payload.get("status") not in ("ok", "not-trusted"):
        raise ValueError("summary: status must be ok or not-trusted")
    result = payload.get("result")
    if not isinstance(result, dict):
        raise ValueError("summary: no result")
    resolution, defocus = _number(result.get("fit_resolution_a")), _number(result.get("defocus_a"))
    if resolution is not None and resolution <= 0:
        raise ValueError("summary: fit_resolution_a must be positive")
    reason = payload.get("reason")
    return CtfProfile(
        status=str(payload["status"]),
        reason=reason if isinstance(reason, str) else None,
        fit_resolution_a=resolution,
        defocus_a=defocus,
        curves=profile,
    )
