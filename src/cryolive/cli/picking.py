"""``cryolive pick`` and ``cryolive extract``: picking and extraction by hand on micrograph files,
writing what the services write (coordinates, overlay PNG, particle stacks, particles.star)."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import typer

from cryolive.engines import UnusableMicrographError
from cryolive.engines.extract import Particles, default_box_px, extract_particles
from cryolive.engines.picking import (
    MicrographCtf,
    Picks,
    overlay_picks,
    pick_log,
    pick_templates,
    pick_topaz,
)
from cryolive.io.micrograph import MicrographReadError, read_micrograph
from cryolive.io.particle_files import (
    MicrographParticles,
    OpticsGroup,
    read_coordinates,
    write_coordinates,
    write_particles_star,
    write_stack,
)
from cryolive.io.png import write_rgb_png


def _pixel_size(path: Path, given: float | None, header: float | None) -> float:
    size = given if given is not None else header
    if size is None:
        raise typer.BadParameter(f"{path}: no pixel size in the header; give --pixel-size")
    return size


def _read_templates(path: Path) -> tuple[np.ndarray, float]:
    try:
        with mrcfile.open(path, permissive=True, mode="r") as mrc:
            stack = np.array(mrc.data, dtype=np.float32)
            size = float(mrc.voxel_size.x)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"{path}: unreadable template stack ({exc})") from exc
    if stack.ndim == 2:
        stack = stack[None]
    if size <= 0:
        raise typer.BadParameter(f"{path}: no pixel size in the template stack's header")
    return stack, size


def pick_command(
    micrographs: list[Path] = typer.Argument(..., help="Motion-corrected micrographs (MRC)."),
    out: Path = typer.Option(..., "--out", help="Folder for the results."),
    diameter_min: float = typer.Option(..., help="Smallest particle diameter, Å."),
    diameter_max: float = typer.Option(..., help="Largest particle diameter, Å."),
    pixel_size: float | None = typer.Option(None, help="Å/px; default: the MRC header's."),
    templates: Path | None = typer.Option(None, help="Templates or 2D classes (.mrcs)."),
    defocus: float | None = typer.Option(None, help="Defocus for the templates' CTF, Å."),
    threshold: float | None = typer.Option(
        None, help="Peak height: background sd (default 5), or Topaz's logit (default 0)."
    ),
    fmt: str = typer.Option("star", "--format", help="Coordinates as 'star' or 'json'."),
    picker: str = typer.Option(
        "log", help="'log', or 'topaz' (pretrained resnet16; needs the 'topaz' extra)."
    ),
    device: str = typer.Option("cpu", help="Topaz only: 'cpu' or 'cuda'."),
) -> None:
    """Pick particles: <name>_autopick.star (or .json) and <name>_picks.png per micrograph."""
    if fmt not in ("star", "json"):
        raise typer.BadParameter(f"--format: 'star' or 'json', got {fmt!r}")
    if picker not in ("log", "topaz"):
        raise typer.BadParameter(f"--picker: 'log' or 'topaz', got {picker!r}")
    if picker == "topaz" and templates is not None:
        raise typer.BadParameter("--picker topaz: does not take --templates")
    stack = _read_templates(templates) if templates is not None else None
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in micrographs:
        try:
            image, header_size = read_micrograph(path)
            size = _pixel_size(path, pixel_size, header_size)
            picks: Picks
            if picker == "topaz":
                picks = pick_topaz(
                    image,
                    pixel_size_a=size,
                    diameter_a=0.5 * (diameter_min + diameter_max),
                    threshold=0.0 if threshold is None else threshold,
                    device=device,
                )
            elif stack is None:
                picks = pick_log(
                    image,
                    pixel_size_a=size,
                    diameter_min_a=diameter_min,
                    diameter_max_a=diameter_max,
                    threshold=5.0 if threshold is None else threshold,
                )
            else:
                ctf = MicrographCtf(defocus_u_a=defocus, defocus_v_a=defocus) if defocus else None
                picks = pick_templates(
                    image,
                    stack[0],
                    pixel_size_a=size,
                    template_pixel_size_a=stack[1],
                    diameter_a=0.5 * (diameter_min + diameter_max),
                    ctf=ctf,
                    threshold=5.0 if threshold is None else threshold,
                )
        except ImportError as exc:
            raise typer.BadParameter(str(exc)) from exc
        except (MicrographReadError, UnusableMicrographError, ValueError) as exc:
            failed += 1
            typer.echo(f"{path}: failed: {exc}", err=True)
            continue
        write_coordinates(out / f"{path.stem}_autopick.{fmt}", picks)
        write_rgb_png(out / f"{path.stem}_picks.png", overlay_picks(image, picks))
        typer.echo(
            f"{path}: {len(picks)} particles ({picks.method}), {picks.rejected_bad_area} "
            f"rejected on {100 * picks.bad_area_fraction:.0f} % bad area"
        )
    if failed:
        raise typer.Exit(code=1)


def _coords_for(micrograph: Path, coords: Path) -> Path:
    if coords.is_file():
        return coords
    for name in (f"{micrograph.stem}_autopick.star", f"{micrograph.stem}_autopick.json",
                 f"{micrograph.stem}.star", f"{micrograph.stem}.json"):  # fmt: skip
        if (coords / name).is_file():
            return coords / name
    raise ValueError(f"coords: no coordinates for {micrograph.name} in {coords}")


def extract_command(
    micrographs: list[Path] = typer.Argument(..., help="Motion-corrected micrographs (MRC)."),
    coords: Path = typer.Option(..., help="Coordinate file, or the folder `pick` wrote."),
    out: Path = typer.Option(..., "--out", help="Folder for stacks and particles.star."),
    box: int | None = typer.Option(None, help="Box side, px (default 1.5 x --diameter)."),
    diameter: float | None = typer.Option(None, help="Particle diameter, Å (for the box)."),
    pixel_size: float | None = typer.Option(None, help="Å/px; default: the MRC header's."),
    rescale: int | None = typer.Option(None, help="Fourier-downscale boxes to this side, px."),
    invert: bool = typer.Option(True, help="Invert contrast (protein bright)."),
    defocus: float | None = typer.Option(None, help="Defocus written to the STAR file, Å."),
    voltage: float = typer.Option(300.0, help="kV."),
    cs: float = typer.Option(2.7, help="mm."),
    amp_contrast: float = typer.Option(0.07, help="Amplitude contrast fraction."),
) -> None:
    """Extract particles: <name>.mrcs per micrograph and one RELION 3.1 particles.star."""
    out.mkdir(parents=True, exist_ok=True)
    done: list[MicrographParticles] = []
    failed = 0
    sizes: list[tuple[float, Particles]] = []
    for path in micrographs:
        try:
            image, header_size = read_micrograph(path)
            size = _pixel_size(path, pixel_size, header_size)
            if box is None and diameter is None:
                raise ValueError("box: give --box or --diameter")
            side = box if box is not None else default_box_px(diameter or 0.0, pixel_size_a=size)
            x, y = read_coordinates(_coords_for(path, coords))
            particles = extract_particles(
                image, x, y, pixel_size_a=size, box_px=side, invert_contrast=invert,
                rescale_px=rescale,
            )  # fmt: skip
        except (MicrographReadError, ValueError) as exc:
            failed += 1
            typer.echo(f"{path}: failed: {exc}", err=True)
            continue
        write_stack(
            out / f"{path.stem}.mrcs", particles.images, pixel_size_a=particles.pixel_size_a
        )
        ctf = (
            MicrographCtf(defocus_u_a=defocus, defocus_v_a=defocus, voltage_kv=voltage,
                          cs_mm=cs, amplitude_contrast=amp_contrast)
            if defocus else None
        )  # fmt: skip
        done.append(
            MicrographParticles(
                micrograph_name=str(path), stack_name=f"{path.stem}.mrcs", particles=particles,
                ctf=ctf,
            )
        )  # fmt: skip
        sizes.append((size, particles))
        typer.echo(f"{path}: {len(particles)} particles ({particles.dropped} too near the edge)")
    if done:
        size, first = sizes[0]
        optics = OpticsGroup(
            voltage_kv=voltage, cs_mm=cs, amplitude_contrast=amp_contrast,
            micrograph_pixel_size_a=size, image_pixel_size_a=first.pixel_size_a,
            image_size_px=int(first.images.shape[-1]),
        )  # fmt: skip
        count = write_particles_star(out / "particles.star", done, optics=optics)
        typer.echo(f"{out / 'particles.star'}: {count} particles")
    if failed:
        raise typer.Exit(code=1)
