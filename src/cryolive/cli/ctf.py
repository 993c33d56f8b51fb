"""``cryolive ctf`` and ``cryolive ice``: one stage by hand on micrograph files, writing what
the services write (see :mod:`cryolive.io.outputs.ctf`)."""

from __future__ import annotations

from pathlib import Path

import typer

from cryolive.engines.ctf import CtfFitError, CtfSearch, Optics, estimate_ctf
from cryolive.engines.ice import IceThicknessError, estimate_ice_thickness
from cryolive.io.micrograph import MicrographReadError, read_micrograph
from cryolive.io.outputs.ctf import write_ctf_outputs, write_failure, write_ice_output


def _pixel_size(path: Path, given: float | None, header: float | None) -> float:
    size = given if given is not None else header
    if size is None:
        raise typer.BadParameter(f"{path}: no pixel size in the header; give --pixel-size")
    return size


def ctf_command(
    micrographs: list[Path] = typer.Argument(..., help="Motion-corrected micrographs (MRC)."),
    out: Path = typer.Option(..., "--out", help="Folder for the results."),
    pixel_size: float | None = typer.Option(None, help="Å/px; default: the MRC header's."),
    voltage: float = typer.Option(300.0, help="Acceleration voltage, kV."),
    cs: float = typer.Option(2.7, help="Spherical aberration, mm."),
    amp_contrast: float = typer.Option(0.07, help="Amplitude contrast fraction."),
    box: int | None = typer.Option(
        None, help="Tile size for the power spectrum, px; default about 512 Å."
    ),
    min_res: float = typer.Option(30.0, help="Lowest resolution fitted, Å."),
    max_res: float = typer.Option(5.0, help="Highest resolution fitted, Å."),
    min_defocus: float = typer.Option(3000.0, help="Lowest defocus searched, Å (underfocus +)."),
    max_defocus: float = typer.Option(50000.0, help="Highest defocus searched, Å."),
    max_astigmatism: float = typer.Option(2000.0, help="Largest astigmatism allowed, Å."),
    phase_shift: bool = typer.Option(False, "--phase-shift", help="Fit a phase-plate shift."),
) -> None:
    """Fit the CTF of each micrograph: JSON result, 1D curves and a diagnostic PNG."""
    try:
        search = CtfSearch(
            box_px=box,
            min_res_a=min_res,
            max_res_a=max_res,
            min_defocus_a=min_defocus,
            max_defocus_a=max_defocus,
            max_astigmatism_a=max_astigmatism,
            fit_phase_shift=phase_shift,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in micrographs:
        try:
            image, header_size = read_micrograph(path)
            optics = Optics(
                pixel_size_a=_pixel_size(path, pixel_size, header_size),
                voltage_kv=voltage,
                cs_mm=cs,
                amplitude_contrast=amp_contrast,
            )
            fit = estimate_ctf(image, optics=optics, search=search)
        except (MicrographReadError, CtfFitError, ValueError) as exc:
            failed += 1
            reason = getattr(exc, "reason", "bad-input")
            write_failure(out, path.stem, "ctf", micrograph=path, reason=reason, message=str(exc))
            typer.echo(f"{path}: failed: {exc}", err=True)
            continue
        write_ctf_outputs(fit, out, path.stem, micrograph=path, optics=optics, search=search)
        r = fit.result
        typer.echo(
            f"{path}: defocus U {r.defocus_u_a:.0f} Å V {r.defocus_v_a:.0f} Å angle "
            f"{r.astigmatism_angle_deg:.1f}° phase {r.phase_shift_deg:.1f}° cc {r.cc:.3f} "
            f"fit to {r.fit_resolution_a:.1f} Å"
        )
    if failed:
        raise typer.Exit(code=1)


def ice_command(
    micrographs: list[Path] = typer.Argument(..., help="Motion-corrected micrographs (MRC)."),
    out: Path = typer.Option(..., "--out", help="Folder for the results."),
    dose: float = typer.Option(..., help="Incident dose of the exposure, e/Å²."),
    pixel_size: float | None = typer.Option(None, help="Å/px; default: the MRC header's."),
    tiles: int = typer.Option(8, help="Tiles per side."),
) -> None:
    """Relative ice thickness ln(I0/I) of each micrograph (in counts): five-number summary."""
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in micrographs:
        try:
            image, header_size = read_micrograph(path)
            size = _pixel_size(path, pixel_size, header_size)
            incident = dose * size * size
            result = estimate_ice_thickness(
                image, incident_e_per_px=incident, pixel_size_a=size, tiles_per_side=tiles
            )
        except (MicrographReadError, IceThicknessError, ValueError) as exc:
            failed += 1
            reason = getattr(exc, "reason", "bad-input")
            write_failure(out, path.stem, "ice", micrograph=path, reason=reason, message=str(exc))
            typer.echo(f"{path}: failed: {exc}", err=True)
            continue
        write_ice_output(result, out, path.stem, micrograph=path, incident_e_per_px=incident)
        typer.echo(
            f"{path}: relative ice thickness median {result.median:.3f} "
            f"(q1 {result.q1:.3f}, q3 {result.q3:.3f})"
        )
    if failed:
        raise typer.Exit(code=1)
