"""A force's own ONNX models, declared in RFR_ALGORITHMS_FILE (ADR 0021): reading the declaration.

The refusals run on small stand-in files: the declaration is read and its model file hashed,
never opened as a model (tests/biometrics/test_force_model_engine.py builds the engine).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from rfr.infrastructure.custom_algorithms import CustomAlgorithmsError, load_custom_algorithms
from rfr.infrastructure.settings import ALGORITHM_CHOICES, Settings
from tests.contract.force_model import FORCE_MODEL, algorithms_toml


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    """A file standing for a force's model where only the declaration is read."""
    path = tmp_path / "models" / "force.onnx"
    path.parent.mkdir()
    path.write_bytes(b"a force's model, as far as the declaration is concerned")
    return path


def _settings_with(tmp_path: Path, text: str, algorithm: str = FORCE_MODEL) -> Settings:
    path = tmp_path / "algorithms.toml"
    path.write_text(text, encoding="utf-8")
    return Settings.from_env(
        {"RFR_DATA_DIR": str(tmp_path), "RFR_ALGORITHMS_FILE": str(path), "RFR_ALGORITHM": algorithm}
    )


def _refusal(tmp_path: Path, text: str) -> str:
    with pytest.raises(CustomAlgorithmsError) as caught:
        _settings_with(tmp_path, text, algorithm="dlib")
    message = str(caught.value)
    assert message.startswith(f"RFR_ALGORITHMS_FILE {tmp_path / 'algorithms.toml'}"), message
    return message


# -- the declaration -------------------------------------------------------------------------------


def test_a_declared_algorithm_is_read_with_its_model_checked_and_can_be_chosen(tmp_path, stand_in):
    settings = _settings_with(tmp_path, algorithms_toml(stand_in))
    assert settings.algorithm == FORCE_MODEL
    assert settings.algorithm_names == (*ALGORITHM_CHOICES, FORCE_MODEL)
    (declared,) = settings.custom_algorithms
    assert settings.custom_algorithm(FORCE_MODEL) == declared
    assert settings.custom_algorithm("sface") is None
    assert (declared.detector, declared.aligner) == ("yunet", "arcface_112")
    model = declared.embedder
    assert model.file == stand_in and model.sha256 == hashlib.sha256(stand_in.read_bytes()).hexdigest()
    assert (model.channel_order, model.layout, model.mean, model.std) == (
        "rgb",
        "nchw",
        (0.0,) * 3,
        (1.0,) * 3,
    )
    assert (model.output, model.dimension, model.metric) == ("fc1", 128, "cosine")
    assert model.threshold == pytest.approx(0.637) and "OpenCV Zoo" in model.threshold_source
    # The built-in algorithms stay choosable beside it, and settings with it can be hashed (the
    # composition root caches an engine per settings).
    assert Settings.from_env({"RFR_ALGORITHMS_FILE": str(declared.source)}).algorithm == "dlib"
    assert hash(settings) == hash(_settings_with(tmp_path, algorithms_toml(stand_in)))


def test_a_relative_model_path_is_the_declaring_files_and_names_are_matched_lowercase(tmp_path, stand_in):
    text = algorithms_toml(
        Path("models/force.onnx"), sha256=hashlib.sha256(stand_in.read_bytes()).hexdigest()
    )
    text = text.replace('channel_order = "rgb"', 'channel_order = "RGB"')
    settings = _settings_with(tmp_path, text, algorithm=" Force-SFace ")
    assert settings.algorithm == FORCE_MODEL
    assert settings.custom_algorithms[0].embedder.file == stand_in
    assert settings.custom_algorithms[0].embedder.channel_order == "rgb"


def test_several_algorithms_can_be_declared_and_the_unknown_name_lists_them(tmp_path, stand_in):
    text = (
        algorithms_toml(stand_in)
        + "\n"
        + algorithms_toml(stand_in, name="force-bgr", embedder={"channel_order": "bgr"})
    )
    settings = _settings_with(tmp_path, text, algorithm="force-bgr")
    assert settings.algorithm_names == ("dlib", "sface", FORCE_MODEL, "force-bgr")
    with pytest.raises(
        ValueError, match=r"RFR_ALGORITHM must be one of \('dlib', 'sface', 'force-sface', 'force-bgr'\)"
    ):
        _settings_with(tmp_path, text, algorithm="force-other")


def test_RFR_ALGORITHM_naming_an_undeclared_algorithm_points_at_RFR_ALGORITHMS_FILE():
    with pytest.raises(ValueError, match=r"one of \('dlib', 'sface'\).*RFR_ALGORITHMS_FILE.*'force-sface'"):
        Settings.from_env({"RFR_ALGORITHM": FORCE_MODEL})
    with pytest.raises(ValueError, match="algorithm must be one of"):
        Settings(data_dir=Path("/nonexistent"), algorithm=FORCE_MODEL)


def test_T01_a_model_file_whose_sha256_differs_is_refused_at_start(tmp_path, stand_in):
    message = _refusal(tmp_path, algorithms_toml(stand_in, sha256="ab" * 32))
    actual = hashlib.sha256(stand_in.read_bytes()).hexdigest()
    assert f"algorithm '{FORCE_MODEL}', field embedder.sha256" in message
    assert f"{stand_in} has sha256 {actual}, not the declared {'ab' * 32}" in message


def test_a_missing_model_file_is_refused(tmp_path, stand_in):
    message = _refusal(tmp_path, algorithms_toml(tmp_path / "absent.onnx", sha256="ab" * 32))
    assert (
        f"algorithm '{FORCE_MODEL}', field embedder.file: {tmp_path / 'absent.onnx'} does not exist"
        in message
    )


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"algorithm": {"colour": "rgb"}}, "field colour"),
        ({"embedder": {"colour_order": "rgb"}}, "field embedder.colour_order"),
        ({"embedder": {"scale": 0.0078125}}, "field embedder.scale"),
    ],
)
def test_an_unknown_field_is_refused_by_name(tmp_path, stand_in, options, field):
    message = _refusal(tmp_path, algorithms_toml(stand_in, **options))
    assert f"algorithm '{FORCE_MODEL}', {field}: is not a known field" in message


def test_an_unknown_top_level_table_is_refused(tmp_path, stand_in):
    message = _refusal(tmp_path, "[algorithms]\nname = 'x'\n")
    assert "field algorithms: is not a known field" in message


@pytest.mark.parametrize("name", ["dlib", "sface"])
def test_a_built_in_algorithms_name_is_reserved(tmp_path, stand_in, name):
    message = _refusal(tmp_path, algorithms_toml(stand_in, name=name))
    assert f"algorithm #1, field name: '{name}' is a built-in algorithm's name" in message


@pytest.mark.parametrize("name", ["Force", "force model", "9lives", "a/b", "x|y", ""])
def test_a_name_must_be_a_plain_lowercase_word(tmp_path, stand_in, name):
    assert "algorithm #1, field name: must be lowercase" in _refusal(
        tmp_path, algorithms_toml(stand_in, name=name)
    )


@pytest.mark.parametrize("metric", ["euclidean", "dot", "COSINE"])
def test_a_metric_other_than_cosine_is_refused(tmp_path, stand_in, metric):
    message = _refusal(tmp_path, algorithms_toml(stand_in, embedder={"metric": metric}))
    assert f"algorithm '{FORCE_MODEL}', field embedder.metric: must be 'cosine', not '{metric}'" in message


@pytest.mark.parametrize(
    ("options", "field", "says"),
    [
        ({"drop": ("sha256",)}, "embedder.sha256", "is missing (required)"),
        ({"drop": ("threshold_source",)}, "embedder.threshold_source", "is missing (required)"),
        ({"drop": ("channel_order",)}, "embedder.channel_order", "is missing (required)"),
        ({"embedder": {"sha256": "not-hex"}}, "embedder.sha256", "64 hex digits"),
        ({"embedder": {"version": "1 beta"}}, "embedder.version", "letters, digits"),
        ({"embedder": {"channel_order": "grb"}}, "embedder.channel_order", "one of rgb, bgr"),
        ({"embedder": {"layout": "chw"}}, "embedder.layout", "one of nchw, nhwc"),
        ({"embedder": {"mean": [1.0, 2.0]}}, "embedder.mean", "one number or three"),
        ({"embedder": {"mean": -3.0}}, "embedder.mean", "within 0-255"),
        ({"embedder": {"std": 0.5}}, "embedder.std", "0-255 pixel units"),
        ({"embedder": {"std": [58.4, 57.1, 0.0]}}, "embedder.std", "at least 1"),
        ({"embedder": {"output": -1}}, "embedder.output", "0 or more"),
        ({"embedder": {"output": True}}, "embedder.output", "name or its index"),
        ({"embedder": {"dimension": 0}}, "embedder.dimension", "from 1 to 8192"),
        ({"embedder": {"threshold": 2.5}}, "embedder.threshold", "between 0 and 2"),
        ({"embedder": {"threshold": "0.6"}}, "embedder.threshold", "between 0 and 2"),
        ({"embedder": {"threshold_source": " "}}, "embedder.threshold_source", "non-empty string"),
        ({"algorithm": {"detector": "retinaface"}}, "detector", "one of yunet"),
        ({"algorithm": {"aligner": "dlib_chip"}}, "aligner", "one of arcface_112"),
    ],
)
def test_every_bad_field_is_refused_naming_the_algorithm_and_the_field(
    tmp_path, stand_in, options, field, says
):
    message = _refusal(tmp_path, algorithms_toml(stand_in, **options))
    assert f"algorithm '{FORCE_MODEL}', field {field}: " in message
    assert says in message


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "declares no algorithm"),
        ("algorithm = 3\n", "one or more [[algorithm]] tables"),
        ("[[algorithm]\n", "is not valid TOML"),
        (
            "[[algorithm]]\nname = 'force-x'\ndetector = 'yunet'\naligner = 'arcface_112'\n",
            "field embedder: is missing",
        ),
        ("[[algorithm]]\ndetector = 'yunet'\n", "algorithm #1, field name: is missing"),
    ],
)
def test_a_file_that_declares_nothing_usable_is_refused(tmp_path, text, says):
    assert says in _refusal(tmp_path, text)


def test_the_same_name_declared_twice_is_refused(tmp_path, stand_in):
    message = _refusal(tmp_path, algorithms_toml(stand_in) + "\n" + algorithms_toml(stand_in))
    assert f"algorithm '{FORCE_MODEL}', field name: is declared twice" in message


def test_a_missing_algorithms_file_is_refused_naming_the_variable(tmp_path):
    with pytest.raises(
        CustomAlgorithmsError, match=rf"RFR_ALGORITHMS_FILE {tmp_path / 'none.toml'}: no such file"
    ):
        Settings.from_env({"RFR_ALGORITHMS_FILE": str(tmp_path / "none.toml")})
    with pytest.raises(CustomAlgorithmsError, match="cannot be read"):
        load_custom_algorithms(tmp_path)  # a folder, not a file
