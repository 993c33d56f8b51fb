"""``bench/class2d.py``: its options, the simulated particles it caches and its table."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from cryolive.engines.class2d import Class2DResult
from cryolive.engines.class2d._evaluate import resample_to

BENCH = Path(__file__).resolve().parents[3] / "bench" / "class2d.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cryolive_bench_class2d", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _bench()


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory, bench: ModuleType) -> Path:
    folder = tmp_path_factory.mktemp("bench-class2d")
    bench.prepare(folder, n=60, box=64)
    return folder


def test_help_lists_the_options() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--help"], capture_output=True, text=True, check=True
    ).stdout
    for option in ("--n", "--box", "--classes", "--iterations", "--no-relion", "--cache"):
        assert option in out


def test_prepare_caches_and_perfect_classes_top_the_table(bench: ModuleType, cache: Path) -> None:
    data = bench.prepare(cache, n=60, box=64)
    stamp = (data.star.parent / "particles.mrcs").stat().st_mtime_ns
    again = bench.prepare(cache, n=60, box=64)
    assert (again.star.parent / "particles.mrcs").stat().st_mtime_ns == stamp
    truth = data.truth
    assert len(truth) == 60 and truth.n_views == 10 and int((truth.view < 0).sum()) == 6
    averages = resample_to(truth.projections, pixel_size_a=2.0, to_pixel_size_a=4.0, box_px=32)
    averages = np.concatenate([averages, np.zeros((1, 32, 32))]).astype(np.float32)
    assignment = np.where(truth.view >= 0, truth.view, 10)
    k = 11
    result = Class2DResult(
        averages=averages, pixel_size_a=4.0, assignment=assignment, psi_deg=np.zeros(60),
        shift_a=np.zeros((60, 2)), probability=np.ones(60),
        particles_per_class=np.bincount(assignment, minlength=k), resolution_a=np.full(k, 9.0),
        score=np.ones(k), selected=np.arange(k) < 10,
    )  # fmt: skip
    row = bench.score("perfect", result, truth, wall_s=1.0, cpu_s=2.0)
    text = bench.table([row])
    assert "| perfect | 1.0 | 2.0 | 8.0 | 1.000 | 1.000 | 1.000 |" in text


def test_the_oracle_row_resolves_every_view(bench: ModuleType, cache: Path) -> None:
    row = bench.oracle(bench.prepare(cache, n=60, box=64))
    q = row.quality
    assert q.true_view_fraction == 1.0 and q.junk_rejected == 1.0 and q.selected_good == 1.0
    assert q.median_resolution_a < 15.0, q.resolution_a  # 5 particles a view: ~8-10 Å
