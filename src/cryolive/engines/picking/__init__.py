"""Particle picking: template-free (Laplacian of Gaussian), template matching, and Topaz's
pretrained detectors (optional extra ``topaz``).

LoG and templates work on the micrograph resampled to a working pixel size of a few Å, reject
carbon, contamination and broken ice, and return :class:`Picks` with coordinates in pixels of the
micrograph given (x along axis 1, y along axis 0). :func:`score_picks` compares picks with
known positions.
"""

from cryolive.engines.picking._evaluate import PickScore, score_picks
from cryolive.engines.picking._log import pick_log
from cryolive.engines.picking._overlay import overlay_picks
from cryolive.engines.picking._reject import bad_area_mask
from cryolive.engines.picking._result import MicrographCtf, Picks
from cryolive.engines.picking._template import pick_templates
from cryolive.engines.picking._topaz import TOPAZ_MODELS, pick_topaz, topaz_available

__all__ = [
    "TOPAZ_MODELS",
    "MicrographCtf",
    "PickScore",
    "Picks",
    "bad_area_mask",
    "overlay_picks",
    "pick_log",
    "pick_templates",
    "pick_topaz",
    "score_picks",
    "topaz_available",
]
