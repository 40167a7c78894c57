"""The studio's web app without a browser or a server: pages, labels, CSRF, confinement.

The end-to-end flow (a real browser against a real tritonserver) is in
tests/functional/test_studio_browser.py.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import cv2
import numpy as np
import pytest

from fashiontag.studio.app import StudioConfig, create_app
from tests.conftest import SAMPLES


@pytest.fixture
def app(tmp_path):
    cfg = StudioConfig(catalog=(SAMPLES / "clothing",), artifacts=tmp_path / "artifacts",
                       repository=tmp_path / "repo", port=8765)
    return create_app(cfg)


@pytest.fixture
def client(app):
    return app.test_client()


def _post(client, app, url, body, token=None):
    return client.post(url, json=body, base_url="http://127.0.0.1:8765",
                       headers={"X-CSRF-Token": token or app.studio.cfg.csrf_token})


def _get(client, url):
    return client.get(url, base_url="http://127.0.0.1:8765")


def test_pages_render_and_carry_the_csrf_token_but_no_admin_key(client, app):
    app.studio.cfg.admin_key = "operator-secret-key-123456"
    for url in ("/", "/attributes", "/label/category"):
        page = _get(client, url)
        assert page.status_code == 200, url
        html = page.get_data(as_text=True)
        assert app.studio.cfg.csrf_token in html
        assert "operator-secret-key" not in html


def test_defining_labelling_counting_and_exporting_an_attribute(client, app):
    done = _post(client, app, "/api/attributes",
                 {"name": "pattern", "values": ["striped", " plain", "floral", ""],
                  "applies_to": ["T-Shirt", "Dress"]})
    assert done.status_code == 200 and done.get_json()["values"] == ["floral", "plain",
                                                                     "striped"]
    reply = _post(client, app, "/api/label", {"attribute": "pattern", "number": 0,
                                              "value": "plain"})
    counts = reply.get_json()["counts"]
    assert counts["plain"] == {"labels": 1, "needed": 7}  # 8 per value by default
    assert counts["floral"] == {"labels": 0, "needed": 8}
    exported = _get(client, "/labels/pattern.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[0] == ["path", "value"] and rows[1][1] == "plain"
    assert rows[1][0] == str(app.studio.catalog.get(0).path)
    # the labels survive a restart of the studio
    again = create_app(app.studio.cfg)
    assert again.studio.labels.labels("pattern") == {rows[1][0]: "plain"}
    assert again.studio.labels.definitions()["pattern"].applies_to == ("T-Shirt", "Dress")


def test_a_correction_of_a_served_tag_is_saved_as_a_label(client, app):
    reply = _post(client, app, "/api/label", {"attribute": "category", "number": 1,
                                              "value": "Hoodie"})
    assert reply.status_code == 200
    assert list(app.studio.labels.labels("category").values()) == ["Hoodie"]
    bad = _post(client, app, "/api/label", {"attribute": "category", "number": 1,
                                            "value": "Spacesuit"})
    assert bad.status_code == 400 and "Spacesuit" in bad.get_json()["error"]


@pytest.mark.parametrize("body, message", [
    ({"name": "category", "values": ["a", "b"]}, "built-in"),
    ({"name": "bad name", "values": ["a", "b"]}, "identifier"),
    ({"name": "pattern", "values": ["a"]}, "at least two"),
    ({"name": "pattern", "values": ["a", "b"], "applies_to": ["Sandals"]}, "Sandals"),
])
def test_bad_attribute_definitions_are_refused_with_the_reason(client, app, body, message):
    reply = _post(client, app, "/api/attributes", body)
    assert reply.status_code == 400 and message in reply.get_json()["error"]


def test_state_changing_requests_need_the_csrf_token_and_a_same_origin(client, app):
    body = {"attribute": "category", "number": 0, "value": "Hoodie"}
    assert _post(client, app, "/api/label", body, token="forged").status_code == 403
    no_token = client.post("/api/label", json=body, base_url="http://127.0.0.1:8765")
    assert no_token.status_code == 403
    cross = client.post("/api/label", json=body, base_url="http://127.0.0.1:8765",
                        headers={"X-CSRF-Token": app.studio.cfg.csrf_token,
                                 "Origin": "http://evil.example"})
    assert cross.status_code == 403
    assert app.studio.labels.labels("category") == {}


def test_requests_for_another_host_name_are_refused(client):
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 cannot read the studio."""
    assert client.get("/", base_url="http://evil.example:8765").status_code == 403


@pytest.mark.parametrize("url", ["/image/../../../../etc/passwd", "/image/..%2f..%2fetc%2fpasswd",
                                 "/thumb/-1", "/image/99999", "/image/%2Fetc%2Fpasswd",
                                 "/static/../app.py"])
def test_only_images_of_the_opened_catalog_can_be_served(client, url):
    reply = _get(client, url)
    assert reply.status_code in (400, 404), url
    assert b"root:" not in reply.get_data()


def test_catalog_images_and_cached_thumbnails_are_served_by_number(client, app):
    image = _get(client, "/image/0")
    assert image.status_code == 200 and image.data == app.studio.catalog.get(0).path.read_bytes()
    thumb = _get(client, "/thumb/0")
    assert thumb.status_code == 200 and thumb.data[:2] == b"\xff\xd8"
    assert app.studio.catalog.thumbnail(0).exists()


def test_photos_are_served_with_a_relative_artifacts_path_whatever_the_working_folder(
        tmp_path, monkeypatch, garment_samples):
    """`fashiontag studio --catalog catalog/` with the default ``--artifacts artifacts``: the
    paths are relative to the working folder, and Flask's ``send_file`` would read a relative
    one against the package folder instead (every thumbnail a 500)."""
    work = tmp_path / "work"
    (work / "catalog").mkdir(parents=True)
    for photo in garment_samples[:2]:
        (work / "catalog" / photo.name).write_bytes(photo.read_bytes())
    monkeypatch.chdir(work)
    app = create_app(StudioConfig(catalog=(Path("catalog"),), artifacts=Path("artifacts"),
                                  repository=Path("model_repository"), port=8765))
    monkeypatch.chdir(tmp_path)  # the working folder may change later; the studio's may not
    client = app.test_client()
    for number in range(2):
        thumb = _get(client, f"/thumb/{number}")
        assert thumb.status_code == 200, thumb.get_data(as_text=True)[:300]
        assert cv2.imdecode(np.frombuffer(thumb.data, np.uint8), cv2.IMREAD_COLOR).shape[2] == 3
        image = _get(client, f"/image/{number}")
        assert image.status_code == 200 and image.data == garment_samples[number].read_bytes()
    assert len(list((work / "artifacts" / "studio" / "thumbs").glob("*.jpg"))) == 2
    grid = _get(client, "/").get_data(as_text=True)
    assert grid.count('src="/thumb/') == 2
