"""The README's curl command against the real server: labelled attributes over plain KServe V2.

The command is read from README.md and run with the real ``curl`` (binary-data extension), so the
page cannot show a command that does not work; its JSON must equal the Python client's
AttributeSet for the same photo.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fashiontag.protocol import ATTRIBUTES_JSON, ENSEMBLE_MODEL

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ["clothing/Dress_053689bb.jpg", "clothing/Shoes_01f52917.jpg", "photos/grace_hopper.jpg"]


def _readme_curl() -> str:
    """The README's shell block that posts to ``fashiontag``."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    (block,) = [b for b in blocks if f"/v2/models/{ENSEMBLE_MODEL}/infer" in b]
    return block


@pytest.fixture(scope="module")
def curl_image(server, repository):
    if not (repository / ENSEMBLE_MODEL / "config.pbtxt").exists():
        pytest.fail(f"{repository} has no {ENSEMBLE_MODEL}: regenerate it "
                    "(`fashiontag build-repo`, part of `make model`)")
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("the curl binary is not installed")
    block = _readme_curl().replace("http://127.0.0.1:8000", server.http_url.rstrip("/"))
    assert block != _readme_curl(), "the README's command names no server URL to point here"
    default = re.search(r"^img=(\S+?);", block, re.M).group(1)

    def post(relative: str) -> tuple[int, dict]:
        script = block.replace(f"img={default};", f"img={ROOT / 'samples' / relative};", 1)
        script = script.replace("curl -s ", "curl -s -w '\\n%{http_code}' ", 1)
        done = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True,
                              timeout=60, check=True)
        body, _, status = done.stdout.rpartition("\n")
        return int(status), json.loads(body)

    return post


@pytest.mark.parametrize("photo", PHOTOS)
def test_the_readme_curl_returns_the_python_clients_attribute_set(curl_image, server, photo):
    from fashiontag.client import TagClient

    status, answer = curl_image(photo)
    assert status == 200, answer
    (output,) = answer["outputs"]
    assert output["name"] == ATTRIBUTES_JSON and output["datatype"] == "BYTES"
    labelled = json.loads(output["data"][0])
    with TagClient(server.grpc_url, timeout_s=60) as client:  # the fast numeric path
        expected = client.tag((ROOT / "samples" / photo).read_bytes()).to_dict()
    assert labelled == expected
    assert labelled["category"]["value"] and "sleeve_length" in labelled


def test_a_broken_image_gets_a_clear_error_and_the_server_keeps_answering(curl_image):
    status, answer = curl_image("broken/not-an-image.jpg")
    assert status == 400 and "not a recognised image" in answer["error"]
    status, answer = curl_image(PHOTOS[0])
    assert status == 200 and answer["outputs"][0]["name"] == ATTRIBUTES_JSON
