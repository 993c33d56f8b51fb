"""Optional PyTorch backend of the orientation search: the chunks' products with the reference
slices, the norms and the argmax (or the top poses) in float32 on any torch device (a GPU when
one is at hand). Slicing the references stays in numpy.

PyTorch is not a dependency of cryolive: install it to use ``device=...``; it is imported only
when a device is given, never at module import.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
from numpy.typing import NDArray


def torch_available() -> bool:
    """Whether PyTorch can be imported."""
    return importlib.util.find_spec("torch") is not None


def torch_device(device: str) -> tuple[Any, Any]:
    """(torch, the device) for ``device`` ("cuda", "cuda:1", "cpu" …), or a ValueError that
    says why it cannot be used (no PyTorch, an unknown name, no such GPU)."""
    if not torch_available():
        raise ValueError(f"device {device!r}: needs PyTorch (pip install torch), not installed")
    import torch

    try:
        dev = torch.device(device)
        torch.zeros(1, device=dev)
    except (RuntimeError, AssertionError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"device {device!r}: not usable by PyTorch here ({first})") from exc
    return torch, dev


def _complex(torch: Any, array: NDArray[np.complexfloating], dev: Any) -> Any:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.complex64)).to(dev)


def _float(torch: Any, array: NDArray[np.floating], dev: Any) -> Any:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(dev)


def _as_real(torch: Any, z: Any) -> Any:
    """(…, m) complex as (…, 2m) real, so that a dot product is Re Σ conj(y) p."""
    return torch.view_as_real(z).reshape(*z.shape[:-1], 2 * z.shape[-1])


def global_best_torch(
    cx: NDArray[np.complex64],
    c2w: NDArray[np.float32],
    w: NDArray[np.float32],
    slices: NDArray[np.complex64],
    phases: NDArray[np.complex64],
    chunk: int,
    device: str,
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Each image's best flat index (shift x orientation) and score, as
    :func:`~cryolive.engines.refine3d._search.global_search` scores them."""
    torch, dev = torch_device(device)
    n = cx.shape[0]
    flat = np.empty(n, dtype=np.int64)
    best = np.empty(n, dtype=np.float32)
    with torch.no_grad():
        p = _complex(torch, slices, dev)  # (O, m), made once per call
        p_real = _as_real(torch, p).T.contiguous()  # (2m, O)
        p_pow = (p.real**2 + p.imag**2).T.contiguous()  # (m, O)
        ph = _complex(torch, phases, dev) * _float(torch, w, dev)  # (S, m), w folded in
        n_s, n_o = ph.shape[0], p.shape[0]
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            x = _complex(torch, cx[lo:hi], dev)
            y = _as_real(torch, x[:, None, :] * ph[None])  # (c, S, 2m)
            a = (y.reshape(-1, y.shape[-1]) @ p_real).reshape(hi - lo, n_s, n_o)
            b = torch.sqrt(torch.clamp(_float(torch, c2w[lo:hi], dev) @ p_pow, min=1e-30))
            score = (a / b[:, None, :]).reshape(hi - lo, -1)
            value, index = score.max(dim=1)
            flat[lo:hi] = index.cpu().numpy()
            best[lo:hi] = value.cpu().numpy()
    return flat, best


class LocalScorer:
    """The local search's per-chunk scores on a torch device: the weights are sent once, each
    chunk's images, slices and shift phases as they come."""

    def __init__(self, w: NDArray[np.float32], device: str) -> None:
        self.torch, self.dev = torch_device(device)
        self.w = _float(self.torch, w, self.dev)

    def top(
        self,
        cx: NDArray[np.complex64],
        c2w: NDArray[np.float32],
        slices: NDArray[np.complex64],
        phases: NDArray[np.complex64],
        k: int,
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """(c, k) flat indices (shift x delta) of each image's ``k`` best scores, best first,
        and those scores; ``slices`` (c, D, m), ``phases`` (c, S, m)."""
        torch, dev = self.torch, self.dev
        with torch.no_grad():
            p = _complex(torch, slices, dev)
            y = _complex(torch, cx, dev)[:, None, :] * _complex(torch, phases, dev) * self.w
            a = torch.matmul(_as_real(torch, y), _as_real(torch, p).transpose(1, 2))  # (c,S,D)
            p_pow = p.real**2 + p.imag**2
            b2 = torch.einsum("cm,cdm->cd", _float(torch, c2w, dev), p_pow)
            score = (a / torch.sqrt(torch.clamp(b2, min=1e-30))[:, None, :]).reshape(len(cx), -1)
            value, index = torch.topk(score, k, dim=1)
            return index.cpu().numpy().astype(np.int64), value.cpu().numpy()
