"""``zoo compare --plot``: a PNG grid, one row per image, one bar chart of top-K per model.

Drawn with Pillow alone, so plotting needs no matplotlib.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from .errors import ZooError
from .files import atomic_path

MARGIN = 12
THUMB = 200
PANEL_WIDTH = 330
LABEL_WIDTH = 150
BAR_WIDTH = 120
ROW_GAP = 24
BACKGROUND, TEXT, BAR, TOP_BAR, GRID = "white", "#222222", "#8fb3d9", "#2b6cb0", "#dddddd"


def check_writable(path: str | os.PathLike) -> None:
    """Fail before any heavy work if the plot cannot be written at ``path``."""
    target = Path(path)
    if target.is_dir():
        raise ZooError(f"--plot {path}: is a directory; give a file name such as compare.png")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ZooError(f"--plot {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ZooError(f"--plot {path}: folder {folder} is not writable")


def plot_comparison(
    images: Sequence[tuple[str, Image.Image]],
    results: Sequence[Sequence[dict]],
    titles: dict[str, str],
    path: str | os.PathLike,
) -> None:
    """Draw the grid and write it atomically (temporary file, then rename).

    ``titles`` maps each model, in column order, to the title over its charts.
    """
    font, title_font = _font(14), _font(16)
    top = max((len(r["top"]) for per_image in results for r in per_image), default=1)
    row_height = max(THUMB + 24, 28 + 22 * top) + ROW_GAP
    width = 2 * MARGIN + THUMB + 20 + PANEL_WIDTH * len(titles)
    canvas = Image.new("RGB", (width, 2 * MARGIN + row_height * len(images)), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for row, ((name, image), per_image) in enumerate(zip(images, results, strict=True)):
        y = MARGIN + row * row_height
        if row:
            draw.line([(0, y - ROW_GAP // 2), (width, y - ROW_GAP // 2)], fill=GRID)
        thumb = ImageOps.contain(image, (THUMB, THUMB))
        canvas.paste(thumb, (MARGIN + (THUMB - thumb.width) // 2, y + (THUMB - thumb.height) // 2))
        caption = _fit(draw, Path(name).name, THUMB, font)
        draw.text((MARGIN, y + THUMB + 4), caption, fill=TEXT, font=font)
        by_model = {result["model"]: result["top"] for result in per_image}
        for column, (model, title) in enumerate(titles.items()):
            if model in by_model:
                x = MARGIN + THUMB + 20 + column * PANEL_WIDTH
                draw.text(
                    (x, y),
                    _fit(draw, title, PANEL_WIDTH - 10, title_font),
                    fill=TEXT,
                    font=title_font,
                )
                _bar_chart(draw, x, y + 28, by_model[model], font)
    _save_atomically(canvas, Path(path))


def _bar_chart(draw: ImageDraw.ImageDraw, x: int, y: int, top: Sequence[dict], font) -> None:
    for i, p in enumerate(top):
        line_y = y + 22 * i
        draw.text((x, line_y), _fit(draw, p["label"], LABEL_WIDTH - 6, font), fill=TEXT, font=font)
        bar_x = x + LABEL_WIDTH
        draw.rectangle([bar_x, line_y + 2, bar_x + BAR_WIDTH, line_y + 16], outline=GRID)
        length = round(BAR_WIDTH * max(0.0, min(1.0, p["score"])))
        if length:
            colour = TOP_BAR if i == 0 else BAR
            draw.rectangle([bar_x, line_y + 2, bar_x + length, line_y + 16], fill=colour)
        draw.text((bar_x + BAR_WIDTH + 6, line_y), f"{p['score']:.3f}", fill=TEXT, font=font)


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int, font) -> str:
    """``text``, shortened with an ellipsis to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow built without FreeType
        return ImageFont.load_default()


def _save_atomically(image: Image.Image, path: Path) -> None:
    try:
        with atomic_path(path) as temporary:
            image.save(temporary, format="PNG")
    except OSError as error:
        raise ZooError(f"cannot write {path}: {error.strerror or error}") from None
