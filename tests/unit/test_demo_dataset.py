"""The demo's choice of photos (``rfr.entrypoints.demo.dataset``), without a server.

Which held-back photo becomes the probe needs the server (enrolment, detection) and is tested
in tests/http/test_demo.py; here: what is held back, and the frame size faces are placed in.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from rfr.entrypoints.demo.dataset import EXIF_ORIENTATION, DatasetError, choose, upright_size


def _folder(root: Path, counts: dict[str, int]) -> Path:
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for n in range(1, count + 1):
            Image.new("RGB", (8, 8)).save(root / name / f"{n}.jpg")
    return root


def test_the_last_photo_of_everyone_with_others_is_held_back_in_folder_order(tmp_path):
    root = _folder(tmp_path, {"b_two": 2, "a_one": 1, "c_three": 3})
    dataset = choose(root, max_identities=10)
    held_back = [(p.identity, p.path.name) for p in dataset.held_back]
    assert held_back == [("b_two", "2.jpg"), ("c_three", "3.jpg")]
    assert sorted((p.identity, p.path.name) for p in dataset.enrol) == [
        ("a_one", "1.jpg"),
        ("b_two", "1.jpg"),
        ("c_three", "1.jpg"),
        ("c_three", "2.jpg"),
    ]
    assert dataset.identities == 3


def test_a_named_person_is_the_only_one_held_back(tmp_path):
    root = _folder(tmp_path, {"a": 2, "b": 2, "c": 2})
    dataset = choose(root, max_identities=1, probe_identity="c")
    assert [(p.identity, p.path.name) for p in dataset.held_back] == [("c", "2.jpg")]
    assert {p.identity for p in dataset.enrol} == {"a", "c"}


def test_a_set_where_nobody_has_two_photos_is_refused(tmp_path):
    root = _folder(tmp_path, {"a": 1, "b": 1})
    with pytest.raises(DatasetError, match="at least two images"):
        choose(root, max_identities=10)


@pytest.mark.parametrize(
    ("orientation", "size"), [(None, (30, 20)), (1, (30, 20)), (6, (20, 30)), (8, (20, 30))]
)
def test_the_frame_is_measured_upright_as_the_server_turns_it(tmp_path, orientation, size):
    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    if orientation is not None:
        exif[EXIF_ORIENTATION] = orientation
    Image.new("RGB", (30, 20)).save(path, exif=exif)
    assert upright_size(path) == size
