"""cryolive.engines.fft: scipy's pocketfft loaded without ``import scipy.fft``.

The engines' transforms must stay what they were with ``scipy.fft`` (bit for bit: the same
calls into the same compiled library), and loading them must not import the package whose
import cost the module exists to avoid.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.fft

from cryolive.engines import fft as _fft

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_each_transform_is_scipys_bit_for_bit(dtype: type) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 48, 50)).astype(dtype)
    spectrum = scipy.fft.rfft2(x)
    pairs = [
        (_fft.rfft2(x), spectrum),
        (_fft.rfft2(x, workers=-1), scipy.fft.rfft2(x, workers=-1)),
        (_fft.rfft(x, axis=-1), scipy.fft.rfft(x, axis=-1)),
        (_fft.rfftn(x, axes=(0, 2)), scipy.fft.rfftn(x, axes=(0, 2))),
        (_fft.fft2(x), scipy.fft.fft2(x)),
        (_fft.fft(spectrum, axis=-2), scipy.fft.fft(spectrum, axis=-2)),
    ]
    # irfft2: the default shape, the same, cropped, zero-padded and odd output shapes
    for s in (None, (48, 50), (24, 26), (64, 70), (48, 51)):
        pairs.append((_fft.irfft2(spectrum, s=s), scipy.fft.irfft2(spectrum, s=s)))
    for ours, theirs in pairs:
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        assert np.array_equal(ours, theirs)
    # overwrite_x may reuse the input, the result is the same
    again = spectrum.copy()
    assert np.array_equal(_fft.fft(again, axis=-1, overwrite_x=True), scipy.fft.fft(spectrum))


def test_round_trip_and_fast_lengths() -> None:
    x = np.random.default_rng(4).standard_normal((30, 41)).astype(np.float32)
    back = _fft.irfft2(_fft.rfft2(x), s=x.shape)
    np.testing.assert_allclose(back, x, atol=1e-5)
    for n in range(2, 400):
        assert _fft.next_fast_len(n, real=True) == scipy.fft.next_fast_len(n, real=True)
        assert _fft.next_fast_len(n) == scipy.fft.next_fast_len(n)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="workers"):
        _fft.rfft2(np.zeros((4, 4)), workers=0)
    with pytest.raises(TypeError, match="real"):
        _fft.rfft2(np.zeros((4, 4), dtype=np.complex64))


_PROBE = """
import json, sys
from cryolive.engines import fft as _fft
import numpy as np
_fft.rfft2(np.ones((8, 8), dtype=np.float32))
before = sorted(m for m in sys.modules if m.startswith("scipy"))
import scipy.fft
reused = scipy.fft._pocketfft.basic.pfft is sys.modules["scipy.fft._pocketfft.pypocketfft"]
print(json.dumps({"before": before, "reused": reused}))
"""


def test_loading_it_does_not_import_scipy_fft_and_scipy_fft_reuses_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )  # fmt: skip
    seen = json.loads(done.stdout)
    assert seen["before"] == ["scipy.fft._pocketfft.pypocketfft"]
    assert seen["reused"]  # one copy of the extension in the process, not two
