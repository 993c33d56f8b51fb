"""RELION 3.1's de novo initial model (``relion_refine --denovo_3dref --sgd``) and 3D
classification (``relion_refine --ref … --K``), their last iteration turned into what
``cryolive initial-model`` and ``cryolive class3d`` write."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import starfile

from cryolive.adapters.relion_refine3d._process import Relion3DError, require, run
from cryolive.adapters.relion_refine3d._star import (
    ANGLES,
    ORIGINS,
    InputStar,
    in_input_order,
    last_iteration,
    read_block,
    read_input,
    write_data,
)

EXECUTABLE = "relion_refine"
LOG_NAME = "relion_refine.log"


@dataclass(frozen=True)
class RelionClasses:
    """What :func:`run_relion_initial_model` / :func:`run_relion_class3d` wrote and found."""

    maps: tuple[Path, ...]  # one per class (rlnClassNumber 1, 2, …), cryolive's names
    data: Path  # run_data.star: angles, origins, rlnClassNumber
    model: Path  # run_model.star (initial model) or model.star (classes)
    main: Path  # initial_model.mrc, or the largest class's map
    distribution: tuple[float, ...]  # RELION's rlnClassDistribution per class
    resolution_a: tuple[float, ...]  # RELION's rlnEstimatedResolution (inf: none)
    particles: tuple[int, ...]  # particles whose rlnClassNumber is the class
    iterations: int


def _common(
    given: InputStar, mask_diameter_a: float | None, threads: int, pad: int = 2
) -> list[str]:
    diameter = (
        mask_diameter_a if mask_diameter_a is not None else 0.9 * given.box_px * given.pixel_size_a
    )
    return [
        "--particle_diameter", f"{diameter:g}", "--ctf", "--flatten_solvent", "--zero_mask",
        "--oversampling", "1", "--j", str(threads), "--pool", "10", "--pad", str(pad),
        "--dont_combine_weights_via_disc",
    ]  # fmt: skip


def _check(threads: int, classes: int, iterations: int, given: InputStar) -> None:
    if threads < 1 or iterations < 1:
        raise ValueError(f"threads and iterations: must be at least 1, got {threads}, {iterations}")
    if classes < 1 or given.count < 2 * classes:
        raise ValueError(f"classes: {classes} classes for {given.count} particles")


def _run(
    command: list[str], given: InputStar, out_dir: Path, timeout_s: float | None
) -> tuple[Path, int]:
    """Run ``relion_refine`` with ``--o OUT_DIR/relion/run``; (the root, its last iteration)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "relion"
    if work.exists():  # an earlier run's iterations would pass for this one's
        shutil.rmtree(work)
    work.mkdir()
    root = work.resolve() / "run"
    log = out_dir / LOG_NAME
    log.write_text("")
    full = [require(EXECUTABLE), "--i", str(given.tables.path.resolve()), "--o", str(root)]
    run(
        [*full, *command], cwd=given.tables.path.resolve().parent, log_path=log, timeout_s=timeout_s
    )
    iteration = last_iteration(root)
    if iteration < 1:
        raise Relion3DError(f"{EXECUTABLE} wrote no iteration (see {log})")
    return root, iteration


def _convert(
    root: Path,
    iteration: int,
    given: InputStar,
    out_dir: Path,
    *,
    names: list[str],
    model_name: str,
) -> RelionClasses:
    """Copy the iteration's class maps to ``names``; write run_data.star and the model."""
    stem = f"{root}_it{iteration:03d}"
    try:
        classes = read_block(Path(f"{stem}_model.star"), "model_classes")
        general = read_block(Path(f"{stem}_model.star"), "model_general")
        rows = in_input_order(
            Path(f"{stem}_data.star"), given, (*ANGLES, *ORIGINS, "rlnClassNumber")
        )
    except ValueError as exc:
        raise Relion3DError(str(exc)) from exc
    if len(classes) != len(names):
        raise Relion3DError(f"{stem}_model.star: {len(classes)} classes, expected {len(names)}")
    maps = []
    for k, name in enumerate(names):
        source = Path(f"{stem}_class{k + 1:03d}.mrc")
        if not source.is_file():
            raise Relion3DError(f"{EXECUTABLE} wrote no {source.name}")
        maps.append(Path(shutil.copyfile(source, out_dir / name)))
    classes = classes.copy()
    classes["rlnReferenceImage"] = names
    data = write_data(out_dir / "run_data.star", given, rows, columns=("rlnClassNumber",))
    model = out_dir / model_name
    starfile.write({"model_general": general, "model_classes": classes}, model, overwrite=True)
    numbers = rows["rlnClassNumber"].to_numpy(int)
    distribution = classes["rlnClassDistribution"].to_numpy(float)
    resolution = classes["rlnEstimatedResolution"].to_numpy(float)
    return RelionClasses(
        maps=tuple(maps),
        data=data,
        model=model,
        main=maps[int(np.argmax(distribution))],
        distribution=tuple(float(d) for d in distribution),
        resolution_a=tuple(float(r) if 0 < r < 999 else float("inf") for r in resolution),
        particles=tuple(int((numbers == k + 1).sum()) for k in range(len(names))),
        iterations=iteration,
    )


def run_relion_initial_model(
    star_path: Path,
    out_dir: Path,
    *,
    classes: int = 1,
    symmetry: str = "C1",
    iterations: int = 30,
    batch_size: int = 200,
    initial_resolution_a: float = 35.0,
    final_resolution_a: float = 15.0,
    mask_diameter_a: float | None = None,
    healpix_order: int = 1,
    max_shift_px: float = 3.0,
    seed: int = 0,
    threads: int = 1,
    timeout_s: float | None = None,
) -> RelionClasses:
    """De novo initial model(s) with RELION 3.1's SGD, written as ``cryolive initial-model``
    writes them: initial_model.mrc (the largest class), initial_model_class001.mrc … when
    ``classes`` > 1, run_data.star and run_model.star.

    ``iterations`` SGD steps are split as RELION's GUI splits them (a fifth initial, at
    ``initial_resolution_a`` with half-size batches; three fifths in between; a fifth final at
    ``final_resolution_a`` with ``batch_size``). The rest as :func:`run_relion_class3d`.
    """
    given = read_input(star_path)
    _check(threads, classes, iterations, given)
    ini = max(1, iterations // 5)
    fin = max(1, iterations // 5)
    between = max(1, iterations - ini - fin)
    command = [
        "--denovo_3dref", "--sgd", "--K", str(classes), "--sym", symmetry,
        "--sgd_ini_iter", str(ini), "--sgd_inbetween_iter", str(between),
        "--sgd_fin_iter", str(fin), "--sgd_write_iter", str(ini + between + fin),
        "--sgd_ini_resol", f"{initial_resolution_a:g}",
        "--sgd_fin_resol", f"{final_resolution_a:g}",
        "--sgd_ini_subset", str(max(classes, batch_size // 2)),
        "--sgd_fin_subset", str(max(classes, batch_size)),
        "--healpix_order", str(healpix_order), "--offset_range", f"{max_shift_px:g}",
        "--offset_step", f"{max(1.0, max_shift_px / 2):g}", "--skip_gridding",
        "--random_seed", str(seed + 1),  # RELION does not shuffle with 0
        *_common(given, mask_diameter_a, threads, pad=1),  # as RELION's GUI runs the SGD
    ]  # fmt: skip
    root, iteration = _run(command, given, out_dir, timeout_s)
    names = [f"initial_model_class{k + 1:03d}.mrc" for k in range(classes)]
    result = _convert(root, iteration, given, out_dir, names=names, model_name="run_model.star")
    main = Path(shutil.copyfile(result.main, out_dir / "initial_model.mrc"))
    if classes == 1:  # as cryolive's: one class is initial_model.mrc alone
        result.maps[0].unlink()
        model = starfile.read(result.model, always_dict=True)
        model["model_classes"]["rlnReferenceImage"] = [main.name]
        starfile.write(model, result.model, overwrite=True)
        return replace(result, maps=(main,), main=main)
    return replace(result, main=main)


def run_relion_class3d(
    star_path: Path,
    reference: Path,
    out_dir: Path,
    *,
    classes: int = 4,
    iterations: int = 25,
    initial_lowpass_a: float = 30.0,
    symmetry: str = "C1",
    mask_diameter_a: float | None = None,
    healpix_order: int = 2,
    max_shift_px: float = 3.0,
    tau2_fudge: float = 4.0,
    seed: int = 0,
    threads: int = 1,
    timeout_s: float | None = None,
) -> RelionClasses:
    """3D classification with RELION 3.1 from one reference, written as ``cryolive class3d``
    writes it: class001.mrc …, run_data.star (angles, origins, rlnClassNumber) and model.star
    (RELION's data_model_general and data_model_classes: distribution, resolution,
    completeness and accuracies per class).

    The reference is low-passed to ``initial_lowpass_a`` Å and its scale is not RELION's
    (``--firstiter_cc``); the mask diameter defaults to 90 % of the box; ``max_shift_px`` is
    ``--offset_range`` (pixels); ``healpix_order`` 2 is 15° (before oversampling).

    Raises
    ------
    ValueError
        ``star_path``/``reference`` unusable, fewer than two particles per class.
    RelionMissingError
        ``relion_refine`` not installed.
    Relion3DError
        RELION failed, timed out or wrote no usable iteration (with its log's tail).
    """
    given = read_input(star_path)
    _check(threads, classes, iterations, given)
    if not reference.is_file():
        raise ValueError(f"reference: {reference} does not exist")
    command = [
        "--ref", str(reference.resolve()), "--firstiter_cc", "--ini_high", f"{initial_lowpass_a:g}",
        "--K", str(classes), "--iter", str(iterations), "--tau2_fudge", f"{tau2_fudge:g}",
        "--sym", symmetry, "--healpix_order", str(healpix_order),
        "--offset_range", f"{max_shift_px:g}", "--offset_step", f"{max(1.0, max_shift_px / 2):g}",
        "--norm", "--scale", "--random_seed", str(seed + 1),  # RELION does not shuffle with 0
        *_common(given, mask_diameter_a, threads),
    ]  # fmt: skip
    root, iteration = _run(command, given, out_dir, timeout_s)
    if iteration < iterations:
        raise Relion3DError(f"{EXECUTABLE} stopped at iteration {iteration} of {iterations}")
    names = [f"class{k + 1:03d}.mrc" for k in range(classes)]
    return _convert(root, iteration, given, out_dir, names=names, model_name="model.star")
