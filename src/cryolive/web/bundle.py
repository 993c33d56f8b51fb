"""Which Plotly the chart pages load: plotly.js's official partial (cartesian) bundle when it is
installed, else the full plotly.min.js of the ``plotly`` package.

The partial bundle (``plotly-cartesian.min.js`` of npm's ``plotly.js-cartesian-dist-min``, the
same plotly.js version as the ``plotly`` package's) is 1.5 MB against 4.8 MB, and the browser
spends about a third of the time evaluating it (BENCHMARKS.md, "Web page weight"). It draws
every trace the collection and staff pages use (scatter, histogram, bar, heatmap); the 3D
panel's isosurface and scattergl (collections over 5,000 movies) fetch the full bundle when
they are drawn. ``make`` fetches it with ``npm pack`` into ``<venv>/share/cryolive/`` and checks
it against the digest pinned in ``plotly-cartesian.sha256`` next to this module; cryolive checks
it again before serving it. It is never committed to the repository.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from importlib import resources
from pathlib import Path

PARTIAL = "plotly-cartesian.min.js"
FULL = "plotly.min.js"
log = logging.getLogger(__name__)
_warned: set[str] = set()


def plotly_js() -> Path:
    """plotly.min.js (every trace type) as the installed ``plotly`` package ships it."""
    return Path(str(resources.files("plotly") / "package_data" / FULL))


def pinned_sha256() -> str:
    """The sha256 (hex) of the partial bundle cryolive accepts, as pinned in the repository."""
    text = (resources.files("cryolive.web") / "plotly-cartesian.sha256").read_text()
    return text.split()[0].lower()


def default_location() -> Path:
    """Where ``make`` installs the partial bundle: ``<sys.prefix>/share/cryolive/``."""
    return Path(sys.prefix) / "share" / "cryolive" / PARTIAL


def partial_bundle(setting: Path | None) -> Path | None:
    """The partial bundle to serve: ``setting`` (``web.chart_bundle``) or the default location.

    None, with a warning logged once per process and reason, when it is absent or its content
    is not the pinned one (a different version or a damaged download): the pages then load the
    full plotly.min.js, which draws the same charts, only later.
    """
    path = setting or default_location()
    if not path.is_file():
        _warn_once(
            f"{path}: no partial chart bundle ({PARTIAL}, `make` fetches it with npm); "
            f"the pages load the full {FULL}, about 1 s slower to start"
        )
        return None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != pinned_sha256():
        _warn_once(
            f"{path}: sha256 {digest} is not the pinned {pinned_sha256()} "
            f"(plotly-cartesian.sha256); the pages load the full {FULL}"
        )
        return None
    return path


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning(message)
