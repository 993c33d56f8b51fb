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
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cryolive.engines.ctf import CtfFit, CtfSearch, Optics
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
