"""The page at ``/`` in a real headless browser: Debian's chromium driven by Playwright.

Skipped when either is missing (``apt-get install chromium``, ``pip install playwright``; no
browser download: Playwright drives the system's chromium). The server serves the same random-init
MobileNet twice, as ``mobilenet`` and ``mobilenet_copy``, so that the page offers "all models".

Every test saves full-page screenshots to ``test-artifacts/serve-page/`` (ignored by git) before
it asserts, so that a failing run leaves a picture of what the browser saw; the failure message
names the file.
"""

from __future__ import annotations

import base64
import re
import shutil
from importlib import resources
from pathlib import Path

import pytest

from .conftest import REPO
from .serving import ServeProcess

pytest.importorskip("starlette")
sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"),
]

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = REPO / "test-artifacts" / "serve-page"
SAMPLES = resources.files("zoo").joinpath("data/samples")
MODELS = ("mobilenet", "mobilenet_copy")
PHONE, LAPTOP = 390, 1280
BOTH_WIDTHS = pytest.mark.parametrize("width", [PHONE, LAPTOP], ids=["390px", "1280px"])
# What must never overlap: the page's own blocks, and the newest card's photo and top-5.
BLOCKS = {
    "heading": "h1",
    "model selector": "#model",
    "drop zone": "#drop",
    "preview": "#results .card .preview",
    "results": "#results .card .columns",
}


@pytest.fixture(scope="module")
def server(mobilenet_onnx, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve-page") / "serve.log"
    served = [f"{name}={mobilenet_onnx}" for name in MODELS]
    with ServeProcess(*served, "--provider", "cpu", log=log) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def width() -> int:
    """The viewport width; tests that check the layout run at both by parametrizing this."""
    return LAPTOP


@pytest.fixture
def page(browser, server, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        page.wait_for_selector(f"#model option[value={MODELS[-1]}]", state="attached")
        yield page
    finally:
        context.close()


@pytest.fixture
def shoot(page, request):
    """``shoot(step)``: a full-page screenshot named after the test and step; returns its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^\w.-]+", "-", request.node.name).strip("-")

    def shoot(step: str) -> Path:
        path = ARTIFACTS / f"{test}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return shoot


def sample(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(SAMPLES.joinpath(name).read_bytes())
    return path


def wait_for_cards(page, count: int) -> None:
    page.wait_for_function(
        "count => document.querySelectorAll('.card[data-state=done]').length === count", arg=count
    )


def overlapping(boxes: dict[str, dict]) -> list[str]:
    """The pairs of named boxes that share more than half a pixel each way."""
    names = list(boxes)
    pairs = []
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            a, b = boxes[first], boxes[second]
            across = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
            down = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
            if across > 0.5 and down > 0.5:
                pairs.append(f"{first} / {second}")
    return pairs


def assert_laid_out(page, blocks: dict[str, str], screenshot: Path) -> None:
    boxes = {name: page.locator(selector).first.bounding_box() for name, selector in blocks.items()}
    missing = [name for name, box in boxes.items() if not box]
    assert not missing, f"not shown: {missing}; see {screenshot}"
    assert not overlapping(boxes), f"{overlapping(boxes)} overlap; see {screenshot}"
    rectangles = page.evaluate("document.getElementById('drop').getClientRects().length")
    assert rectangles == 1, f"the drop zone is {rectangles} rectangles; see {screenshot}"
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page scrolls sideways {widths}; see {screenshot}"


@BOTH_WIDTHS
def test_the_layout_holds_before_and_after_a_photo(page, shoot, tmp_path):
    page_blocks = {name: BLOCKS[name] for name in ("heading", "model selector", "drop zone")}
    assert_laid_out(page, page_blocks, shoot("empty"))

    page.set_input_files("#file", str(sample(tmp_path, "parrot.jpg")))
    wait_for_cards(page, 1)
    page.wait_for_function("document.querySelector('.card .preview').complete")

    screenshot = shoot("one-photo")
    assert_laid_out(page, BLOCKS, screenshot)
    labels = page.locator(".card .label")
    titles = labels.evaluate_all("labels => labels.map((label) => label.title)")
    for text, title in zip(labels.all_inner_texts(), titles, strict=True):
        assert title.startswith(text), f"{title!r} is not the full {text!r}; see {screenshot}"


def test_a_photo_shows_its_top5_the_model_facts_and_the_request_time(page, server, tmp_path):
    photo = sample(tmp_path, "parrot.jpg")
    _, _, answer = server.post_image(f"/v1/models/{MODELS[0]}:predict", photo.read_bytes())
    want = [p["label"] for p in answer[0]["top"]]

    page.set_input_files("#file", str(photo))
    wait_for_cards(page, 1)

    assert page.locator(".card .label").all_inner_texts() == want
    assert page.inner_text(".card h2") == "parrot.jpg"
    assert re.fullmatch(r"\d+ ms", page.inner_text(".card .time"))
    facts = page.locator("#facts li").all_inner_texts()
    assert facts[:5] == [
        "mobilenet",
        "224\N{MULTIPLICATION SIGN}224 input",
        "fp32",
        "onnx on CPU",
        "weights: none",
    ]


@BOTH_WIDTHS
def test_several_photos_give_one_card_each_newest_first(page, shoot, tmp_path):
    names = ["cat.jpg", "parrot.jpg", "sunflower.jpg"]
    page.set_input_files("#file", [str(sample(tmp_path, name)) for name in names])
    wait_for_cards(page, len(names))

    screenshot = shoot("three-photos")
    assert page.locator(".card h2").all_inner_texts() == names[::-1], screenshot
    assert page.locator(".card .predictions").count() == len(names)
    assert_laid_out(page, BLOCKS, screenshot)


@BOTH_WIDTHS
def test_a_file_that_is_not_an_image_gets_an_error_card(page, server, shoot, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    boundary = "zoo-page-test"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="notes.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\nnot a photo\r\n--{boundary}--\r\n"
    ).encode()
    status, _, answer = server.post_image(
        f"/v1/models/{MODELS[0]}:predict", body, f"multipart/form-data; boundary={boundary}"
    )
    assert status == 422

    page.set_input_files("#file", str(notes))
    wait_for_cards(page, 1)

    screenshot = shoot("error")
    assert page.inner_text(".card.failed .error") == answer["error"], screenshot
    assert answer["error"].startswith("notes.txt: not an image")
    assert page.locator(".card .predictions").count() == 0
    assert_laid_out(page, BLOCKS, screenshot)


@BOTH_WIDTHS
def test_all_models_shows_one_column_per_model(page, shoot, tmp_path, width):
    page.get_by_label("Model").select_option(label=f"All {len(MODELS)} models, side by side")
    assert page.locator("#facts .facts").count() == len(MODELS)
    page.set_input_files("#file", str(sample(tmp_path, "parrot.jpg")))
    wait_for_cards(page, 1)

    screenshot = shoot("all-models")
    columns = page.locator(".card .column")
    assert columns.locator("h3 > span:first-child").all_inner_texts() == list(MODELS), screenshot
    assert columns.locator(".predictions li").count() == 5 * len(MODELS)
    assert_laid_out(page, BLOCKS, screenshot)
    boxes = {f"column {i}": columns.nth(i).bounding_box() for i in range(len(MODELS))}
    assert not overlapping(boxes), screenshot
    if width == LAPTOP:  # side by side, as zoo compare --plot draws them
        assert len({round(box["y"]) for box in boxes.values()}) == 1, screenshot


@pytest.mark.parametrize("how", ["paste", "drop"])
def test_a_pasted_or_dropped_photo_is_classified(page, tmp_path, how):
    data = base64.b64encode(SAMPLES.joinpath("cat.jpg").read_bytes()).decode()
    page.evaluate(
        """([data, how]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "image.jpg", { type: "image/jpeg" }));
            if (how === "paste") {
                document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: transfer }));
            } else {
                const drop = new DragEvent("drop", { dataTransfer: transfer, bubbles: true });
                document.getElementById("drop").dispatchEvent(drop);
            }
        }""",
        [data, how],
    )
    wait_for_cards(page, 1)

    assert page.inner_text(".card h2") == "image.jpg"
    assert page.locator(".card .predictions li").count() == 5


def test_the_controls_are_labelled_and_reached_by_keyboard_with_visible_focus(page):
    assert page.get_by_label("Model").get_attribute("id") == "model"
    reached = []
    for _ in range(2):
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate(
                """() => {
                    const focused = document.activeElement;
                    const style = getComputedStyle(focused);
                    return [focused.id, style.outlineStyle, style.outlineWidth];
                }"""
            )
        )
    assert [id for id, _, _ in reached] == ["model", "choose"]
    assert all(style != "none" and width != "0px" for _, style, width in reached), reached
    assert page.get_by_role("button", name="Choose photos…").is_visible()


@pytest.mark.parametrize("width", [PHONE])
def test_a_long_label_is_cut_and_keeps_its_full_text_on_hover(page, shoot, tmp_path):
    long_label = "sulphur-crested_cockatoo_" * 4 + "with_a_very_long_name"
    top = [{"class_id": "n01819313", "label": long_label, "score": 0.9}]
    answer = [{"image": "parrot.jpg", "model": MODELS[0], "backend": "onnx", "top": top}]
    page.route("**/*:predict*", lambda route: route.fulfill(json=answer))
    page.set_input_files("#file", str(sample(tmp_path, "parrot.jpg")))
    wait_for_cards(page, 1)

    screenshot = shoot("long-label")
    label = page.locator(".card .label")
    assert label.get_attribute("title") == f"{long_label} (n01819313)"
    assert label.evaluate("label => label.scrollWidth > label.clientWidth"), screenshot
    assert_laid_out(page, BLOCKS, screenshot)
