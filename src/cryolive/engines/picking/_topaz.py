"""Picking with Topaz's pretrained detectors (optional: ``pip install 'cryolive[topaz]'``).

Topaz (Bepler et al. 2019) scores every pixel of a downsampled, normalised micrograph with a
convolutional network trained by positive-unlabelled learning; its package ships pretrained
detectors (ResNet8 and ResNet16, 32 or 64 units). This adapter calls its Python API the way
``topaz preprocess`` and ``topaz extract`` do: Fourier downsampling to about 8 Å/px, per-image
normalisation with a two-component Gaussian mixture (the background's mean and standard
deviation), the network's per-pixel logits, non-maximum suppression at the particle's radius.
Topaz is GPL-3.0: it is imported here only when asked for and never shipped with cryolive.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from cryolive.engines.picking._checks import check_inputs
from cryolive.engines.picking._result import Picks

TopazModel = Literal["resnet16", "resnet16_u32", "resnet8", "resnet8_u32"]
TOPAZ_MODELS: tuple[str, ...] = ("resnet16", "resnet16_u32", "resnet8", "resnet8_u32")
TOPAZ_PIXEL_A = 8.0  # the working pixel size topaz's pretrained models are used at


def topaz_available() -> bool:
    """Whether Topaz (and PyTorch) can be imported."""
    try:
        _topaz_modules()
    except ImportError:
        return False
    return True


def _topaz_modules() -> dict[str, ModuleType]:
    try:
        return {
            name: importlib.import_module(name)
            for name in (
                "torch",
                "topaz.algorithms",
                "topaz.model.factory",
                "topaz.stats",
                "topaz.utils.image",
            )
        }
    except ImportError as exc:
        raise ImportError(
            "pick_topaz needs Topaz (GPL-3.0, optional): pip install 'cryolive[topaz]' "
            f"(the 'topaz' extra, topaz-em) ({exc})"
        ) from exc


def pick_topaz(
    micrograph: NDArray[np.floating],
    *,
    pixel_size_a: float,
    diameter_a: float,
    threshold: float = 0.0,
    model: TopazModel = "resnet16",
    device: str = "cpu",
    working_pixel_size_a: float = TOPAZ_PIXEL_A,
    rng: np.random.Generator | None = None,
) -> Picks:
    """Pick particles with a pretrained Topaz detector.

    Parameters
    ----------
    micrograph : (y, x) float
        Motion-corrected micrograph, particles darker than the ice (as recorded).
    pixel_size_a : float
        Its pixel size, Å.
    diameter_a : float
        Particle diameter, Å: picks are at least a radius apart (non-maximum suppression).
    threshold : float
        Logit (log odds that a pixel is a particle's centre) a pick must exceed; default 0,
        even odds (Topaz's ``extract`` suggests -6 for a list favouring recall).
    model : str
        One of Topaz's pretrained detectors: ``resnet16`` (64 units), ``resnet16_u32``,
        ``resnet8`` (64 units), ``resnet8_u32``.
    device : str
        ``"cpu"`` or a PyTorch CUDA device (``"cuda"``, ``"cuda:0"``). On the CPU, PyTorch's
        thread count is the caller's to set (``torch.set_num_threads``): more threads than free
        cores slow the network and the normalisation several-fold.
    working_pixel_size_a : float
        Pixel size the micrograph is downsampled to, Å (default 8, as Topaz's models expect).
    rng : numpy.random.Generator, optional
        Draws the pixel sample the normalisation is fitted on (default: a fixed seed, so the
        same micrograph gives the same picks).

    Returns
    -------
    Picks
        Coordinates in pixels of ``micrograph``, ``scores`` the network's logits (not
        background standard deviations as for the other pickers), ``method`` ``"topaz"``.

    Raises
    ------
    ImportError
        Topaz is not installed (the message names the ``topaz`` extra).
    ValueError
        A parameter out of range (the message names it).
    UnusableMicrographError
        NaN/inf, blank or saturated micrograph.

    References
    ----------
    Bepler, T. et al. (2019). Positive-unlabeled convolutional neural networks for particle
    picking in cryo-electron micrographs. Nat. Methods 16, 1153-1160.
    doi:10.1038/s41592-019-0575-8
    """
    check_inputs(
        micrograph, pixel_size_a=pixel_size_a, diameter_min_a=diameter_a, diameter_max_a=diameter_a
    )
    if model not in TOPAZ_MODELS:
        raise ValueError(f"model: one of {TOPAZ_MODELS}, got {model!r}")
    if not working_pixel_size_a >= pixel_size_a:
        raise ValueError(
            f"working_pixel_size_a: must be at least pixel_size_a ({pixel_size_a}), "
            f"got {working_pixel_size_a}"
        )
    if diameter_a < 4 * working_pixel_size_a:
        raise ValueError(
            f"diameter_a: {diameter_a} Å is under 4 working pixels of {working_pixel_size_a} Å"
        )
    if not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"device: 'cpu' or 'cuda[:n]', got {device!r}")
    mods = _topaz_modules()
    torch = mods["torch"]
    image = np.asarray(micrograph, dtype=np.float32)
    ny, nx = image.shape
    shape = (int(ny * pixel_size_a / working_pixel_size_a),
             int(nx * pixel_size_a / working_pixel_size_a))  # fmt: skip
    small = mods["topaz.utils.image"].downsample(image, shape=shape)
    # Topaz's preprocessing: a two-component Gaussian mixture fitted to a pixel sample; the
    # image is put in units of the background component (its GMM draws with NumPy's global
    # generator, so the sample is drawn here instead)
    gen = rng if rng is not None else np.random.default_rng(0)
    n_sample = max(min(small.size, 10_000), small.size // 10)  # `topaz preprocess`: a tenth
    sample = gen.choice(small.ravel(), size=n_sample, replace=False)
    _, meta = mods["topaz.stats"].normalize(sample, method="gmm", alpha=900, beta=1)
    small = ((small - np.float32(meta["mu"])) / np.float32(meta["std"])).astype(np.float32)
    net = mods["topaz.model.factory"].load_model(model)
    net.eval()
    net.fill()
    net.to(device)
    with torch.no_grad():
        x = torch.from_numpy(small)[None, None].to(device)
        logits = net(x)[0, 0].cpu().numpy().astype(np.float32)
    pw_y, pw_x = ny / shape[0] * pixel_size_a, nx / shape[1] * pixel_size_a
    radius_px = max(1, round(0.5 * diameter_a / max(pw_y, pw_x)))
    scores, coords = mods["topaz.algorithms"].non_maximum_suppression(
        logits, radius_px, threshold=threshold
    )
    # at least half a radius from the edge, as the other pickers
    margin = 0.5 * radius_px
    inside = (
        (coords[:, 0] >= margin)
        & (coords[:, 0] <= shape[1] - 1 - margin)
        & (coords[:, 1] >= margin)
        & (coords[:, 1] <= shape[0] - 1 - margin)
    )
    scores, coords = scores[inside], coords[inside]
    # Fourier downsampling keeps pixel 0's centre in place: working pixel i lies at i x scale
    x_px = coords[:, 0] * (nx / shape[1])
    y_px = coords[:, 1] * (ny / shape[0])
    return Picks(
        x_px=x_px.astype(np.float32),
        y_px=y_px.astype(np.float32),
        scores=scores.astype(np.float32),
        diameters_a=np.full(scores.shape, diameter_a, dtype=np.float32),
        diameter_a=float(diameter_a),
        pixel_size_a=pixel_size_a,
        working_pixel_size_a=float(max(pw_y, pw_x)),
        method="topaz",
        threshold=threshold,
        rejected_bad_area=0,
        bad_area=np.zeros(shape, dtype=bool),
    )
