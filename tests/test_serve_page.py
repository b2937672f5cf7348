"""The page at ``/`` in a real headless browser: Debian's chromium driven by Playwright.

Skipped when either is missing (``apt-get install chromium``, ``pip install playwright``; no
browser download: Playwright drives the system's chromium).
"""

from __future__ import annotations

import shutil
from importlib import resources

import pytest

from .serving import ServeProcess

pytest.importorskip("starlette")
sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def server(mobilenet_onnx, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve-page") / "serve.log"
    with ServeProcess(str(mobilenet_onnx), "--provider", "cpu", log=log) as server:
        yield server


@pytest.fixture
def page(tmp_path):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
        )
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_choosing_a_photo_shows_its_top5(server, page, tmp_path):
    photo = tmp_path / "parrot.jpg"
    photo.write_bytes(resources.files("zoo").joinpath("data/samples/parrot.jpg").read_bytes())
    _, _, answer = server.post_image("/v1/models/mobilenet:predict", photo.read_bytes())
    want = [p["label"] for p in answer[0]["top"]]

    page.goto(server.url + "/")
    page.wait_for_selector("#model option[value=mobilenet]", state="attached")
    page.set_input_files("#file", str(photo))
    page.wait_for_selector("#results li .label")

    assert page.locator("#results li .label").all_inner_texts() == want
    assert page.inner_text("#status") == "parrot.jpg: mobilenet"


def test_a_file_that_is_not_an_image_shows_the_error(server, page, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    page.goto(server.url + "/")
    page.wait_for_selector("#model option[value=mobilenet]", state="attached")
    page.set_input_files("#file", str(notes))
    page.wait_for_selector("#status.error")

    assert "not an image" in page.inner_text("#status")
    assert page.locator("#results li").count() == 0
