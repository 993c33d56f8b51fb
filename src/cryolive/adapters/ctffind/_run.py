"""Running the ``ctffind`` program (CTFFIND 4.1 or 5) on one micrograph, when installed.

CTFFIND asks its questions on standard input; :func:`ctffind_answers` builds the answers in
the order CTFFIND 4.1.14+ and 5 ask them (no movie, no known astigmatism, the fast search, an
optional phase-shift search, no tilt or thickness determination, no expert options).
"""

from __future__ import annotations

import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryolive.adapters.ctffind._parse import (
    CtffindOutputError,
    CtffindProfiles,
    CtffindResults,
    parse_ctffind_profiles,
    parse_ctffind_results,
)
from cryolive.engines.ctf import CtfSearch, Optics
from cryolive.errors import InternalError


class CtffindNotFoundError(InternalError, FileNotFoundError):
    """The ``ctffind`` executable is not installed where it was looked for."""


class CtffindRunError(InternalError, RuntimeError):
    """``ctffind`` ran but failed; the message holds the end of its output."""


@dataclass(frozen=True)
class CtffindRun:
    """Parsed output of one CTFFIND run and the files it wrote."""

    results: CtffindResults
    profiles: tuple[CtffindProfiles, ...]
    diagnostic_path: Path
    results_path: Path
    profiles_path: Path


def ctffind_answers(
    micrograph: Path,
    diagnostic: Path,
    *,
    optics: Optics,
    search: CtfSearch,
    version: int = 5,
) -> list[str]:
    """Answers to CTFFIND's questions, one per line, in the order it asks them.

    Parameters
    ----------
    micrograph : Path
        Input micrograph (MRC), a single image.
    diagnostic : Path
        Output diagnostic image (``.mrc``); CTFFIND writes ``<stem>.txt`` and
        ``<stem>_avrot.txt`` beside it.
    optics, search
        Pixel size (Å), voltage (kV), Cs (mm), amplitude contrast; box, resolution band (Å),
        defocus range and step (Å), phase-shift search (degrees here, radians for CTFFIND).
    version : int
        4 or 5 (CTFFIND 5 also asks whether to determine the sample thickness).
    """
    if version not in (4, 5):
        raise ValueError(f"version must be 4 or 5, got {version}")
    answers = [
        str(micrograph),
        str(diagnostic),
        f"{optics.pixel_size_a:g}",
        f"{optics.voltage_kv:g}",
        f"{optics.cs_mm:g}",
        f"{optics.amplitude_contrast:g}",
        str(search.box_for(optics.pixel_size_a)),
        f"{search.min_res_a:g}",
        f"{search.max_res_a:g}",
        f"{search.min_defocus_a:g}",
        f"{search.max_defocus_a:g}",
        f"{search.defocus_step_a:g}",
        "no",  # astigmatism known?
        "no",  # slower, exhaustive search?
        "no",  # restraint on astigmatism?
    ]
    if search.fit_phase_shift:
        answers += [
            "yes",
            f"{math.radians(search.min_phase_shift_deg):.4f}",
            f"{math.radians(search.max_phase_shift_deg):.4f}",
            f"{math.radians(search.phase_shift_step_deg):.4f}",
        ]
    else:
        answers += ["no", "no"]  # no phase shift; then: determine sample tilt?
    if version == 5:
        answers.append("no")  # determine sample thickness?
    answers.append("no")  # expert options?
    return answers


def run_ctffind(
    micrograph: Path,
    diagnostic: Path,
    *,
    optics: Optics,
    search: CtfSearch,
    executable: str = "ctffind",
    version: int = 5,
    timeout_s: float = 600.0,
) -> CtffindRun:
    """Run CTFFIND on ``micrograph`` and parse what it wrote.

    Raises
    ------
    CtffindNotFoundError
        ``executable`` is neither a path to a program nor on ``PATH``.
    CtffindRunError
        CTFFIND exited with an error or timed out.
    CtffindOutputError
        Its output files are missing or unreadable.
    """
    program = shutil.which(executable)
    if program is None:
        raise CtffindNotFoundError(
            f"ctffind executable {executable!r} not found on PATH; install CTFFIND 4.1/5 "
            "or use cryolive's own CTF engine"
        )
    answers = ctffind_answers(micrograph, diagnostic, optics=optics, search=search, version=version)
    try:
        done = subprocess.run(
            [program],
            input="\n".join(answers) + "\n",
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CtffindRunError(f"{program} timed out after {timeout_s} s") from exc
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-2000:]
        raise CtffindRunError(f"{program} exited with {done.returncode}:\n{tail}")
    results_path = diagnostic.with_suffix(".txt")
    profiles_path = diagnostic.with_name(diagnostic.stem + "_avrot.txt")
    return read_ctffind_output(diagnostic, results_path, profiles_path)


def read_ctffind_output(diagnostic: Path, results_path: Path, profiles_path: Path) -> CtffindRun:
    """Parse the two text files a CTFFIND run wrote."""
    for path in (results_path, profiles_path):
        if not path.is_file():
            raise CtffindOutputError(f"{path}: CTFFIND did not write it")
    return CtffindRun(
        results=parse_ctffind_results(results_path.read_text(), source=str(results_path)),
        profiles=parse_ctffind_profiles(profiles_path.read_text(), source=str(profiles_path)),
        diagnostic_path=diagnostic,
        results_path=results_path,
        profiles_path=profiles_path,
    )
