"""The training and evaluation reports, for people at a terminal."""

from __future__ import annotations

from zoo.base.printing import print_table
from zoo.training.reports import EvaluationReport, TrainReport

MISCLASSIFIED_SHOWN = 10


def print_train_report(result: TrainReport) -> None:
    counts = result.counts
    print(
        f"{result.name}: {len(result.classes)} classes on {result.base} "
        f"({result.mode} mode), saved to {result.path}"
    )
    splits = [s for s in ("train", "val", "test") if any(c[s] for c in counts.values())]
    print()
    print_table(
        ["class", *splits], [[label, *(str(c[s]) for s in splits)] for label, c in counts.items()]
    )
    for warning in result.warnings:
        print(f"warning: {warning}")
    if result.unreadable:
        print(f"{len(result.unreadable)} unreadable image(s) skipped")
    if result.stray_files:
        print(f"{result.stray_files} non-image file(s) ignored")
    print()
    print_table(
        ["epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy"],
        [
            [
                str(r["epoch"]),
                r["phase"],
                f"{r['loss']:.4f}",
                f"{r['accuracy']:.4f}",
                f"{r['val_loss']:.4f}",
                f"{r['val_accuracy']:.4f}",
            ]
            for r in result.history
        ],
    )
    if result.refit:
        print(
            f"best epoch: {result.best_epoch} (lowest validation loss); then trained again for "
            f"{result.refit['epochs']} epochs on all {result.refit['images']} training and "
            "validation images, and kept (the validation figures below are the first head's)"
        )
    else:
        print(f"best epoch: {result.best_epoch} (lowest validation loss; its weights are kept)")
    features = result.features
    agreement = features["agreement_with_keras"]
    computed = (
        f"{features['computed']} computed on {features['runtime']}, "
        if features["computed"]
        else "all "
    )
    print(
        f"features: {computed}{features['cached']} from the cache, {features['seconds']:.1f} s"
        + (f" (agree with Keras within {agreement:.2g} of scale)" if agreement is not None else "")
        + f"; training: {result.train_seconds:.1f} s"
    )
    if result.activations:
        print(f"fine-tuning: {_activations_line(result.activations)}")
    for split, metrics in result.metrics.items():
        print()
        print(f"{split}:")
        print_metrics(metrics)


def _activations_line(activations: dict) -> str:
    if not activations["used"]:
        return f"on the images ({activations['reason']})"
    return (
        f"on the activations at {activations['layer']}'s input, {activations['dtype']} "
        f"(top-1 agreement {activations['top1_agreement']:.0%} and probabilities within "
        f"{activations['max_probability_diff']:.2g} of float32's on "
        f"{activations['images']} images), {activations['computed']} computed, "
        f"{activations['cached']} from the cache, {activations['bytes'] / 1e9:.2f} GB, "
        f"{activations['seconds']:.1f} s"
    )


def print_metrics(metrics: dict) -> None:
    print(
        f"top-1 {metrics['top1']:.4f} on {metrics['images']} images "
        f"(majority-class baseline {metrics['baseline_top1']:.4f}: always "
        f"{metrics['baseline_class']!r}), macro-F1 {metrics['macro_f1']:.4f}"
    )
    print()
    print_table(
        ["class", "precision", "recall", "f1", "support"],
        [
            [
                r["class"],
                f"{r['precision']:.3f}",
                f"{r['recall']:.3f}",
                f"{r['f1']:.3f}",
                str(r["support"]),
            ]
            for r in metrics["per_class"]
        ],
    )
    classes = [r["class"] for r in metrics["per_class"]]
    print()
    print("confusion matrix (rows: true class, columns: predicted)")
    print_table(
        ["", *(c[:6] for c in classes)],
        [
            [label, *map(str, row)]
            for label, row in zip(classes, metrics["confusion_matrix"], strict=True)
        ],
    )
    if metrics["most_confused"]:
        print()
        print(
            "most confused: "
            + ", ".join(
                f"{p['true']} -> {p['predicted']} ({p['count']})" for p in metrics["most_confused"]
            )
        )
    wrong = metrics["misclassified"]
    if wrong:
        print()
        print(f"misclassified ({len(wrong)}, most confident first):")
        print_table(
            ["file", "true", "predicted", "score"],
            [
                [w["file"], w["true"], w["predicted"], f"{w['score']:.3f}"]
                for w in wrong[:MISCLASSIFIED_SHOWN]
            ],
        )
        if len(wrong) > MISCLASSIFIED_SHOWN:
            print(f"... and {len(wrong) - MISCLASSIFIED_SHOWN} more (all in --json / report.json)")


def print_evaluation(report: EvaluationReport) -> None:
    """``zoo evaluate``'s report: what was evaluated, the metrics, and for an int8 or fp16
    model its agreement with float32."""
    split = f" ({report.split} images)" if report.split else ""
    print(f"{report.model} on {report.backend} ({report.precision}), {report.data}{split}")
    if report.unreadable:
        print(f"{len(report.unreadable)} unreadable image(s) skipped")
    print_metrics(report.metrics)
    if report.fp32_agreement is not None:
        _print_fp32_agreement(report.precision, report.fp32_agreement)


def _print_fp32_agreement(precision: str, agreement: dict) -> None:
    """An int8 or fp16 model against its float32 reference, with the export's thresholds."""
    print()
    if not agreement["measured"]:
        print(f"agreement with float32: not measured ({agreement['reason']})")
        return
    limits = agreement["thresholds"]
    verdict = "passes" if agreement["passed"] else "FAILS"
    print(
        f"{precision} against {agreement['reference']} on {agreement['images']} images: "
        f"{verdict}: top-1 agrees on {agreement['top1_agreement']:.1%} (at least "
        f"{limits['top1_agreement']:.0%}), mean top-5 overlap {agreement['top5_overlap']:.3f} "
        f"(at least {limits['top5_overlap']:.2f}), max |probability diff| "
        f"{agreement['max_probability_diff']:.3g}; float32's own top-1 here "
        f"{agreement['reference_top1']:.4f}"
    )
    changed = agreement["top1_changed"]
    if changed:
        print(f"top-1 changed on {len(changed)} image(s):")
        print_table(
            ["file", "float32", precision],
            [[c["file"], c["reference"], c["predicted"]] for c in changed[:MISCLASSIFIED_SHOWN]],
        )
        if len(changed) > MISCLASSIFIED_SHOWN:
            print(f"... and {len(changed) - MISCLASSIFIED_SHOWN} more (all in --json)")
