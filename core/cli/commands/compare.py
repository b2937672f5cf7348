"""``zoo compare``: classify images with several models, side by side (and as a PNG grid)."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from zoo.base.errors import ImageError
from zoo.base.exit_codes import EXIT_ERROR
from zoo.base.printing import error_record, print_comparison, print_json
from zoo.cli.options import (
    FILES_AS_THEY_ARE,
    add_input_options,
    add_json,
    add_model_options,
    add_model_references,
    add_top,
    comma_list,
    input_overrides,
    option_groups,
)
from zoo.plugin.registry import get_registry

if TYPE_CHECKING:
    from PIL import Image


def add_command(commands) -> None:
    compare = commands.add_parser(
        "compare", help="classify images with several models, side by side"
    )
    compare.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    inputs, model, output = option_groups(compare, "input", "model", "output")
    add_input_options(inputs)
    model.add_argument(
        "--models",
        type=comma_list,
        action="extend",
        metavar="M,N",
        help="models, comma-separated: names or .keras/.h5 files (default: every registered "
        f"model); {FILES_AS_THEY_ARE}",
    )
    add_model_options(model)
    add_top(output)
    add_json(output)
    output.add_argument("--plot", metavar="OUT.png", help="also draw a PNG grid of top-K bars")
    add_model_references(compare, "models")
    compare.set_defaults(run=run)


def run(args) -> int:
    from zoo.runtime.compare import compare, parse_weights

    registry = get_registry()
    names = args.models or list(registry.models)
    specs = [registry.model(name) for name in names]
    weights = parse_weights(args.weights, [spec.name for spec in specs])
    if args.plot:
        from zoo.runtime.plot import check_can_plot

        check_can_plot(args.plot)
    decoded = list(_decoded(args.images))
    images = [(path, image) for path, image in decoded if not isinstance(image, ImageError)]
    per_image, failures = (
        compare(
            images,
            specs,
            args.backend,
            weights,
            args.top,
            input_overrides(args),
            args.provider,
            args.threads,
        )
        if images
        else ([], [])
    )
    for failure in failures:
        print(f"zoo: {failure}", file=sys.stderr)
    results = iter(per_image)
    ordered = [
        result
        for path, image in decoded
        for result in (
            [error_record(path, image.reason)] if isinstance(image, ImageError) else next(results)
        )
    ]
    if args.json:
        print_json(ordered)
    else:
        print_comparison(ordered, [spec.name for spec in specs])
    if args.plot and images and len(failures) < len(specs):
        from zoo.runtime.plot import plot_comparison

        titles = {spec.name: _chart_title(spec.name, weights[spec.name]) for spec in specs}
        plot_comparison(images, per_image, titles, args.plot)
        print(f"zoo: wrote {args.plot}", file=sys.stderr)
    return EXIT_ERROR if failures or len(images) < len(decoded) else 0


def _chart_title(model: str, weights: str) -> str:
    from zoo.sources.weights import WeightsSource

    source = WeightsSource.parse(weights)
    if source.published:
        return model
    return f"{model} ({'random init' if source.random_init else source.file.name})"


def _decoded(paths: Sequence[str]) -> Iterator[tuple[str, Image.Image | ImageError]]:
    """Each path with its decoded RGB image, or with the error that stopped it (reported here)."""
    from zoo.runtime.images import open_image

    for path in paths:
        try:
            yield path, open_image(path)
        except ImageError as error:
            print(f"zoo: {error}", file=sys.stderr)
            yield path, error
