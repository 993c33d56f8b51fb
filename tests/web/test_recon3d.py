"""The 3D panel's API: a collection's 3D runs and refinements as recorded, map previews,
FSC curves and angular distributions read from the recorded files, downloads under the file
rule (inside the visit, members only), and clear answers to bad requests (no 5xx)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cryolive.io.maps import read_map


def _folder(world: Any) -> Path:
    return world.processed / "Refine3D" / "job018" / "run_001_class001"


def test_the_panel_lists_runs_and_refinements(clients: Any, world: Any) -> None:
    client = clients["member"][0]
    panel = client.get(f"/api/collections/{world.data_collection_id}/3d").json()
    assert panel["selected_particles"] == 400 + 300  # the newest 2D batch's selected classes
    (run,) = panel["runs"]
    assert (run["run_number"], run["particles"], run["initial_model_particles"]) == (1, 700, 700)
    assert [(c["class_number"], c["resolution_a"], c["selected"]) for c in run["classes"]] == [
        (1, 11.0, True),
        (2, 24.0, False),
    ]
    (refined,) = panel["refinements"]
    assert refined["particle_classification_id"] == world.refinement_id
    assert (refined["particles"], refined["resolution_a"]) == (400, 9.5)
    # B from the two points: ln N = (B/2) / d² + c
    slope = (np.log(400) - np.log(200)) / (1 / 9.5**2 - 1 / 12.0**2)
    assert refined["bfactor_a2"] == pytest.approx(2 * slope, rel=1e-4)
    outside = client.get(f"/api/collections/{world.outside_collection_id}/3d").json()
    assert outside["runs"] == [] and outside["refinements"] == []


def test_map_preview_and_downloads(clients: Any, world: Any) -> None:
    client = clients["member"][0]
    folder = _folder(world)
    preview = client.get(f"/api/3d/{world.refinement_id}/preview").json()
    volume, _ = read_map(folder / "PostProcess" / "postprocess.mrc")
    assert preview["box"] == 24 and preview["voxel_a"] == pytest.approx(3.6)
    values = np.frombuffer(base64.b64decode(preview["values_base64"]), np.uint8)
    step = (preview["maximum"] - preview["minimum"]) / 255
    assert preview["minimum"] == pytest.approx(float(volume.min()), abs=1e-5)
    np.testing.assert_allclose(
        preview["minimum"] + values * step, volume.ravel(), atol=step / 2 + 1e-6
    )
    assert preview["sd"] == pytest.approx(float(volume.std()), rel=1e-3)
    for which, path in (
        ("map", folder / "PostProcess" / "postprocess.mrc"),
        ("mask", folder / "PostProcess" / "mask.mrc"),
        ("half1", folder / "Refine" / "half1.mrc"),
        ("refined", folder / "Refine" / "refined.mrc"),
    ):
        got = client.get(f"/api/3d/{world.refinement_id}/file", params={"which": which})
        assert got.status_code == 200 and got.content == path.read_bytes(), which
        assert "attachment" in got.headers["content-disposition"]
    klass = client.get(f"/api/3d/{world.class3d_id}/file")
    assert (
        klass.content
        == (world.processed / "Class3D/job017/run_001/Class3D/class001.mrc").read_bytes()
    )
    assert (
        client.get(f"/api/3d/{world.class3d_id}/file", params={"which": "mask"}).status_code == 404
    )


def test_fsc_and_angular_distribution(clients: Any, world: Any) -> None:
    client = clients["member"][0]
    fsc = client.get(f"/api/3d/{world.refinement_id}/fsc").json()
    assert (fsc["final_resolution_a"], fsc["bfactor_a2"]) == (9.5, -80.0)
    assert set(fsc["curves"]) == {"corrected", "masked", "unmasked"}
    assert len(fsc["resolution_per_a"]) == len(fsc["curves"]["corrected"]) == 13
    assert client.get(f"/api/3d/{world.class3d_id}/fsc").status_code == 404  # a class: no FSC
    angles = client.get(f"/api/3d/{world.refinement_id}/angles").json()
    assert angles["particles"] == 400 and sum(map(sum, angles["counts"])) == 400
    assert len(angles["counts"]) == len(angles["tilt_deg"]) == 18
    assert client.get(f"/api/3d/{world.class3d_id}/angles").json()["particles"] == 400  # class 1


def test_maps_stay_inside_their_visit_and_bad_requests_get_clear_answers(
    clients: Any, world: Any
) -> None:
    member = clients["member"][0]
    outside = member.get(f"/api/3d/{world.outside_map_id}/file")
    assert outside.status_code == 403 and "outside its visit" in outside.json()["detail"]
    assert member.get(f"/api/3d/{world.outside_map_id}/preview").status_code == 403
    assert clients["outsider"][0].get(f"/api/3d/{world.refinement_id}/file").status_code == 403
    assert clients["anonymous"][0].get(f"/api/3d/{world.refinement_id}/preview").status_code == 401
    assert member.get("/api/3d/999999/preview").status_code == 404
    assert member.get(f"/api/3d/{world.class_ids[0]}/preview").status_code == 404  # a 2D class
    bad = member.get(f"/api/3d/{world.refinement_id}/file", params={"which": "../../etc/passwd"})
    assert bad.status_code == 422
    assert member.get("/api/3d/0/preview").status_code == 422


def test_the_collection_page_has_the_3d_panel(clients: Any, world: Any) -> None:
    page = clients["member"][0].get(f"/collections/{world.data_collection_id}").text
    assert 'id="recon3d"' in page and 'id="map3d"' in page and "recon3d" in page
