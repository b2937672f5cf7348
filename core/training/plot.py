"""``--plot OUT.png`` for train and evaluate: the learning curves (loss and accuracy per epoch,
training and validation) when there is a history, and the confusion matrix with its colour
scale.

Drawn with matplotlib (see ``zoo.runtime.plot``); its constrained layout gives every piece its own
place: the legend above the curves (never over one), the class names left of the matrix's
rows and below its columns (turned when long), the colour bar beside it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from zoo.runtime.plot import new_figure, save_figure
from zoo.training.reports import EvaluationReport, TrainReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure, SubFigure

CURVES = ("loss", "accuracy")
RUNS = (("", "training", "#2b6cb0"), ("val_", "validation", "#c53030"))
"""A history key's prefix, the curve's name and its colour."""
CURVES_SIZE = (10.0, 3.4)
"""Inches."""
ANNOTATED_CLASSES = 20
"""Up to this many classes, each cell of the matrix shows its count."""
CELL, SMALL_CELL = 0.45, 0.24
"""A matrix cell's side in inches, with counts written in it and without."""
CHAR_WIDTH = 0.08
"""Inches a class name's character takes, at the tick labels' size."""
MATRIX_MARGIN = 2.2
"""Inches around the matrix for its title, axis labels and colour bar."""
COLOUR_BAR = (1.04, 0.0, 0.05, 1.0)
"""Where the colour bar goes, in the matrix's axes coordinates: left, bottom, width, height."""
MATRIX_WIDTH = 4.5
"""Inches: the least width, the title's."""


def plot_report(report: TrainReport | EvaluationReport, path: str | os.PathLike) -> None:
    """Draw ``report`` (``build_report_figure``) and write it to ``path``."""
    save_figure(build_report_figure(report), path)


def build_report_figure(report: TrainReport | EvaluationReport) -> Figure:
    """A training report: its curves, then the validation confusion matrix; an evaluation
    report: its confusion matrix."""
    history = report.history if isinstance(report, TrainReport) else None
    metrics, images = (
        (report.metrics["val"], "validation") if history else (report.metrics, _split(report))
    )
    classes = [row["class"] for row in metrics["per_class"]]
    cell = CELL if len(classes) <= ANNOTATED_CLASSES else SMALL_CELL
    label_room = CHAR_WIDTH * max(map(len, classes))
    side = len(classes) * cell + label_room + MATRIX_MARGIN
    turned = label_room > cell
    if not history:
        figure = new_figure(max(side, MATRIX_WIDTH), side)
        _confusion_matrix(figure, classes, metrics, images, turned)
        return figure
    figure = new_figure(max(CURVES_SIZE[0], side), CURVES_SIZE[1] + side)
    curves, matrix = figure.subfigures(2, 1, height_ratios=[CURVES_SIZE[1], side])
    _learning_curves(curves, history)
    _confusion_matrix(matrix, classes, metrics, images, turned)
    return figure


def _split(report: EvaluationReport) -> str:
    """Which of an evaluation's images the matrix counts."""
    return {"test": "test", "val": "validation", None: "all"}[report.split]


def _learning_curves(figure: Figure | SubFigure, history: Sequence[dict]) -> None:
    from matplotlib.ticker import MaxNLocator

    epochs = [record["epoch"] for record in history]
    for axes, key in zip(figure.subplots(1, len(CURVES)), CURVES, strict=True):
        for prefix, name, colour in RUNS:
            values = [record[prefix + key] for record in history]
            axes.plot(epochs, values, marker="o", markersize=3, color=colour, label=name)
        axes.set(title=f"{key} per epoch", xlabel="epoch", ylabel=key)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
    figure.legend(*axes.get_legend_handles_labels(), loc="outside upper center", ncols=len(RUNS))


def _confusion_matrix(
    figure: Figure | SubFigure, classes: Sequence[str], metrics: dict, images: str, turned: bool
) -> None:
    """Rows: the true class, columns: the predicted one (their names ``turned`` upright when
    wider than a cell); each cell's colour on the colour bar beside the matrix, and its count
    written in it when the matrix is small."""
    counts = np.asarray(metrics["confusion_matrix"])
    axes = figure.subplots()
    shading = axes.imshow(counts, cmap="Blues", vmin=0)
    places = range(len(classes))
    axes.set_xticks(
        places,
        classes,
        rotation=90 if turned else 0,
        ha="right" if turned else "center",
        va="center" if turned else "top",
        rotation_mode="anchor",
    )
    axes.set_yticks(places, classes)
    axes.set(xlabel="predicted", ylabel="true")
    figure.suptitle(
        f"confusion matrix, {images} images\n"
        f"top-1 {metrics['top1']:.3f} on {metrics['images']}, macro-F1 {metrics['macro_f1']:.3f}"
    )
    if len(classes) <= ANNOTATED_CLASSES:
        dark = counts.max() / 2
        for (row, column), count in np.ndenumerate(counts):
            colour = "white" if count > dark else "black"
            axes.text(column, row, str(count), ha="center", va="center", color=colour)
    colour_bar = axes.inset_axes(COLOUR_BAR)  # beside the matrix, as tall as it
    figure.colorbar(shading, cax=colour_bar, label="images")
