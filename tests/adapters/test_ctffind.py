"""CTFFIND adapter: real CTFFIND 5.0.2 output is read exactly; broken output, a missing
binary and a failing run give clear errors; the answers CTFFIND is fed are in its order."""

from __future__ import annotations

import math
import stat
from pathlib import Path

import pytest

from cryolive.adapters.ctffind import (
    CtffindNotFoundError,
    CtffindOutputError,
    CtffindRunError,
    ctffind_answers,
    parse_ctffind_profiles,
    parse_ctffind_results,
    run_ctffind,
)
from cryolive.engines.ctf import CtfSearch, Optics

STEM = "m01_15000_14000_30_diag"


def test_reads_real_ctffind5_results(ctffind5_dir: Path) -> None:
    results = parse_ctffind_results((ctffind5_dir / f"{STEM}.txt").read_text())
    assert results.version == "5.0.2"
    assert (results.pixel_size_a, results.voltage_kv, results.cs_mm) == (1.0, 300.0, 2.7)
    assert (results.amplitude_contrast, results.box_px) == (0.07, 512)
    assert (results.min_res_a, results.max_res_a) == (30.0, 5.0)
    (row,) = results.rows
    assert row.defocus_1_a == pytest.approx(14999.703125)
    assert row.defocus_2_a == pytest.approx(14005.196289)
    assert row.azimuth_deg == pytest.approx(29.963158)
    assert row.cc == pytest.approx(0.879527)
    assert row.fit_resolution_a == pytest.approx(2.620438)
    assert row.thickness_a == 0.0
    ctf = results.ctf_result()
    # The README's truth: U 15000 Å, V 14000 Å, angle 30°.
    assert ctf.defocus_u_a == pytest.approx(15000, abs=10)
    assert ctf.defocus_v_a == pytest.approx(14000, abs=10)
    assert ctf.astigmatism_angle_deg == pytest.approx(30, abs=0.5)
    assert ctf.significance is None


def test_reads_real_ctffind5_profiles(ctffind5_dir: Path) -> None:
    (profiles,) = parse_ctffind_profiles((ctffind5_dir / f"{STEM}_avrot.txt").read_text())
    assert len(profiles.frequency_per_a) == 363
    assert profiles.frequency_per_a[0] == 0.0
    assert profiles.frequency_per_a[1] == pytest.approx(0.001393)
    lengths = {len(getattr(profiles, f)) for f in profiles.__dataclass_fields__}
    assert lengths == {363}


def test_swapped_defoci_keep_cryolive_conventions() -> None:
    text = (
        "# Output from CTFFind version 4.1.14, run on x\n"
        "# Pixel size: 1.0 Angstroms ; acceleration voltage: 300.0 keV ; spherical "
        "aberration: 2.70 mm ; amplitude contrast: 0.07\n"
        "# Box size: 512 pixels ; min. res.: 30.0 Angstroms ; max. res.: 5.0 Angstroms\n"
        "1 14000 15000 120 1.5707963 0.5 4.0\n"
    )
    ctf = parse_ctffind_results(text).ctf_result()
    assert (ctf.defocus_u_a, ctf.defocus_v_a) == (15000, 14000)
    assert ctf.astigmatism_angle_deg == pytest.approx(30.0)
    assert ctf.phase_shift_deg == pytest.approx(90.0)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda t: "", "header"),
        (lambda t: "\n".join(t.splitlines()[:5]), "no result rows"),
        (lambda t: t.replace("Box size: 512", "Box size: x"), "box_px"),
        (lambda t: t.rstrip("\n") + " 7.0\n", "columns"),
        (lambda t: t.replace("0.879527", "abc"), "not a row of numbers"),
        (lambda t: t.replace("0.879527", "nan"), "non-finite"),
    ],
)
def test_broken_results_are_refused(ctffind5_dir: Path, mangle: object, message: str) -> None:
    text = (ctffind5_dir / f"{STEM}.txt").read_text()
    with pytest.raises(CtffindOutputError, match=message):
        parse_ctffind_results(mangle(text))  # type: ignore[operator]


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda t: "# only a header\n", "multiple of 6"),
        (lambda t: "\n".join(t.splitlines()[:-1]), "multiple of 6"),
        (lambda t: t.rstrip("\n") + " 1.0\n", "unequal"),
        (lambda t: t.replace("0.001393", "0.00x"), "not a row of numbers"),
    ],
)
def test_broken_profiles_are_refused(ctffind5_dir: Path, mangle: object, message: str) -> None:
    text = (ctffind5_dir / f"{STEM}_avrot.txt").read_text()
    with pytest.raises(CtffindOutputError, match=message):
        parse_ctffind_profiles(mangle(text))  # type: ignore[operator]


def test_answers_follow_ctffind_questions() -> None:
    optics = Optics(pixel_size_a=1.06, voltage_kv=200.0, cs_mm=2.7, amplitude_contrast=0.1)
    search = CtfSearch(min_res_a=25.0, max_res_a=4.0, min_defocus_a=4000, max_defocus_a=40000)
    answers = ctffind_answers(Path("in.mrc"), Path("out.mrc"), optics=optics, search=search)
    assert answers[:12] == [
        "in.mrc", "out.mrc", "1.06", "200", "2.7", "0.1", "480", "25", "4", "4000", "40000", "100",
    ]  # fmt: skip
    # The automatic box is about 512 Å: 480 px of 1.06 Å.
    # astigmatism known, exhaustive, restraint, phase shift, tilt, thickness, expert options
    assert answers[12:] == ["no"] * 7
    v4 = ctffind_answers(Path("a"), Path("b"), optics=optics, search=search, version=4)
    assert len(v4) == len(answers) - 1
    phased = ctffind_answers(
        Path("a"),
        Path("b"),
        optics=optics,
        search=CtfSearch(fit_phase_shift=True, max_phase_shift_deg=90, phase_shift_step_deg=15),
    )
    assert phased[15:19] == ["yes", "0.0000", f"{math.pi / 2:.4f}", f"{math.radians(15):.4f}"]
    assert phased[19:] == ["no", "no"]  # thickness, expert options: no tilt question
    with pytest.raises(ValueError, match="version"):
        ctffind_answers(Path("a"), Path("b"), optics=optics, search=search, version=3)


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CtffindNotFoundError, match="not found"):
        run_ctffind(
            tmp_path / "m.mrc",
            tmp_path / "m_diag.mrc",
            optics=Optics(),
            search=CtfSearch(),
            executable="ctffind-not-installed-here",
        )


def _fake_ctffind(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-ctffind"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_runs_an_installed_ctffind_and_reads_its_output(tmp_path: Path, ctffind5_dir: Path) -> None:
    # A stand-in for the binary: checks it is fed 19 answers and writes real CTFFIND output.
    fake = _fake_ctffind(
        tmp_path,
        f"""
set -e
n=0; diag=""
while read -r line; do n=$((n+1)); [ $n -eq 2 ] && diag="$line"; done
[ $n -eq 19 ] || {{ echo "got $n answers" >&2; exit 3; }}
stem="${{diag%.mrc}}"
cp {ctffind5_dir}/{STEM}.txt "$stem.txt"
cp {ctffind5_dir}/{STEM}_avrot.txt "${{stem}}_avrot.txt"
""",
    )
    run = run_ctffind(
        tmp_path / "m.mrc",
        tmp_path / "m_diag.mrc",
        optics=Optics(),
        search=CtfSearch(),
        executable=fake,
    )
    assert run.results.rows[0].defocus_1_a == pytest.approx(14999.703125)
    assert len(run.profiles) == 1
    assert run.results_path == tmp_path / "m_diag.txt"


def test_a_failing_or_silent_ctffind_is_a_clear_error(tmp_path: Path) -> None:
    failing = _fake_ctffind(tmp_path, "echo 'Error: cannot open in.mrc' >&2\nexit 1\n")
    with pytest.raises(CtffindRunError, match="cannot open"):
        run_ctffind(
            tmp_path / "m.mrc",
            tmp_path / "d.mrc",
            optics=Optics(),
            search=CtfSearch(),
            executable=failing,
        )
    silent = _fake_ctffind(tmp_path, "cat > /dev/null\nexit 0\n")
    with pytest.raises(CtffindOutputError, match="did not write"):
        run_ctffind(
            tmp_path / "m.mrc",
            tmp_path / "d.mrc",
            optics=Optics(),
            search=CtfSearch(),
            executable=silent,
        )
