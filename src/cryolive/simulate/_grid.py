"""Where things are on a simulated grid: the atlas, its grid squares, their foil holes.

Positions follow EPU's conventions: a grid square's centre and size in pixels of the atlas
image; a foil hole's centre and diameter in pixels of its grid square's image (the full
readout, 2880 x 2046 as EPU writes it; the JPEG beside it is a 512-pixel-wide thumbnail);
stage positions in micrometres (written in metres).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

ATLAS_PX = 1024  # atlas image side (pixels)
ATLAS_PIXEL_A = 19_500.0  # 1.95 µm per atlas pixel: a 2 mm field
SQUARE_PITCH_UM = 85.0  # 300 mesh
SQUARE_SIZE_UM = 60.0
SQUARE_IMAGE_PX = (2046, 2880)  # (y, x) readout of a grid-square image
SQUARE_PIXEL_A = 415.6  # 41.56 nm, EPU's grid-square magnification (470x)
HOLE_PITCH_UM = 2.65
HOLE_DIAMETER_UM = 1.34
HOLE_IMAGE_PX = (2046, 2880)
HOLE_PIXEL_A = 16.36  # 1.636 nm, foil-hole magnification (11500x)
THUMBNAIL_WIDTH = 512


@dataclass(frozen=True)
class FoilHolePlan:
    label: int
    pixel_xy: tuple[float, float] = field(metadata={"unit": "grid-square image pixels"})
    diameter_px: float
    stage_um: tuple[float, float, float]


@dataclass(frozen=True)
class GridSquarePlan:
    label: int
    atlas_xy: tuple[float, float] = field(metadata={"unit": "atlas pixels"})
    atlas_size_px: float
    stage_um: tuple[float, float, float]
    holes: tuple[FoilHolePlan, ...]
    optics: int = 0


@dataclass(frozen=True)
class GridPlan:
    atlas_id: int
    squares: tuple[GridSquarePlan, ...]


def _lattice(n: int, pitch: float, limit: float) -> list[tuple[float, float]]:
    """``n`` lattice points of ``pitch`` nearest the origin, inside a disc of ``limit``."""
    side = int(limit // pitch)
    points = [
        (i * pitch, j * pitch)
        for i in range(-side, side + 1)
        for j in range(-side, side + 1)
        if math.hypot(i * pitch, j * pitch) <= limit
    ]
    points.sort(key=lambda p: (math.hypot(*p), p))
    if len(points) < n:
        raise ValueError(f"n: at most {len(points)} fit, asked for {n}")
    return points[:n]


def plan_grid(
    *,
    grid: int,
    n_squares: int,
    holes_per_square: int,
    optics_of_square: list[int],
    rng: np.random.Generator,
) -> GridPlan:
    """Grid squares taken around the grid's centre, foil holes around each square's centre.

    Labels look like EPU's (seven-digit ids, unique in the session): squares from 8,000,000,
    holes from 9,000,000, each grid in its own block.
    """
    if n_squares < 1 or holes_per_square < 1:
        raise ValueError("n_squares, holes_per_square: need at least one")
    atlas_um = ATLAS_PX * ATLAS_PIXEL_A / 1e4
    # the whole atlas (squares far from its centre are shuffled in when many are needed)
    spots = _lattice(n_squares, SQUARE_PITCH_UM, atlas_um / 2 - SQUARE_PITCH_UM)
    half_x, half_y = SQUARE_IMAGE_PX[1] / 2, SQUARE_IMAGE_PX[0] / 2
    hole_spots = _lattice(holes_per_square, HOLE_PITCH_UM, SQUARE_SIZE_UM / 2 - HOLE_PITCH_UM)
    squares = []
    next_hole = 9_000_000 + 400_000 * grid
    for s, (sx, sy) in enumerate(spots):
        label = 8_000_000 + 100_000 * grid + 7 * s + 1
        z = float(rng.normal(80.0, 3.0))
        centre = (float(sx + rng.normal(0, 1)), float(sy + rng.normal(0, 1)), z)
        holes = []
        for hx, hy in hole_spots:
            holes.append(
                FoilHolePlan(
                    label=next_hole,
                    pixel_xy=(
                        half_x + hx * 1e4 / SQUARE_PIXEL_A,
                        half_y + hy * 1e4 / SQUARE_PIXEL_A,
                    ),
                    diameter_px=HOLE_DIAMETER_UM * 1e4 / SQUARE_PIXEL_A,
                    stage_um=(centre[0] + hx, centre[1] + hy, z),
                )
            )
            next_hole += 1
        squares.append(
            GridSquarePlan(
                label=label,
                atlas_xy=(
                    ATLAS_PX / 2 + centre[0] * 1e4 / ATLAS_PIXEL_A,
                    ATLAS_PX / 2 + centre[1] * 1e4 / ATLAS_PIXEL_A,
                ),
                atlas_size_px=SQUARE_SIZE_UM * 1e4 / ATLAS_PIXEL_A,
                stage_um=centre,
                holes=tuple(holes),
                optics=optics_of_square[s],
            )
        )
    return GridPlan(atlas_id=7_000_000 + 100_000 * grid, squares=tuple(squares))


def _disc_mask(
    shape: tuple[int, int], centres: list[tuple[float, float]], radius: float
) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, dtype=bool)
    for cx, cy in centres:
        mask |= (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2
    return mask


def atlas_image(plan: GridPlan, rng: np.random.Generator) -> np.ndarray:
    """(ATLAS_PX, ATLAS_PX) uint8: dark bars, lighter squares over the whole mesh, and the
    planned squares (with their own brightness: ice thickness varies) where they are."""
    image = np.full((ATLAS_PX, ATLAS_PX), 25.0, dtype=np.float32)
    pitch_px = SQUARE_PITCH_UM * 1e4 / ATLAS_PIXEL_A
    size_px = SQUARE_SIZE_UM * 1e4 / ATLAS_PIXEL_A
    yy, xx = np.mgrid[:ATLAS_PX, :ATLAS_PX].astype(np.float32)
    centre = ATLAS_PX / 2
    inside = (
        (np.abs(((xx - centre) / pitch_px + 0.5) % 1 - 0.5) * pitch_px < size_px / 2)
        & (np.abs(((yy - centre) / pitch_px + 0.5) % 1 - 0.5) * pitch_px < size_px / 2)
        & (np.hypot(xx - centre, yy - centre) < ATLAS_PX * 0.48)
    )
    image[inside] = 110.0
    for square in plan.squares:
        x, y = square.atlas_xy
        half = square.atlas_size_px / 2
        box = (
            slice(max(int(y - half), 0), int(y + half)),
            slice(max(int(x - half), 0), int(x + half)),
        )
        image[box] = float(rng.uniform(140, 220))
    image += rng.normal(0, 6, image.shape).astype(np.float32)
    return image.clip(0, 255).astype(np.uint8)


def square_image(square: GridSquarePlan, rng: np.random.Generator) -> np.ndarray:
    """The grid square's thumbnail (364 x 512 uint8): grid bars at the edge, the carbon foil
    with its whole lattice of holes (the square's foil holes are among them)."""
    scale = THUMBNAIL_WIDTH / SQUARE_IMAGE_PX[1]
    shape = (round(SQUARE_IMAGE_PX[0] * scale), THUMBNAIL_WIDTH)
    image = np.full(shape, 30.0, dtype=np.float32)
    half = SQUARE_SIZE_UM * 1e4 / SQUARE_PIXEL_A / 2 * scale
    cy, cx = shape[0] / 2, shape[1] / 2
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    pitch = HOLE_PITCH_UM * 1e4 / SQUARE_PIXEL_A * scale
    dx = (((xx - cx) / pitch + 0.5) % 1 - 0.5) * pitch
    dy = (((yy - cy) / pitch + 0.5) % 1 - 0.5) * pitch
    radius = HOLE_DIAMETER_UM * 1e4 / SQUARE_PIXEL_A * scale / 2
    foil = (np.abs(xx - cx) < half) & (np.abs(yy - cy) < half)
    image[foil] = 95.0
    image[foil & (dx**2 + dy**2 <= radius**2)] = float(rng.uniform(150, 190))
    image += rng.normal(0, 5, shape).astype(np.float32)
    return image.clip(0, 255).astype(np.uint8)


def hole_image(rng: np.random.Generator) -> np.ndarray:
    """A foil hole's thumbnail (364 x 512 uint8): one bright hole in grey carbon."""
    shape = (364, THUMBNAIL_WIDTH)
    image = np.full(shape, 80.0, dtype=np.float32)
    radius = HOLE_DIAMETER_UM * 1e4 / HOLE_PIXEL_A / 2 * THUMBNAIL_WIDTH / HOLE_IMAGE_PX[1]
    image[_disc_mask(shape, [(shape[1] / 2, shape[0] / 2)], radius)] = 180.0
    image += rng.normal(0, 8, shape).astype(np.float32)
    return image.clip(0, 255).astype(np.uint8)
