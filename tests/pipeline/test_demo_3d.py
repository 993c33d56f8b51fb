"""``cryolive demo --class3d-particles N``: the parameters that take the demo through live 3D."""

from __future__ import annotations

from cryolive.demo import DEMO_2D, demo_3d
from cryolive.params import build_parameters
from cryolive.services._rules3d import run_due


def test_the_demo_3d_parameters_are_valid_and_start_3d_at_the_count_asked() -> None:
    default = build_parameters(request=DEMO_2D)
    asked = build_parameters(request=DEMO_2D | demo_3d(60))
    # the demo's few hundred selected particles never reach the facility default ...
    assert not run_due(400, [], default.class3d)
    # ... and do reach live 3D, with a refinement allowed of a class of 20 particles
    assert not run_due(59, [], asked.class3d) and run_due(60, [], asked.class3d)
    assert asked.refine3d.min_class_particles == 20 and asked.class3d.classes == 2
    assert asked.class2d == default.class2d  # 2D as the demo always runs it
