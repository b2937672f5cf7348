"""``--plot OUT.png`` for train and evaluate: learning curves and the confusion matrix, drawn
with Pillow (as ``zoo compare --plot``), no matplotlib.

Every piece has its own place, computed before anything is drawn (``Layout``): the legends
above the charts (never over a curve), the class names left of the matrix's rows and, turned
upright, above its columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from ..plot import _font, _save_atomically

CHART = (360, 220)
CELL = 34
MARGIN = 40
LABEL_WIDTH = 84
"""Room left of the matrix for a row's class name (``NAME_CHARS`` characters)."""
LABEL_HEIGHT = 84
"""Room above the matrix for a column's class name, turned upright."""
NAME_CHARS = 12
TEXT = "#222222"
COLOURS = {
    "loss": "#2b6cb0",
    "val_loss": "#c53030",
    "accuracy": "#2b6cb0",
    "val_accuracy": "#c53030",
}
CURVES = (("loss", "val_loss"), ("accuracy", "val_accuracy"))

Box = tuple[int, int, int, int]
"""left, top, right, bottom"""


@dataclass
class Layout:
    """Where each piece goes, in pixels."""

    size: tuple[int, int]
    charts: list[Box]
    """One per pair of curves; each chart's legend is the ``MARGIN`` above it."""
    title: tuple[int, int]
    column_labels: Box
    row_labels: Box
    matrix: Box


def layout(classes: int, has_history: bool) -> Layout:
    charts = []
    top = 0
    if has_history:
        charts = [
            (x, MARGIN, x + CHART[0], MARGIN + CHART[1])
            for x in (MARGIN + column * (CHART[0] + MARGIN) for column in range(len(CURVES)))
        ]
        top = MARGIN + CHART[1] + MARGIN  # the charts' range line sits in the gap below
    title = (MARGIN, top + MARGIN // 2)
    grid_left, grid_top = MARGIN + LABEL_WIDTH, title[1] + 20 + LABEL_HEIGHT
    matrix = (grid_left, grid_top, grid_left + CELL * classes, grid_top + CELL * classes)
    width = max([matrix[2], *(chart[2] for chart in charts)]) + MARGIN
    return Layout(
        size=(width, matrix[3] + MARGIN),
        charts=charts,
        title=title,
        column_labels=(grid_left, title[1] + 20, matrix[2], grid_top),
        row_labels=(MARGIN, grid_top, grid_left, matrix[3]),
        matrix=matrix,
    )


def plot_report(report: dict, path: str) -> None:
    """Loss and accuracy per epoch (when there is a history), then the validation (or
    evaluation) confusion matrix."""
    metrics = report["metrics"]["val"] if "history" in report else report
    history = report.get("history", [])
    classes = [row["class"] for row in metrics["per_class"]]
    places = layout(len(classes), bool(history))
    image = Image.new("RGB", places.size, "white")
    draw = ImageDraw.Draw(image)
    font = _font(12)
    for box, keys in zip(places.charts, CURVES, strict=False):
        _curves(draw, box, history, keys, font)
    _confusion(image, draw, places, classes, metrics["confusion_matrix"], font)
    _save_atomically(image, Path(path))


def _curves(draw, box: Box, history, keys, font) -> None:
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    values = [record[key] for record in history for key in keys]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    draw.rectangle(box, outline="#999999")
    legend_x = x0
    for key in keys:
        points = [
            (
                x0 + width * i / max(len(history) - 1, 1),
                y1 - height * (record[key] - low) / span,
            )
            for i, record in enumerate(history)
        ]
        if len(points) > 1:
            draw.line(points, fill=COLOURS[key], width=2)
        # The legend, above the chart: a short stroke of the curve's colour, then its name.
        draw.line([(legend_x, y0 - 12), (legend_x + 16, y0 - 12)], fill=COLOURS[key], width=2)
        draw.text((legend_x + 20, y0 - 19), key, fill=COLOURS[key], font=font)
        legend_x += 28 + int(draw.textlength(key, font=font))
    draw.text(
        (x0, y1 + 4), f"epochs 1-{len(history)}, {low:.3g} to {high:.3g}", fill=TEXT, font=font
    )


def _confusion(image, draw, places: Layout, classes, matrix, font) -> None:
    draw.text(
        places.title, "confusion matrix (rows: true, columns: predicted)", fill=TEXT, font=font
    )
    peak = max(max(row) for row in matrix) or 1
    left, top = places.matrix[:2]
    for j, label in enumerate(classes):
        _upright_text(image, (left + j * CELL + CELL // 2 - 7, places.matrix[1] - 4), label, font)
    for i, (label, row) in enumerate(zip(classes, matrix, strict=True)):
        draw.text(
            (places.row_labels[0], top + i * CELL + 10), label[:NAME_CHARS], fill=TEXT, font=font
        )
        for j, count in enumerate(row):
            shade = 255 - int(200 * count / peak)
            box = [left + j * CELL, top + i * CELL, left + (j + 1) * CELL, top + (i + 1) * CELL]
            draw.rectangle(box, fill=(shade, shade, 255), outline="white")
            draw.text((box[0] + 6, box[1] + 10), str(count), fill=TEXT, font=font)


def _upright_text(image: Image.Image, bottom_left: tuple[int, int], text: str, font) -> None:
    """``text`` read from bottom to top, its baseline's start at ``bottom_left``."""
    text = text[:NAME_CHARS]
    probe = ImageDraw.Draw(image)
    width = int(probe.textlength(text, font=font)) + 2
    stamp = Image.new("L", (width, 16), 0)
    ImageDraw.Draw(stamp).text((0, 1), text, fill=255, font=font)
    stamp = stamp.rotate(90, expand=True)
    x, y = bottom_left
    image.paste(TEXT, (x, y - stamp.height, x + stamp.width, y), mask=stamp)
