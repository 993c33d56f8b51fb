"""``cryolive postprocess``: two half maps in, RELION-like post-processing out (see
:mod:`cryolive.io.outputs.postprocess`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cryolive.cli._relion3d import ENGINE_HELP, check_engine, relion_errors


def postprocess_command(
    half1: Path = typer.Argument(..., help="First half map (MRC)."),
    half2: Path = typer.Argument(..., help="Second half map (MRC)."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    mask: Path | None = typer.Option(
        None, "--mask", help="Solvent mask (MRC, values 0-1); by default one is made."
    ),
    bfactor: float | None = typer.Option(
        None,
        "--bfactor",
        help="B-factor to sharpen with, Å² (positive sharpens; RELION's --adhoc_bfac is its "
        "negative); by default fitted from the Guinier plot.",
    ),
    pixel_size: float | None = typer.Option(
        None, "--pixel-size", help="Voxel size, Å (default: the half maps' header)."
    ),
    engine: str = typer.Option("cryolive", "--engine", help=ENGINE_HELP),
) -> None:
    """Mask, corrected FSC, resolution at 0.143, B-factor and sharpened map: postprocess.mrc,
    postprocess_masked.mrc, mask.mrc, postprocess.star and postprocess_fsc.png in --out.
    With --engine relion: relion_mask_create and relion_postprocess (no PNG)."""
    from cryolive.engines.postprocess import PostprocessError, postprocess
    from cryolive.io.maps import MapFileError, read_map
    from cryolive.io.outputs.postprocess import write_postprocess_outputs

    check_engine(engine, 1)
    if engine == "relion":
        from cryolive.adapters.relion_refine3d import run_relion_postprocess

        if pixel_size is not None and pixel_size <= 0:
            raise typer.BadParameter(
                f"must be positive, got {pixel_size}", param_hint="--pixel-size"
            )
        with relion_errors(Console(stderr=True), "relion_postprocess"):
            relion = run_relion_postprocess(
                half1, half2, out, pixel_size_a=pixel_size, mask=mask, bfactor=bfactor
            )
        how = "given" if bfactor is not None else "fitted"
        typer.echo(
            f"resolution {relion.resolution_a:.2f} Å (FSC 0.143, corrected, RELION); "
            f"B-factor {relion.bfactor_a2:.1f} Å² ({how}); {out}"
        )
        return
    try:
        h1, voxel1 = read_map(half1)
    except MapFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="HALF1") from exc
    try:
        h2, voxel2 = read_map(half2)
    except MapFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="HALF2") from exc
    m = None
    if mask is not None:
        try:
            m, mask_voxel = read_map(mask)
        except MapFileError as exc:
            raise typer.BadParameter(str(exc), param_hint="--mask") from exc
        if mask_voxel > 0 and voxel1 > 0 and abs(mask_voxel - voxel1) > 1e-3 * voxel1:
            raise typer.BadParameter(
                f"{mask.name}: voxel {mask_voxel:g} Å but the half maps' is {voxel1:g} Å",
                param_hint="--mask",
            )
    if pixel_size is None:
        if voxel1 <= 0:
            raise typer.BadParameter(
                f"{half1.name}: its header holds no voxel size; give one", param_hint="--pixel-size"
            )
        if abs(voxel1 - voxel2) > 1e-3 * voxel1:
            raise typer.BadParameter(
                f"the half maps' voxel sizes differ ({voxel1:g} and {voxel2:g} Å)",
                param_hint="HALF2",
            )
        pixel_size = voxel1
    elif pixel_size <= 0:
        raise typer.BadParameter(f"must be positive, got {pixel_size}", param_hint="--pixel-size")
    console = Console(stderr=True)
    try:
        result = postprocess(h1, h2, pixel_size, mask=m, bfactor=bfactor)
    except PostprocessError as exc:
        console.print(f"[red]post-processing failed[/red]: {exc}")
        raise typer.Exit(1) from exc
    try:
        files = write_postprocess_outputs(
            out, result, pixel_size_a=pixel_size, half1_name=str(half1), half2_name=str(half2)
        )
    except OSError as exc:
        console.print(f"[red]cannot write the outputs[/red]: {exc}")
        raise typer.Exit(1) from exc
    how = "fitted" if result.bfactor_fitted else "given"
    typer.echo(
        f"resolution {result.resolution_a:.2f} Å (FSC 0.143, corrected); "
        f"B-factor {result.bfactor_a2:.1f} Å² ({how}); {files.sharpened.parent}"
    )
