"""Pick coordinates as RELION writes them (``*_autopick.star``) or as a JSON list."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import starfile
from numpy.typing import NDArray

from cryolive.engines.picking import Picks


def write_coordinates(path: Path, picks: Picks) -> None:
    """Write ``picks`` to ``path``: RELION coordinates for ``.star``, a JSON list for ``.json``.

    STAR: one data block with rlnCoordinateX/Y (pixels), rlnAutopickFigureOfMerit (score),
    rlnClassNumber and rlnAnglePsi (as relion_autopick writes). JSON: ``[{"x_px", "y_px",
    "score", "diameter_a"}, …]``.
    """
    if path.suffix == ".json":
        rows = [
            {"x_px": round(float(x), 2), "y_px": round(float(y), 2), "score": round(float(s), 3),
             "diameter_a": round(float(d), 1)}
            for x, y, s, d in zip(picks.x_px, picks.y_px, picks.scores, picks.diameters_a,
                                  strict=True)
        ]  # fmt: skip
        path.write_text(json.dumps(rows, indent=1))
        return
    if path.suffix != ".star":
        raise ValueError(f"path: coordinates go to .star or .json, got {path.name}")
    table = pd.DataFrame(
        {
            "rlnCoordinateX": picks.x_px.astype(np.float64).round(2),
            "rlnCoordinateY": picks.y_px.astype(np.float64).round(2),
            "rlnClassNumber": np.zeros(len(picks), dtype=np.int64),
            "rlnAutopickFigureOfMerit": picks.scores.astype(np.float64).round(4),
            "rlnAnglePsi": np.full(len(picks), -999.0),
        }
    )
    starfile.write({"": table}, path, overwrite=True)


def read_coordinates(path: Path) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """(x_px, y_px) from a RELION coordinate STAR file, a JSON list or a 2-column text file."""
    if not path.is_file():
        raise ValueError(f"coords: no such file {path}")
    try:
        if path.suffix == ".json":
            rows = json.loads(path.read_text())
            x = [float(r["x_px"]) for r in rows]
            y = [float(r["y_px"]) for r in rows]
        elif path.suffix == ".star":
            data = starfile.read(path, always_dict=True)
            table = next(t for t in data.values() if "rlnCoordinateX" in t)
            x, y = list(table["rlnCoordinateX"]), list(table["rlnCoordinateY"])
        else:
            values = np.loadtxt(path, ndmin=2)
            x, y = list(values[:, 0]), list(values[:, 1])
    except (KeyError, StopIteration, ValueError, TypeError) as exc:
        raise ValueError(f"coords: {path} holds no readable coordinates ({exc})") from exc
    return np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32)
