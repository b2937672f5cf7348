"""Finding weights: Keras's cache, a download into it, an explicit file, or none."""

from __future__ import annotations

import hashlib
import urllib.error

import pytest

import zoo
from zoo.base.errors import WeightsUnavailable
from zoo.model.spec import WeightsSpec
from zoo.sources.weights import WeightsSource, file_digest, keras_home, resolve_weights

from .conftest import run_zoo


def spec_with(weights: WeightsSpec | None) -> zoo.ModelSpec:
    return zoo.ModelSpec(
        name="tiny", build=lambda w: None, input_size=(8, 8), preprocess="tf", weights=weights
    )


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "keras" / "models"


def test_keras_home_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert keras_home() == tmp_path
    monkeypatch.delenv("KERAS_HOME")
    assert keras_home().name == ".keras"


def test_none_means_random_init():
    assert resolve_weights(spec_with(None), "none") is None


def test_a_cached_file_is_used_without_a_network(empty_cache, monkeypatch):
    empty_cache.mkdir(parents=True)
    (empty_cache / "tiny.h5").write_bytes(b"weights")
    monkeypatch.setattr("urllib.request.urlopen", _no_network)
    spec = spec_with(WeightsSpec("https://example.invalid/x/tiny.h5"))
    assert resolve_weights(spec, "imagenet") == empty_cache / "tiny.h5"


def test_download_lands_in_the_keras_cache_with_its_hash_checked(empty_cache, tmp_path):
    source = tmp_path / "published.h5"
    source.write_bytes(b"real weights" * 1000)
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    spec = spec_with(WeightsSpec(source.as_uri(), file_hash=md5, file_name="tiny.h5"))
    path = resolve_weights(spec, "imagenet")
    assert path == empty_cache / "tiny.h5"
    assert path.read_bytes() == source.read_bytes()
    assert [p.name for p in empty_cache.iterdir()] == ["tiny.h5"]  # no partial file left


def test_a_file_that_does_not_match_the_published_hash_is_refused(empty_cache):
    empty_cache.mkdir(parents=True)
    (empty_cache / "tiny.h5").write_bytes(b"something else")
    sha256 = "0" * 64
    spec = spec_with(WeightsSpec("https://example.invalid/tiny.h5", file_hash=sha256))
    with pytest.raises(WeightsUnavailable, match=r"does not match the sha256 .* delete it"):
        resolve_weights(spec, "imagenet")


def test_offline_names_the_file_expected_and_how_to_supply_it(empty_cache, monkeypatch):
    monkeypatch.setattr("urllib.request.urlopen", _no_network)
    spec = spec_with(WeightsSpec("https://example.invalid/x/tiny_weights.h5"))
    with pytest.raises(WeightsUnavailable) as caught:
        resolve_weights(spec, "imagenet")
    message = str(caught.value)
    assert "tiny_weights.h5" in message and str(empty_cache) in message
    assert "--weights PATH" in message and "\n" not in message
    assert not empty_cache.exists() or not any(empty_cache.iterdir())


def test_an_explicit_path_must_exist_and_be_a_keras_weights_file(tmp_path):
    spec = spec_with(None)
    with pytest.raises(WeightsUnavailable, match="not found"):
        resolve_weights(spec, tmp_path / "missing.h5")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(WeightsUnavailable, match="not a Keras weights file"):
        resolve_weights(spec, tmp_path / "notes.txt")
    (tmp_path / "ok.weights.h5").write_bytes(b"x")
    assert resolve_weights(spec, tmp_path / "ok.weights.h5") == tmp_path / "ok.weights.h5"


def test_a_model_without_published_weights_says_so():
    with pytest.raises(WeightsUnavailable, match="no published weights"):
        resolve_weights(spec_with(None), "imagenet")


@pytest.mark.slow
def test_cli_offline_without_weights_is_one_line(photo, tmp_path):
    result = run_zoo(
        "predict", "mobilenet", str(photo), env={"KERAS_HOME": str(tmp_path / "empty")}
    )
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("zoo: mobilenet: mobilenet_1_0_224_tf.h5 is not in the Keras cache")
    assert "mobilenet_1_0_224_tf.h5" in line and "--weights PATH" in line


@pytest.mark.slow
def test_cli_weights_for_another_model_is_one_line(photo, tmp_path):
    wrong = tmp_path / "wrong.weights.h5"
    wrong.write_bytes(b"not hdf5 at all")
    result = run_zoo("predict", "mobilenet", str(photo), "--weights", str(wrong))
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"zoo: cannot load {wrong} into mobilenet: ")


def _no_network(*args, **kwargs):
    raise urllib.error.URLError("[Errno -2] Name or service not known")


def test_a_file_digest_follows_the_file(tmp_path):
    path = tmp_path / "weights.h5"
    path.write_bytes(b"first")
    first = file_digest(path)
    assert first == hashlib.sha256(b"first").hexdigest() and file_digest(path) == first
    path.write_bytes(b"second, longer")
    assert file_digest(path) == hashlib.sha256(b"second, longer").hexdigest()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("value", "published", "random_init", "recorded"),
    [
        ("imagenet", True, False, "imagenet"),
        ("pretrained", True, False, "imagenet"),
        ("none", False, True, "none"),
        ("~/w/my.weights.h5", False, False, "my.weights.h5"),
    ],
)
def test_one_reading_of_a_weights_value(value, published, random_init, recorded):
    source = WeightsSource.parse(value)
    assert (source.published, source.random_init, source.recorded()) == (
        published,
        random_init,
        recorded,
    )
    assert WeightsSource.parse(source) is source
    assert WeightsSource.parse(str(source)) == source
