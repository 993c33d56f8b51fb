"""The files the CTF and ice stages write for one micrograph (CLI and service alike).

For micrograph ``<stem>`` in ``out``:

- ``<stem>_ctf.json``: status (``ok``/``failed``), the result or the failure's reason,
  the optics and search used, and the other files' names;
- ``<stem>_ctf_curves.json``: 1D profiles (frequency Å⁻¹, data, fit, local cc) for plots;
- ``<stem>_ctf_diag.png``: the diagnostic spectrum, data left, model right;
- ``<stem>_ice.json``: status and the relative ice thickness summary.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cryolive.engines.ctf import CtfFit, CtfSearch, Optics
from cryolive.engines.ice import IceThickness
from cryolive.io.png import write_png


def _write_json(path: Path, payload: dict[str, Any]) -> Path:
    path.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n")
    return path


def write_ctf_outputs(
    fit: CtfFit, out: Path, stem: str, *, micrograph: Path, optics: Optics, search: CtfSearch
) -> Path:
    """Write the result JSON, curves JSON and diagnostic PNG; return the result JSON's path."""
    curves = out / f"{stem}_ctf_curves.json"
    diagnostic = out / f"{stem}_ctf_diag.png"
    _write_json(curves, fit.curves.to_dict())
    write_png(diagnostic, fit.diagnostic)
    return _write_json(
        out / f"{stem}_ctf.json",
        {
            "micrograph": str(micrograph),
            "status": "ok",
            "result": fit.result.to_dict(),
            "optics": asdict(optics),
            "search": asdict(search),
            "files": {"curves": curves.name, "diagnostic": diagnostic.name},
        },
    )


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
