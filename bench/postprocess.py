"""Post-processing benchmark: cryolive against relion_postprocess on half maps with a planted
B-factor, at a full-size box.

Half maps: point atoms in a sphere of 0.3 box radius (a flat spectrum, as a protein's beyond
10 Å), blurred by B, plus independent white noise per half (noise = multiple of the map's
standard deviation). Both programs get the same half maps and cryolive's automatic mask; RELION
fits its B from 10 Å (--auto_bfac --autob_lowres 10). Run:

    OMP_NUM_THREADS=1 .venv/bin/python bench/postprocess.py [--box 128] [--pixel 1.0]
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import starfile

from cryolive.engines.postprocess import postprocess
from cryolive.io.maps import write_map
from cryolive.io.outputs.postprocess import write_postprocess_outputs


def _halfmaps():
    path = Path(__file__).resolve().parents[1] / "tests" / "engines" / "postprocess" / "halfmaps.py"
    spec = importlib.util.spec_from_file_location("halfmaps", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    import sys

    sys.modules["halfmaps"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--box", type=int, default=128)
    parser.add_argument("--pixel", type=float, default=1.0)
    args = parser.parse_args()
    hm = _halfmaps()
    hm.BOX, hm.PIXEL_A = args.box, args.pixel
    relion = shutil.which("relion_postprocess")
    rows = []
    for bfactor, noise in ((50.0, 2.0), (100.0, 3.0), (150.0, 3.0), (200.0, 5.0)):
        h = hm.make_halves(bfactor, noise)
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            p1 = write_map(d / "h_half1_unfil.mrc", h.half1, pixel_size_a=args.pixel)
            p2 = write_map(d / "h_half2_unfil.mrc", h.half2, pixel_size_a=args.pixel)
            t0 = time.process_time()
            result = postprocess(h.half1, h.half2, args.pixel)
            ours_s = time.process_time() - t0
            write_postprocess_outputs(d / "ours", result, pixel_size_a=args.pixel)
            rel_res = rel_b = rel_s = float("nan")
            if relion:
                (d / "rel").mkdir()
                t0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                subprocess.run(
                    [relion, "--i", p1.name, "--i2", p2.name, "--mask", "ours/mask.mrc",
                     "--angpix", str(args.pixel), "--o", "rel/postprocess", "--auto_bfac",
                     "--autob_lowres", "10"],
                    cwd=d, capture_output=True, check=False,
                )  # fmt: skip
                t1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                rel_s = (t1.ru_utime + t1.ru_stime) - (t0.ru_utime + t0.ru_stime)
                general = starfile.read(d / "rel" / "postprocess.star", always_dict=True)["general"]
                rel_res = float(general["rlnFinalResolution"])
                rel_b = -float(general["rlnBfactorUsedForSharpening"])
        rows.append((bfactor, noise, result.bfactor_a2, rel_b, result.resolution_a, rel_res,
                     ours_s, rel_s))  # fmt: skip
    print(f"box {args.box}, {args.pixel} Å/px; B in Å², resolution in Å (FSC 0.143); CPU seconds")
    print(
        "| B planted | noise | B cryolive | B RELION | res. cryolive | res. RELION "
        "| cryolive CPU s | RELION CPU s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]:.0f} | {r[1]:.0f}x | {r[2]:.1f} | {r[3]:.1f} | {r[4]:.2f} | {r[5]:.2f} "
              f"| {r[6]:.2f} | {r[7]:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
