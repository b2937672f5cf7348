"""``--plot OUT.png`` for train and evaluate: learning curves and the confusion matrix, drawn
with Pillow (as ``zoo compare --plot``), no matplotlib."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from ..plot import _font, _save_atomically

CHART = (360, 220)
CELL = 34
MARGIN = 40
COLOURS = {
    "loss": "#2b6cb0",
    "val_loss": "#c53030",
    "accuracy": "#2b6cb0",
    "val_accuracy": "#c53030",
}


def plot_report(report: dict, path: str) -> None:
    """Loss and accuracy per epoch (when there is a history), then the validation (or
    evaluation) confusion matrix."""
    metrics = report["metrics"]["val"] if "history" in report else report
    history = report.get("history", [])
    classes = [row["class"] for row in metrics["per_class"]]
    matrix = metrics["confusion_matrix"]
    side = MARGIN * 3 + CELL * len(classes)
    width = max(side + 80, (CHART[0] + MARGIN) * 2 + MARGIN if history else 0)
    height = (CHART[1] + MARGIN * 2 if history else 0) + side + 40
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = _font(12)
    top = 0
    if history:
        for column, keys in enumerate((("loss", "val_loss"), ("accuracy", "val_accuracy"))):
            _curves(draw, MARGIN + column * (CHART[0] + MARGIN), MARGIN, history, keys, font)
        top = CHART[1] + MARGIN * 2
    _confusion(draw, MARGIN, top + MARGIN, classes, matrix, font)
    _save_atomically(image, Path(path))


def _curves(draw, x0, y0, history, keys, font) -> None:
    values = [record[key] for record in history for key in keys]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    width, height = CHART
    draw.rectangle([x0, y0, x0 + width, y0 + height], outline="#999999")
    for key in keys:
        points = [
            (
                x0 + width * i / max(len(history) - 1, 1),
                y0 + height - height * (record[key] - low) / span,
            )
            for i, record in enumerate(history)
        ]
        if len(points) > 1:
            draw.line(points, fill=COLOURS[key], width=2)
        draw.text((x0 + 4, y0 + 4 + 14 * keys.index(key)), key, fill=COLOURS[key], font=font)
    draw.text(
        (x0, y0 + height + 4),
        f"epochs 1-{len(history)}, {low:.3g} to {high:.3g}",
        fill="#222222",
        font=font,
    )


def _confusion(draw, x0, y0, classes, matrix, font) -> None:
    draw.text(
        (x0, y0 - 20),
        "confusion matrix (rows: true, columns: predicted)",
        fill="#222222",
        font=font,
    )
    peak = max(max(row) for row in matrix) or 1
    left = x0 + MARGIN * 2
    for i, (label, row) in enumerate(zip(classes, matrix, strict=True)):
        draw.text((x0, y0 + i * CELL + 10), label[:10], fill="#222222", font=font)
        for j, count in enumerate(row):
            shade = 255 - int(200 * count / peak)
            box = [left + j * CELL, y0 + i * CELL, left + (j + 1) * CELL, y0 + (i + 1) * CELL]
            draw.rectangle(box, fill=(shade, shade, 255), outline="white")
            draw.text((box[0] + 6, box[1] + 10), str(count), fill="#222222", font=font)
