"""The studio in a real browser (Debian's chromium, headless, driven by selenium through Debian's
chromedriver) against a real tritonserver with explicit model control.

One story, as a merchandiser would live it: define an attribute with three values, label photos
with the keyboard, see the refusal while a value has too few labels, label the rest (30 real
garment photos), train & deploy, see the new attribute in a served tag of a photo nobody
labelled, roll back, see it gone. A screenshot of every step goes to ``out/studio/``; the time
from pressing "Train & deploy" to the new version answering goes to ``out/studio/timings.json``
(the goal is 60 s on 2 cores; speed is measured here, not asserted).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fashiontag.artifacts import SOURCE_REPOSITORY
from fashiontag.client import TagClient
from fashiontag.model.datasets import clothing
from fashiontag.serving.server import TritonServer
from tests.conftest import LAYOUT, ROOT
from tests.functional.conftest import free_port_config

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ADMIN_KEY = "studio-test-admin-key-0123456789"
NAME = "garment_group"
GROUPS = {"top": "T-Shirt", "bottom": "Pants", "footwear": "Shoes"}
PER_VALUE, HELD_OUT = 10, 2
SHOTS = ROOT / "out" / "studio"

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (make test installs them)")


def _wait(condition, timeout_s: float, what: str, every_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, built_model):
    """A catalog of real photos (labelled ones first in file order), private artifacts and a
    private repository, served by an explicit-model-control server."""
    root = tmp_path_factory.mktemp("studio")
    catalog = root / "catalog"
    catalog.mkdir()
    test = clothing.sender_split(clothing.load()).test
    for group, label in GROUPS.items():
        photos = [p for p in test if p.label == label][:PER_VALUE + HELD_OUT]
        for i, photo in enumerate(photos):
            kind = "a" if i < PER_VALUE else "z"  # z...: held out, never labelled
            shutil.copy2(photo.path, catalog / f"{kind}_{group}_{i:02d}.jpg")
    LAYOUT.working_copy(root / "artifacts")
    shutil.copytree(SOURCE_REPOSITORY, root / "repository",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture(scope="module")
def explicit_server(workspace, tmp_path_factory):
    server = TritonServer(free_port_config(workspace / "repository", model_control="explicit",
                                           admin_key=ADMIN_KEY,
                                           log_path=tmp_path_factory.mktemp("t") / "s.log"))
    server.start()
    yield server
    server.stop()


@contextlib.contextmanager
def _studio(argv: list[str], cwd: Path, env: dict[str, str]):
    """A ``fashiontag studio`` process; yields the URL it prints once it listens."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=cwd)
    said: list[str] = []

    def listening():
        said.append(proc.stdout.readline())
        if not said[-1] and proc.poll() is not None:
            raise AssertionError(f"the studio exited {proc.returncode}: {''.join(said)}")
        return re.search(r"http://\S+/", said[-1])

    try:
        yield _wait(listening, 120, "the studio to start").group(0)
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture(scope="module")
def studio_url(workspace, explicit_server):
    env = {**os.environ, "FASHIONTAG_ADMIN_KEY": ADMIN_KEY}
    with _studio([sys.executable, "-m", "fashiontag", "studio",
                  "--catalog", str(workspace / "catalog"),
                  "--serve-url", explicit_server.grpc_url,
                  "--repository", str(workspace / "repository"),
                  "--artifacts", str(workspace / "artifacts"), "--port", "0"],
                 ROOT, env) as url:
        yield url


@pytest.fixture(scope="module")
def readme_studio_url(workspace, explicit_server, tmp_path_factory):
    """The studio started as the README's studio section shows it, from a working folder:
    ``fashiontag studio --catalog catalog/ --serve-url HOST:PORT --admin-key-file key.txt``
    (relative catalog, the default relative ``artifacts/``); only the port is a free one."""
    work = tmp_path_factory.mktemp("readme-studio")
    (work / "catalog").mkdir()
    for photo in sorted((workspace / "catalog").glob("z_*_10.jpg")):  # one per group
        shutil.copy2(photo, work / "catalog" / photo.name)
    (work / "key.txt").write_text(ADMIN_KEY + "\n")
    env = {k: v for k, v in os.environ.items() if k != "FASHIONTAG_ADMIN_KEY"}
    command = Path(sys.executable).with_name("fashiontag")  # the venv's console script
    with _studio([str(command), "studio", "--catalog", "catalog/",
                  "--serve-url", explicit_server.grpc_url, "--admin-key-file", "key.txt",
                  "--port", "0"], work, env) as url:
        yield url, work


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


#: every <img> of the page as [src, naturalWidth] once all have finished (loaded or broken);
#: one the page script has not given a src yet counts as unfinished (its ``complete`` is true)
IMAGES = """const images = Array.from(document.images);
if (!images.length || images.some((i) => !i.getAttribute("src") || !i.complete)) return null;
return images.map((i) => [i.getAttribute("src"), i.naturalWidth]);"""


def _images_shown(driver, what: str) -> list[str]:
    """The sources of the page's images, asserting each decoded (a broken one has width 0)."""
    images = _wait(lambda: driver.execute_script(IMAGES), 60, f"the images of {what}")
    broken = [src for src, width in images if width <= 0]
    assert not broken, f"{what}: {len(broken)} of {len(images)} images not shown: {broken}"
    return [src for src, _ in images]


def _shot(driver, name: str) -> None:
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def _served_attributes(url: str, path: Path) -> dict:
    with TagClient(url) as client:
        client.refresh_taxonomy()
        return dict(client.tag(path.read_bytes()))


def test_a_person_defines_labels_trains_deploys_and_rolls_back_an_attribute(
        workspace, explicit_server, studio_url, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = browser
    timings: dict[str, float] = {}
    held_out = workspace / "catalog" / "z_top_10.jpg"
    assert NAME not in _served_attributes(explicit_server.grpc_url, held_out)

    # 1. define an attribute with three values
    driver.get(studio_url + "attributes")
    _shot(driver, "01-attributes")
    driver.find_element(By.ID, "define-name").send_keys(NAME)
    driver.find_element(By.ID, "define-values").send_keys(", ".join(GROUPS))
    driver.find_element(By.ID, "define-save").click()
    _wait(lambda: driver.find_elements(By.CSS_SELECTOR, f'tr[data-attribute="{NAME}"]'), 30,
          "the new attribute in the list")
    _shot(driver, "02-defined")

    # 2. label with the keyboard (1..3 = the values in the order shown; arrows move)
    driver.get(studio_url + f"label/{NAME}")
    values = [b.get_attribute("data-value")
              for b in driver.find_elements(By.CSS_SELECTOR, "button.value")]
    assert values == sorted(GROUPS)
    body = driver.find_element(By.TAG_NAME, "body")

    def _current() -> str:
        return driver.find_element(By.ID, "current-image").get_attribute("data-id")

    def label_next(limit: int) -> int:
        """Label the current image by its file name (a_<group>_..); returns images labelled."""
        done = 0
        while done < limit:
            current = _current()
            kind, group, _ = current.split("_")
            if kind == "z":
                return done
            body.send_keys(str(values.index(group) + 1))
            _wait(lambda c=current: _current() != c, 10, "the next image")
            done += 1
        return done

    # the catalog is sorted: a_bottom_*, a_footwear_*, a_top_*, then the held-out z_* files;
    # label two bottoms, skip to the footwear, label two, ... to see the refusal first
    def goto(prefix: str) -> None:
        """Move with the arrow keys to the first image whose file name starts with prefix."""
        while not _current().startswith(prefix):
            before = _current()
            body.send_keys(Keys.ARROW_RIGHT if before < prefix else Keys.ARROW_LEFT)
            _wait(lambda b=before: _current() != b, 10, "the image to change")

    for group in sorted(GROUPS):
        goto(f"a_{group}_")
        assert label_next(2) == 2
    counts = {row.get_attribute("data-value"): int(row.find_element(By.CLASS_NAME,
                                                                     "need").text)
              for row in driver.find_elements(By.CSS_SELECTOR, "#counts tr[data-value]")}
    assert counts == {v: 6 for v in GROUPS}  # 8 per value needed, 2 each so far

    # 3. the refusal, with what is missing
    driver.find_element(By.ID, "train").click()
    message = _wait(lambda: driver.find_element(By.ID, "job-message").text
                    if driver.find_element(By.ID, "job-message").get_attribute("class")
                    == "refused" else None, 60, "the refusal")
    assert "need 6 more images" in message
    _shot(driver, "03-refused")

    # 4. label the rest: 10 per value, 30 in all
    for group in sorted(GROUPS):
        goto(f"a_{group}_02")
        label_next(PER_VALUE - 2)
    counts = {row.get_attribute("data-value"): int(row.find_element(By.CLASS_NAME,
                                                                     "have").text)
              for row in driver.find_elements(By.CSS_SELECTOR, "#counts tr[data-value]")}
    assert counts == {v: PER_VALUE for v in GROUPS}
    labels_csv = workspace / "artifacts" / "studio" / "labels" / f"{NAME}.csv"
    assert len(labels_csv.read_text().splitlines()) == 1 + PER_VALUE * len(GROUPS)

    # 5. train & deploy: the new version answers, nothing needs a restart
    started = time.monotonic()
    driver.find_element(By.ID, "train").click()
    _wait(lambda: driver.find_element(By.ID, "job-message").get_attribute("class")
          in ("done", "refused", "failed"), 600, "training and deployment")
    timings["train_and_deploy_s"] = round(time.monotonic() - started, 1)
    message = driver.find_element(By.ID, "job-message").text
    assert driver.find_element(By.ID, "job-message").get_attribute("class") == "done", message
    assert "version 2 is answering" in message and "cross-validated accuracy" in message
    assert "confusion" in driver.find_element(By.ID, "job-confusion").text
    _shot(driver, "04-deployed")
    served = _served_attributes(explicit_server.grpc_url, held_out)
    assert served[NAME].value in GROUPS
    timings["held_out_photo_tagged"] = served[NAME].value

    # 6. the catalog page shows the new attribute on a photo nobody labelled
    def grid_shows_attribute() -> bool:
        driver.get(studio_url)
        tile = driver.find_element(By.CSS_SELECTOR, "figure.tile:last-child")
        return bool(tile.find_elements(By.CSS_SELECTOR, f'li[data-attribute="{NAME}"]'))

    _wait(grid_shows_attribute, 120, "the new attribute in the catalog grid", every_s=1.0)
    _shot(driver, "05-catalog-with-new-attribute")

    # 7. roll back: the attribute is gone from what is served
    driver.get(studio_url + "attributes")
    driver.find_element(By.ID, "rollback").click()
    _wait(lambda: driver.find_elements(By.CSS_SELECTOR, 'tr.served[data-version="1"]'), 120,
          "version 1 served again")
    _shot(driver, "06-rolled-back")
    assert NAME not in _served_attributes(explicit_server.grpc_url, held_out)
    (SHOTS / "timings.json").write_text(json.dumps(timings, indent=2))
    print(f"studio timings: {timings}")


def test_the_studio_started_as_the_readme_shows_shows_every_photo(readme_studio_url, browser):
    """Default (relative) artifacts path, relative catalog, another working folder: every
    thumbnail of the grid and the photo and strip of the label page decode in the browser."""
    url, work = readme_studio_url
    browser.get(url)
    grid = _images_shown(browser, "the catalog grid")
    assert sorted(grid) == [f"/thumb/{n}" for n in range(3)]
    _shot(browser, "07-readme-studio-grid")
    browser.get(url + "label/category")
    shown = _images_shown(browser, "the label page")
    assert "/image/0" in shown and len(shown) == 1 + 3  # the photo and the strip's thumbnails
    assert len(list((work / "artifacts" / "studio" / "thumbs").glob("*.jpg"))) == 3
