"""``--plot``: compare's grid, train's curves and confusion matrix, evaluate's matrix. Each is
checked on its matplotlib figure, once drawn: every text and frame is on the figure and apart
from every other, every row and column is named, the matrix has its colour bar; and a machine
without matplotlib is told so before any work starts."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.text import Text
from PIL import Image

from zoo.base.errors import ZooError
from zoo.cli.main import main
from zoo.runtime.plot import MISSING_MATPLOTLIB, build_comparison_figure, check_can_plot, new_figure
from zoo.training.metrics import classification_report
from zoo.training.plot import build_report_figure, plot_report
from zoo.training.reports import EvaluationReport, TrainReport

LONG_NAME = "a-very-long-class-name"


def every_axes(figure: Figure) -> list[Axes]:
    """The figure's axes and those inside them (a colour bar placed by ``inset_axes``)."""
    return [each for axes in figure.axes for each in (axes, *axes.child_axes)]


def laid_out(figure: Figure) -> list[tuple[str, object]]:
    """Every piece of the drawn figure, named, with its box in pixels: each axes' plotting
    area, each legend's frame, and every visible text but the legends' own and the values
    written inside an axes (see ``annotations_outside_their_axes``)."""
    figure.canvas.draw()
    inner = {id(text) for legend in figure.findobj(Legend) for text in legend.findobj(Text)}
    inner |= {id(text) for axes in every_axes(figure) for text in axes.texts}
    inner |= {id(label) for axes in every_axes(figure) for label in _ticks_out_of_view(axes)}
    texts = [
        text
        for text in figure.findobj(Text)
        if text.get_visible() and text.get_text() and id(text) not in inner
    ]
    return (
        [(f"axes {axes.get_label()!r}", axes.get_window_extent()) for axes in every_axes(figure)]
        + [(f"legend {i}", legend.get_window_extent()) for i, legend in enumerate(_legends(figure))]
        + [(f"text {text.get_text()!r}", text.get_window_extent()) for text in texts]
    )


def _legends(figure) -> list[Legend]:
    return [legend for legend in figure.findobj(Legend) if legend.get_visible()]


def _ticks_out_of_view(axes) -> list[Text]:
    """Tick labels a locator made beyond the axis's limits: matplotlib does not draw them."""
    out = []
    for axis, coordinate in ((axes.xaxis, 0), (axes.yaxis, 1)):
        low, high = sorted(axis.get_view_interval())
        for tick in axis.get_major_ticks():
            where = tick.label1.get_position()[coordinate]
            if not low - 1e-9 <= where <= high + 1e-9:
                out += [tick.label1, tick.label2]
    return out


def overlaps(figure: Figure) -> list[str]:
    """The pieces of ``figure`` that leave it or overlap another, in words."""
    pieces = laid_out(figure)
    whole = figure.bbox
    found = [
        f"{name} leaves the figure"
        for name, box in pieces
        if box.x0 < whole.x0 or box.y0 < whole.y0 or box.x1 > whole.x1 or box.y1 > whole.y1
    ]
    for i, (name, box) in enumerate(pieces):
        found += [f"{name} overlaps {other}" for other, b in pieces[i + 1 :] if box.overlaps(b)]
    return found


def annotations_outside_their_axes(figure: Figure) -> list[str]:
    figure.canvas.draw()
    return [
        text.get_text()
        for axes in every_axes(figure)
        for text in axes.texts
        if not axes.get_window_extent().contains(*text.get_window_extent().get_points().mean(0))
        or text.get_window_extent().width > axes.get_window_extent().width
    ]


def tick_names(axis) -> list[str]:
    return [label.get_text() for label in axis.get_ticklabels()]


def metrics(classes: list[str], per_class: int = 12) -> dict:
    """A classification report over ``classes``: mostly right, some confusions."""
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(len(classes)), per_class)
    probabilities = rng.random((len(truth), len(classes)))
    probabilities[np.arange(len(truth)), truth] += 0.7
    return classification_report(truth, probabilities, classes, [str(i) for i in truth])


HISTORY = [
    {
        "epoch": e,
        "loss": 2.0 / e,
        "val_loss": 1.5 / e,
        "accuracy": 0.2 * e,
        "val_accuracy": 0.18 * e,
    }
    for e in range(1, 5)
]


def test_the_layout_check_finds_overlaps_and_pieces_off_the_figure():
    figure = new_figure(3, 2)
    axes = figure.subplots()
    axes.set_title("a title")
    figure.text(0.5, 0.5, "over the plotting area")
    figure.text(0.95, 0.5, "off the right edge")
    found = overlaps(figure)
    assert "axes '' overlaps text 'over the plotting area'" in found
    assert "text 'off the right edge' leaves the figure" in found


def train_report(classes) -> TrainReport:
    return TrainReport(
        name="t",
        path=Path("t"),
        base="tinycnn",
        mode="head",
        classes=classes,
        counts={},
        warnings=[],
        unreadable={},
        stray_files=0,
        settings={},
        history=HISTORY,
        best_epoch=len(HISTORY),
        metrics={"val": metrics(classes)},
        features={},
        train_seconds=0.0,
    )


def evaluation_report(split, figures) -> EvaluationReport:
    return EvaluationReport("m", "keras", "fp32", "data", split, {}, figures)


@pytest.mark.slow
def test_the_training_plot_gives_every_piece_its_own_place():
    classes = ["airplane", "automobile", LONG_NAME, "cat"]
    report = train_report(classes)
    figure = build_report_figure(report)
    assert overlaps(figure) == []
    assert annotations_outside_their_axes(figure) == []
    loss, accuracy, matrix, colour_bar = every_axes(figure)
    assert (loss.get_ylabel(), accuracy.get_ylabel()) == ("loss", "accuracy")
    assert [line.get_ydata().tolist() for line in loss.lines] == [
        [r["loss"] for r in HISTORY],
        [r["val_loss"] for r in HISTORY],
    ]
    (legend,) = _legends(figure)
    assert [text.get_text() for text in legend.get_texts()] == ["training", "validation"]
    assert tick_names(matrix.xaxis) == classes and tick_names(matrix.yaxis) == classes
    assert {label.get_rotation() for label in matrix.get_xticklabels()} == {90.0}  # long names
    counts = report.metrics["val"]["confusion_matrix"]
    assert [text.get_text() for text in matrix.texts] == [str(c) for row in counts for c in row]
    assert matrix.images[0].colorbar.ax is colour_bar and colour_bar.get_ylabel() == "images"


@pytest.mark.slow
def test_a_large_evaluation_matrix_names_every_class_without_counts():
    classes = [f"class-number-{i}" for i in range(30)]
    report = evaluation_report("test", metrics(classes, per_class=3))
    figure = build_report_figure(report)
    assert overlaps(figure) == []
    matrix, colour_bar = every_axes(figure)
    assert tick_names(matrix.xaxis) == classes and tick_names(matrix.yaxis) == classes
    assert len(matrix.texts) == 0
    assert matrix.images[0].colorbar.ax is colour_bar and colour_bar.get_ylabel() == "images"
    assert "test images" in figure.get_suptitle()


def test_short_class_names_stay_level(tmp_path):
    report = evaluation_report(None, metrics(["cat", "dog"]))
    matrix = build_report_figure(report).axes[0]
    assert {label.get_rotation() for label in matrix.get_xticklabels()} == {0.0}
    plot_report(report, tmp_path / "evaluate.png")
    with Image.open(tmp_path / "evaluate.png") as written:
        assert written.format == "PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["evaluate.png"]  # no temporary left


@pytest.mark.slow
def test_the_comparison_grid_gives_every_piece_its_own_place():
    top = [
        {"label": "German short-haired pointer", "score": 0.93},
        {"label": "tabby", "score": 0.05},
        {"label": "Egyptian cat", "score": 0.01},
    ]
    images = [(f"photos/photo_{i}.jpg", Image.new("RGB", (400, 300), "teal")) for i in range(3)]
    models = ["mobilenet", "inception_v3"]
    results = [[{"model": model, "top": top} for model in models] for _ in images]
    titles = {
        "mobilenet": "mobilenet (mobilenet_v1_1.0_224_imagenet_from_coral_quant.h5)",
        "inception_v3": "inception_v3 (random init)",
    }
    figure = build_comparison_figure(images, results, titles)
    assert overlaps(figure) == []
    assert annotations_outside_their_axes(figure) == []
    rows = np.reshape(figure.axes, (3, 3))
    assert [axes.get_xlabel() for axes in rows[:, 0]] == [f"photo_{i}.jpg" for i in range(3)]
    for chart in rows[:, 1:].flat:
        assert tick_names(chart.yaxis) == ["German short-haired poi…", "tabby", "Egyptian cat"]
        assert [text.get_text() for text in chart.texts] == ["0.930", "0.050", "0.010"]
    assert [axes.get_title() for axes in rows[0, 1:]] == [
        "mobilenet (mobilenet_v1_1.0_224_imag\nenet_from_coral_quant.h5)",
        "inception_v3 (random init)",
    ]


@pytest.fixture
def no_matplotlib(monkeypatch):
    """Every import of matplotlib, or of one of its modules, fails."""
    for name in [name for name in sys.modules if name.partition(".")[0] == "matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)


def test_without_matplotlib_plot_fails_in_one_line(no_matplotlib, tmp_path):
    with pytest.raises(ZooError) as error:
        check_can_plot(tmp_path / "x.png")
    assert (
        str(error.value) == MISSING_MATPLOTLIB == "--plot needs matplotlib: pip install 'zoo[plot]'"
    )


@pytest.mark.parametrize("command", [["compare", "{tmp}"], ["evaluate", "mobilenet", "{tmp}"]])
def test_without_matplotlib_no_work_starts(no_matplotlib, capsys, monkeypatch, command, tmp_path):
    import zoo.runtime.compare
    import zoo.training

    def refuse(*args, **kwargs):
        raise AssertionError("the work started")

    monkeypatch.setattr(zoo.runtime.compare, "compare", refuse)
    monkeypatch.setattr(zoo.training, "evaluate", refuse)
    arguments = [word.format(tmp=tmp_path) for word in command]
    assert main([*arguments, "--plot", str(tmp_path / "x.png")]) == 1
    assert capsys.readouterr().err == f"zoo: {MISSING_MATPLOTLIB}\n"
