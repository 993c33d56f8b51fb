"""``cryolive ctf`` and ``cryolive ice``: one stage by hand on micrograph files, writing what
the services write (see :mod:`cryolive.io.outputs.ctf`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cryolive.engines.ctf import CtfFitError, CtfResult, CtfSearch, Optics, estimate_ctf
from cryolive.engines.ice import IceThicknessError, estimate_ice_thickness
from cryolive.io.micrograph import MicrographReadError, read_micrograph
from cryolive.io.outputs.ctf import write_ctf_outputs, write_failure, write_ice_output
from cryolive.params import Acquisition, CtfParameters

# The pipeline's defaults (cryolive.params), so a stage by hand does what a run does.
_CTF = CtfParameters()
_ACQUISITION = Acquisition()


class _NoPixelSize(ValueError):
    """A micrograph whose header holds no pixel size, and none was given."""


def _pixel_size(path: Path, given: float | None, header: float | None) -> float:
    size = given if given is not None else header
    if size is None:
        raise _NoPixelSize(
            f"{path.name}: its header holds no pixel size; give one with --pixel-size"
        )
    return size


def _unfit_search(shape: tuple[int, ...], pixel_size_a: float, search: CtfSearch) -> str | None:
    """Why ``search`` cannot be used on this micrograph, in the words of the options; or None."""
    if search.max_res_a < 2 * pixel_size_a:
        return (
            f"the highest resolution to fit ({search.max_res_a:g} Å, --max-res) is finer than "
            f"this micrograph holds: at {pixel_size_a:g} Å per pixel its limit (Nyquist) is "
            f"{2 * pixel_size_a:g} Å"
        )
    box = search.box_for(pixel_size_a, shape)
    if min(shape) < box:
        return (
            f"the micrograph ({shape[1]} x {shape[0]} pixels) is smaller than the tiles its "
            f"power spectrum is averaged over ({box} pixels, --box)"
        )
    return None


@dataclass(frozen=True)
class _Row:
    name: str
    status: str  # "ok", "not trusted" or "failed"
    result: CtfResult | None
    reason: str = ""


def _table(rows: list[_Row]) -> Table:
    table = Table(title=f"CTF of {len(rows)} micrographs")
    for name, justify in (
        ("micrograph", "left"),
        ("defocus Å", "right"),
        ("astigmatism Å", "right"),
        ("angle °", "right"),
        ("fit resolution Å", "right"),
        ("status", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    colour = {"ok": "green", "not trusted": "yellow", "failed": "red"}
    for row in rows:
        r = row.result
        numbers = (
            [
                f"{r.defocus_a:.0f}",
                f"{r.astigmatism_a:.0f}",
                f"{r.astigmatism_angle_deg:.1f}",
                f"{r.fit_resolution_a:.1f}",
            ]
            if r is not None
            else ["-"] * 4
        )
        table.add_row(row.name, *numbers, f"[{colour[row.status]}]{row.status}[/]")
    return table


def ctf_command(
    micrographs: list[Path] = typer.Argument(..., help="Motion-corrected micrographs (MRC)."),
    out: Path = typer.Option(..., "--out", help="Folder for the results."),
    pixel_size: float | None = typer.Option(None, help="Å/px; default: the MRC header's."),
    voltage: float = typer.Option(_ACQUISITION.voltage_kv, help="Acceleration voltage, kV."),
    cs: float = typer.Option(_CTF.cs_mm, help="Spherical aberration, mm."),
    amp_contrast: float = typer.Option(_CTF.amplitude_contrast, help="Amplitude contrast."),
    box: int | None = typer.Option(
        None, help="Tile size for the power spectrum, px; default about 512 Å."
    ),
    min_res: float = typer.Option(_CTF.min_resolution_a, help="Lowest resolution fitted, Å."),
    max_res: float = typer.Option(_CTF.max_resolution_a, help="Highest resolution fitted, Å."),
    min_defocus: float = typer.Option(
        _CTF.min_defocus_a, help="Lowest defocus searched, Å (underfocus +)."
    ),
    max_defocus: float = typer.Option(_CTF.max_defocus_a, help="Highest defocus searched, Å."),
    defocus_step: float = typer.Option(100.0, help="Step of the defocus search, Å."),
    max_astigmatism: float = typer.Option(2000.0, help="Largest astigmatism allowed, Å."),
    known_astigmatism: float | None = typer.Option(
        None, help="A known astigmatism (U - V, Å) held fixed: only the defocus is fitted."
    ),
    known_astigmatism_angle: float = typer.Option(
        0.0, help="Angle of the known astigmatism's U axis, degrees from +x."
    ),
    phase_shift: bool = typer.Option(False, "--phase-shift", help="Fit a phase-plate shift."),
    min_phase_shift: float = typer.Option(
        0.0, help="Lowest phase shift searched, degrees (without --phase-shift: the one held)."
    ),
    max_phase_shift: float = typer.Option(180.0, help="Highest phase shift searched, degrees."),
    phase_shift_step: float = typer.Option(10.0, help="Step of the phase-shift search, degrees."),
) -> None:
    """Fit the CTF of each micrograph: JSON result, 1D curves and a diagnostic PNG, then a
    table of all of them. A micrograph that fails does not stop the others; the exit code is 1
    when any failed or gave only an untrusted best guess."""
    try:
        search = CtfSearch(
            box_px=box,
            min_res_a=min_res,
            max_res_a=max_res,
            min_defocus_a=min_defocus,
            max_defocus_a=max_defocus,
            defocus_step_a=defocus_step,
            max_astigmatism_a=max_astigmatism,
            fit_phase_shift=phase_shift,
            min_phase_shift_deg=min_phase_shift,
            max_phase_shift_deg=max_phase_shift,
            phase_shift_step_deg=phase_shift_step,
            known_astigmatism_a=known_astigmatism,
            known_astigmatism_angle_deg=known_astigmatism_angle,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    out.mkdir(parents=True, exist_ok=True)
    rows: list[_Row] = []
    for path in micrographs:
        try:
            image, header_size = read_micrograph(path)
            optics = Optics(
                pixel_size_a=_pixel_size(path, pixel_size, header_size),
                voltage_kv=voltage,
                cs_mm=cs,
                amplitude_contrast=amp_contrast,
            )
            unfit = _unfit_search(image.shape, optics.pixel_size_a, search)
            if unfit is not None:
                raise ValueError(unfit)
            fit = estimate_ctf(image, optics=optics, search=search)
        except CtfFitError as exc:
            if exc.best_guess is None:
                rows.append(_fail(out, path, exc.reason, exc.detail))
                continue
            write_ctf_outputs(
                exc.best_guess, out, path.stem, micrograph=path, optics=optics, search=search,
                not_trusted=exc.detail,
            )  # fmt: skip
            rows.append(_Row(path.name, "not trusted", exc.best_guess.result, exc.detail))
            typer.echo(f"{path}: not trusted: {exc.detail}", err=True)
            continue
        except (MicrographReadError, ValueError) as exc:
            reason = "no-pixel-size" if isinstance(exc, _NoPixelSize) else "bad-input"
            rows.append(_fail(out, path, reason, str(exc)))
            continue
        write_ctf_outputs(fit, out, path.stem, micrograph=path, optics=optics, search=search)
        rows.append(_Row(path.name, "ok", fit.result))
    Console().print(_table(rows))
    bad = sum(row.status != "ok" for row in rows)
    if bad:
        typer.echo(f"{bad} of {len(rows)} micrographs failed or are not trusted", err=True)
        raise typer.Exit(code=1)


def _fail(out: Path, path: Path, reason: str, message: str) -> _Row:
    write_failure(out, path.stem, "ctf", micrograph=path, reason=reason, message=message)
    typer.echo(f"{path}: failed: {message}", err=True)
    return _Row(path.name, "failed", None, message)


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
            if isinstance(exc, _NoPixelSize):
                reason = "no-pixel-size"
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
