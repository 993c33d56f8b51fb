"""Files stay inside their visit: a gain path a user gives and every file a route serves must
resolve (symbolic links followed) inside the visit's raw or processed folders."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from cryolive.web import files

REQUEST = {
    "pixel_size_a": 0.83,
    "dose_per_frame_e_per_a2": 1.2,
    "particle_diameter_min_a": 100,
    "particle_diameter_max_a": 160,
}


def _visit_dir(world: Any) -> Path:
    return Path(world.root) / world.visit


@pytest.fixture(scope="module")
def planted(world: Any) -> dict[str, str]:
    """Gain paths, inside and outside the visit, planted on disk."""
    raw = _visit_dir(world) / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "gain.mrc").write_bytes(b"GAIN")
    outside = Path(world.root).parent / "outside-gain.mrc"
    outside.write_bytes(b"SECRET")
    link = raw / "link-gain.mrc"
    if not link.is_symlink():
        link.symlink_to(outside)
    other = Path(world.root) / world.other_visit / "raw"
    other.mkdir(parents=True, exist_ok=True)
    (other / "gain.mrc").write_bytes(b"OTHER")
    return {
        "inside": str(raw / "gain.mrc"),
        "shadow": "/etc/shadow",
        "missing": "/etc/no-such-file-cryolive",
        "dotdot": f"{raw}/../../{world.other_visit}/raw/gain.mrc",
        "symlink": str(link),
        "other_visit": str(other / "gain.mrc"),
        "relative": "raw/gain.mrc",
    }


def _reprocess(clients: Any, world: Any, gain: str, *, form: bool) -> Any:
    client, csrf = clients["member"]
    body = REQUEST | {"gain_reference": gain}
    if form:
        return client.post(
            f"/collections/{world.data_collection_id}/reprocess",
            data={k: str(v) for k, v in body.items()} | {"csrf_token": csrf},
        )
    return client.post(
        f"/api/collections/{world.data_collection_id}/reprocess",
        json=body,
        headers={"X-CSRF-Token": csrf},
    )


@pytest.mark.parametrize("form", [False, True], ids=["api", "form"])
@pytest.mark.parametrize("kind", ["shadow", "missing", "dotdot", "symlink", "other_visit"])
def test_a_gain_outside_the_visit_is_refused_and_nothing_recorded(
    clients: Any, world: Any, planted: dict[str, str], kind: str, form: bool
) -> None:
    client, _ = clients["member"]
    jobs = f"/api/collections/{world.data_collection_id}/jobs"
    before = len(client.get(jobs).json())
    response = _reprocess(clients, world, planted[kind], form=form)
    assert response.status_code == 422, response.text
    assert "gain_reference" in response.text
    assert "SECRET" not in response.text and "OTHER" not in response.text
    assert len(client.get(jobs).json()) == before


def test_the_refusal_does_not_tell_whether_an_outside_file_exists(
    clients: Any, world: Any, planted: dict[str, str]
) -> None:
    existing = _reprocess(clients, world, planted["shadow"], form=False)
    missing = _reprocess(clients, world, planted["missing"], form=False)
    assert existing.status_code == missing.status_code == 422
    assert existing.json() == missing.json()


def test_a_gain_inside_the_visit_is_accepted(
    clients: Any, world: Any, planted: dict[str, str]
) -> None:
    response = _reprocess(clients, world, planted["inside"], form=False)
    assert response.status_code == 201, response.text
    program = response.json()["auto_proc_program_id"]
    client, csrf = clients["member"]
    job = client.get(f"/api/jobs/{program}").json()
    # recorded under the run parameter's name, as JSON (cryolive.params)
    assert json.loads(job["parameters"]["gain_path"]) == planted["inside"]
    client.post(f"/api/jobs/{program}/stop", headers={"X-CSRF-Token": csrf})


def test_a_file_of_one_visit_is_not_served_through_another(clients: Any, world: Any) -> None:
    """bi10002-1's movie records bi10001-1's snapshot: bob may see his movie, not the file;
    staff, who may see both visits, are refused it too."""
    for role in ("outsider", "staff"):
        client, _ = clients[role]
        assert client.get(f"/api/movies/{world.foreign_movie_id}").status_code == 200
        response = client.get(f"/api/movies/{world.foreign_movie_id}/files/snapshot")
        assert response.status_code == 403, role
        assert "outside its visit" in response.json()["detail"]
        assert not response.content.startswith(b"\x89PNG")
    own = clients["member"][0].get(f"/api/movies/{world.movie_ids[0]}/files/snapshot")
    assert own.status_code == 200 and own.content.startswith(b"\x89PNG")


def test_inside_follows_links_and_folds_dotdot(tmp_path: Path) -> None:
    visit = tmp_path / "v"
    raw, processed = visit / "raw", visit / "processed"
    (processed / "raw").mkdir(parents=True)
    raw.mkdir()
    (processed / "raw" / "a.png").write_bytes(b"x")
    (tmp_path / "secret").write_bytes(b"x")
    os.symlink(tmp_path / "secret", raw / "out")
    os.symlink(processed / "raw" / "a.png", raw / "in")
    folders = [raw, processed]
    assert files.inside(processed / "raw" / "a.png", folders) == processed / "raw" / "a.png"
    assert files.inside(raw / "in", folders) == processed / "raw" / "a.png"
    assert files.inside(raw / "out", folders) is None
    assert files.inside(f"{raw}/../../secret", folders) is None
    assert files.inside("raw/in", folders) is None
    assert files.inside(f"{raw}/a\0b", folders) is None
    assert files.inside(visit / "other" / "x", folders) is None


def test_a_raw_folder_linked_out_of_the_visit_is_not_registered(clients: Any, world: Any) -> None:
    outside = Path(world.root).parent / "elsewhere"
    outside.mkdir(exist_ok=True)
    link = _visit_dir(world) / "raw7"
    if not link.is_symlink():
        link.symlink_to(outside)
    client, csrf = clients["member"]
    response = client.post(
        f"/api/visits/{world.visit}/collections",
        json={
            "folder": "raw7",
            "software": "EPU",
            "file_extension": "tiff",
            "pixel_size_a": 0.83,
            "dose_per_frame_e_per_a2": 1.0,
            "voltage_kv": 300,
        },
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 422 and "not inside the visit's folder" in response.text


def test_a_path_plainly_outside_is_refused_without_asking_the_file_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    real = Path.resolve

    def resolve(self: Path, strict: bool = False) -> Path:
        asked.append(str(self))
        return real(self, strict=strict)

    monkeypatch.setattr(Path, "resolve", resolve)
    folders = [tmp_path / "v" / "raw", tmp_path / "v" / "processed"]
    assert files.inside("/etc/shadow", folders) is None
    assert files.inside(f"{tmp_path}/v/raw/../../../etc/shadow", folders) is None
    assert asked == []
    assert files.inside(tmp_path / "v" / "raw" / "gain.mrc", folders) is not None
    assert asked  # inside as written: then resolved, links followed
