"""Plugin distributions for tests, installed as pip would leave them (a dist-info on a path
the test puts on ``PYTHONPATH``): good ones, and bad ones that raise, exit, print or hang."""

from __future__ import annotations

from pathlib import Path


def fake_distribution(site: Path, dist: str, module: str, source: str) -> None:
    """An installed distribution with a ``zoo`` entry point, as pip would leave it."""
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[zoo]\n{module} = {module}\n")
    (site / f"{module}.py").write_text(source)


MODEL = (
    "    register(zoo.ModelSpec(name='{name}', build=print, input_size=(8, 8),\n"
    "                           preprocess='tf', labels=['a', 'b']))\n"
)


GOOD = "import zoo\n@zoo.hookimpl\ndef register_models(register):\n" + MODEL.format(name="good")


def hook(body: str, name: str = "register_models", argument: str = "register") -> str:
    return f"import zoo\n@zoo.hookimpl\ndef {name}({argument}):\n{body}"


BAD = {
    "signature": hook(MODEL.format(name="bad"), argument="registrar"),
    "exit_in_hook": hook("    raise SystemExit(3)\n"),
    "exit_at_import": "raise SystemExit('bye')\n",
    "keyboard_interrupt_in_hook": hook("    raise KeyboardInterrupt\n"),
    "keyboard_interrupt_at_import": "raise KeyboardInterrupt\n",
    "print_at_import": "print('hello from a plugin')\n" + GOOD.replace("good", "bad"),
    "print_in_hook": hook("    print('registering!')\n" + MODEL.format(name="bad")),
    "print_in_commands": hook("    print('adding commands')\n", "register_commands", "cli"),
}


def installed(tmp_path, source: str) -> dict[str, str]:
    """The environment of a zoo with two plugins: 'zoo-good' and 'zoo-bad' (``source``)."""
    site = tmp_path / "site"
    fake_distribution(site, "zoo-good", "zoo_good", GOOD)
    fake_distribution(site, "zoo-bad", "zoo_bad", source)
    return {"PYTHONPATH": str(site), "ZOO_LOAD_PLUGINS": "zoo-good,zoo-bad"}
