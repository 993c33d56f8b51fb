"""Where processed results go: one RELION project per raw folder.

``<visit>/processed/<raw folder>/`` is a RELION project; each stage of a processing run writes
into ``<Stage>/jobNNN/`` with the movie's path below its raw folder kept, as RELION does
(``MotionCorr/job012/GridSquare_1/Data/FoilHole_…_fractions.mrc``), so users can carry on in
RELION. Job numbers are unique per run and stage: ten per AutoProcProgram id.
"""

from __future__ import annotations

from pathlib import Path

STAGES = {
    "MotionCorr": 1,
    "CtfFind": 2,
    "IceThickness": 3,
    "AutoPick": 4,
    "Extract": 5,
    "Class2D": 6,
    "Class3D": 7,  # initial model and 3D classification of each live 3D run
    "Refine3D": 8,  # refinement and postprocessing of a run's best class
}


def project_dir(visit_dir: Path, raw_dir: Path) -> Path:
    """The RELION project of one raw folder of a visit."""
    return visit_dir / "processed" / raw_dir.name


def job_dir(project: Path | str, stage: str, program_id: int) -> Path:
    if stage not in STAGES:
        raise ValueError(f"stage: one of {', '.join(STAGES)}, got {stage!r}")
    return Path(project) / stage / f"job{program_id * 10 + STAGES[stage]:03d}"


def movie_stem(raw_dir: Path, movie: Path) -> str:
    """The movie's path below its raw folder, without suffix (``_fractions`` kept)."""
    relative = movie.relative_to(raw_dir)
    return str(relative.with_suffix(""))


def output_base(project: Path | str, stage: str, program_id: int, stem: str) -> Path:
    """Path without suffix of a movie's outputs in a stage, with its folder created."""
    base = job_dir(project, stage, program_id) / stem
    base.parent.mkdir(parents=True, exist_ok=True)
    return base


def sibling_base(output: Path | str, stage: str) -> Path | None:
    """The base (path without suffix) that ``stage`` of the same run gives the movie whose
    output in another stage is ``output`` (``<project>/<Stage>/jobNNN/<stem>.<suffix>``), or
    None when ``output`` is not laid out so. Nothing is created."""
    if stage not in STAGES:
        raise ValueError(f"stage: one of {', '.join(STAGES)}, got {stage!r}")
    parts = Path(output).parts
    for i in range(len(parts) - 2, 0, -1):
        job, kind = parts[i], parts[i - 1]
        if kind in STAGES and job.startswith("job") and job[3:].isdigit():
            number = int(job[3:])
            if number % 10 != STAGES[kind]:
                return None
            stem = Path(*parts[i + 1 :]).with_suffix("")
            return job_dir(Path(*parts[: i - 1]), stage, number // 10) / stem
    return None
