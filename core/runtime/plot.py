"""``--plot OUT.png``: what every plot shares, and ``zoo compare``'s grid (one row per image, its
thumbnail beside one bar chart of top-K per model). ``zoo.training.plot`` draws train's and
evaluate's.

Drawn with matplotlib (the ``plot`` extra) on its Agg canvas, without pyplot's global state.
matplotlib is imported inside the functions, when a plot is asked for: light commands never
import it.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageOps

from zoo.base.errors import ZooError
from zoo.base.files import atomic_path

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MISSING_MATPLOTLIB = "--plot needs matplotlib: pip install 'zoo[plot]'"
DPI = 100
THUMB = 256
"""Largest side, in pixels, of the photo drawn in the grid."""
THUMB_WIDTH, CHART_WIDTH, ROW_HEIGHT, TITLE_HEIGHT = 2.4, 3.8, 2.4, 0.6
"""Inches."""
LABEL_CHARS = 24
"""A bar's label longer than this is cut, with an ellipsis."""
TITLE_CHARS = 36
"""A chart's title is wrapped at this width."""
BAR, TOP_BAR = "#8fb3d9", "#2b6cb0"
SCORE_INSIDE = 0.7
"""A score at least this high is written inside its bar, a lower one after it."""


def check_can_plot(path: str | os.PathLike) -> None:
    """Fail before any heavy work if no plot can be drawn (matplotlib missing) or written at
    ``path``."""
    _matplotlib()
    target = Path(path)
    if target.is_dir():
        raise ZooError(f"--plot {path}: is a directory; give a file name such as compare.png")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ZooError(f"--plot {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ZooError(f"--plot {path}: folder {folder} is not writable")


def new_figure(width: float, height: float) -> Figure:
    """An empty figure of ``width`` x ``height`` inches on an Agg canvas, its pieces placed by
    matplotlib's constrained layout (nothing overlaps, nothing leaves the figure)."""
    figure_class, canvas_class = _matplotlib()
    figure = figure_class(figsize=(width, height), dpi=DPI, layout="constrained")
    canvas_class(figure)
    return figure


def save_figure(figure: Figure, path: str | os.PathLike) -> None:
    """Write ``figure`` as a PNG atomically (temporary file, then rename)."""
    try:
        with atomic_path(Path(path)) as temporary:
            figure.savefig(temporary, format="png")
    except OSError as error:
        raise ZooError(f"cannot write {path}: {error.strerror or error}") from None


def _matplotlib():
    """matplotlib's ``Figure`` and ``FigureCanvasAgg``; a ``ZooError`` when not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ZooError(MISSING_MATPLOTLIB) from None
    return Figure, FigureCanvasAgg


def plot_comparison(
    images: Sequence[tuple[str, Image.Image]],
    results: Sequence[Sequence[dict]],
    titles: dict[str, str],
    path: str | os.PathLike,
) -> None:
    """Draw the grid (``build_comparison_figure``) and write it to ``path``."""
    save_figure(build_comparison_figure(images, results, titles), path)


def build_comparison_figure(
    images: Sequence[tuple[str, Image.Image]],
    results: Sequence[Sequence[dict]],
    titles: dict[str, str],
) -> Figure:
    """One row per image: its thumbnail, then one chart per model that gave results (in
    ``results``' order), titled in the first row by ``titles[model]``."""
    models = [result["model"] for result in results[0]]
    top = max(len(result["top"]) for per_image in results for result in per_image)
    figure = new_figure(
        THUMB_WIDTH + CHART_WIDTH * len(models), TITLE_HEIGHT + ROW_HEIGHT * len(images)
    )
    grid = figure.subplots(
        len(images),
        1 + len(models),
        squeeze=False,
        width_ratios=[THUMB_WIDTH] + [CHART_WIDTH] * len(models),
    )
    for row, ((name, image), per_image) in enumerate(zip(images, results, strict=True)):
        _thumbnail(grid[row][0], name, image)
        for axes, result in zip(grid[row][1:], per_image, strict=True):
            _top_k_bars(axes, result["top"], top)
            if row == 0:
                axes.set_title(textwrap.fill(titles[result["model"]], TITLE_CHARS))
            if row == len(images) - 1:
                axes.set_xlabel("score")
    return figure


def _thumbnail(axes: Axes, name: str, image: Image.Image) -> None:
    axes.imshow(ImageOps.contain(image, (THUMB, THUMB)))
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_xlabel(_shortened(Path(name).name, LABEL_CHARS))


def _top_k_bars(axes: Axes, top: Sequence[dict], rows: int) -> None:
    """Horizontal bars, the best first and darker, each score written beside or inside its
    bar; ``rows`` bar places, so that every chart's bars have the same height."""
    scores = [p["score"] for p in top]
    places = range(len(top))
    axes.barh(places, scores, color=[TOP_BAR] + [BAR] * (len(top) - 1))
    axes.set_yticks(places, [_shortened(p["label"], LABEL_CHARS) for p in top])
    axes.set_xlim(0, 1)
    axes.set_ylim(rows - 0.5, -0.5)
    for place, score in zip(places, scores, strict=True):
        inside = score >= SCORE_INSIDE
        axes.text(
            score - 0.02 if inside else score + 0.02,
            place,
            f"{score:.3f}",
            ha="right" if inside else "left",
            va="center",
            color="white" if inside else "black",
        )


def _shortened(text: str, limit: int) -> str:
    """``text``, cut with an ellipsis to ``limit`` characters."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
