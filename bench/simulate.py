"""Seconds per simulated movie, against a straightforward peer, on this machine.

    .venv/bin/python bench/simulate.py [--only 1k,4k-tiff,k3-tiff,falcon4i-eer] [--no-peer]

Each case writes one movie of 40 fractions (a visit of one movie) into a temporary folder and
times ``simulate_visit`` end to end (specimen, rendering, counting, encoding, writing, truth).
The peer is the obvious implementation of the same movie: per frame a Fourier shift of the
whole micrograph with numpy's FFT, ``Generator.poisson`` and a tifffile LZW write.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import tifffile

from cryolive.simulate import MovieConfig, VisitConfig, simulate_visit

CASES = {
    "1k": dict(detector="1k", format="tiff"),
    "4k-tiff": dict(detector="falcon4i", format="tiff"),
    "k3-tiff": dict(detector="k3", format="tiff"),
    "falcon4i-eer": dict(detector="falcon4i", format="eer"),
}


def ours(case: str, out: Path) -> tuple[float, float]:
    """Wall and CPU seconds (all threads) for one movie."""
    movie = MovieConfig(n_frames=40)
    config = VisitConfig(movies_per_grid=1, movie=movie, **CASES[case])  # type: ignore[arg-type]
    start, cpu = time.perf_counter(), time.process_time()
    simulate_visit(config, out)
    return time.perf_counter() - start, time.process_time() - cpu


def peer(shape: tuple[int, int], out: Path, n_frames: int = 40) -> tuple[float, float]:
    """The obvious way: FFT shift per frame, numpy Poisson, tifffile LZW per frame."""
    rng = np.random.default_rng(0)
    start, cpu = time.perf_counter(), time.process_time()
    image = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    spectrum = np.fft.rfft2(image)
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    with tifffile.TiffWriter(out / "peer.tiff") as tif:
        for t in range(n_frames):
            ramp = np.exp(-2j * np.pi * (ky * 0.1 * t + kx * 0.05 * t))
            frame = np.fft.irfft2(spectrum * ramp, s=shape).astype(np.float32)
            counts = rng.poisson(np.maximum(frame, 0) * 1.0).astype(np.uint8)
            tif.write(counts, compression="lzw", photometric="minisblack", metadata=None)
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default=",".join(CASES))
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    now = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    print(f"# {now}, {platform.node()}, {os.cpu_count()} CPUs, load average {load:.1f}")
    print("| movie | frames | ours wall (s) | ours CPU (s) | peer wall (s) | peer CPU (s) |")
    print("|---|---|---|---|---|---|")
    for case in args.only.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            wall, cpu = ours(case, Path(tmp) / "visit")
        config = VisitConfig(**CASES[case])  # type: ignore[arg-type]
        shape = config.frame_shape
        peer_s = "- | -"
        if not args.no_peer and config.movie_format == "tiff":
            with tempfile.TemporaryDirectory() as tmp:
                peer_wall, peer_cpu = peer(shape, Path(tmp))
            peer_s = f"{peer_wall:.1f} | {peer_cpu:.1f}"
        frames = "40" if config.movie_format != "eer" else "40 x 20 EER"
        name = f"{case} {shape[1]}x{shape[0]} {config.movie_format}"
        print(f"| {name} | {frames} | {wall:.1f} | {cpu:.1f} | {peer_s} |", flush=True)


if __name__ == "__main__":
    main()
