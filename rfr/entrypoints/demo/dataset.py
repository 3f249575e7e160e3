"""The demo's photos: a folder per identity, some enrolled, the last photo of each person with
others held back as a possible probe.

Which held-back photo becomes the probe is only known once the server has enrolled the rest
(the person must be in the library) and detected the faces in it (one face is clearest), so
``choose`` offers them in order and the walkthrough picks one (``walkthrough._submit_probe``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import attrs
from PIL import Image

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
EXIF_ORIENTATION = 0x0112
QUARTER_TURNS = frozenset({5, 6, 7, 8})  # EXIF orientations that swap width and height


class DatasetError(ValueError):
    """The folder cannot give a demo: say what is missing."""


@attrs.frozen
class Photo:
    identity: str
    path: Path


@attrs.frozen
class DemoDataset:
    """``enrol`` holds every chosen photo except those ``held_back``, each the last photo of a
    person whose other photos are in ``enrol``; the probe will be one of them, the first that works."""

    enrol: tuple[Photo, ...]
    held_back: tuple[Photo, ...]
    identities: int


def _photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def identity_folders(root: Path) -> dict[str, list[Path]]:
    """Identity (folder name) -> its photos, both in name order. ``rfr eval`` reads datasets so too.

    A folder without photos, or whose name starts with ``_`` or ``.``, is not an identity.
    """
    return {
        d.name: photos
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(("_", ".")) and (photos := _photos(d))
    }


def choose(root: Path, *, max_identities: int, probe_identity: str | None = None) -> DemoDataset:
    """The first ``max_identities`` identity folders in name order (plus ``probe_identity`` if named).

    Held back: the last photo of ``probe_identity``, or else of every chosen identity with at
    least two photos, so that whoever the probe shows is in the library under another photo.
    The others are held back too, not enrolled, because the first may not do: its person may
    have no photo the server enrols, or it may show several faces.
    """
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder")
    folders = identity_folders(root)
    if not folders:
        raise DatasetError(f"{root} has no identity folders with images (one folder per person)")
    chosen = list(folders)[:max_identities]
    if probe_identity is not None:
        if probe_identity not in folders:
            raise DatasetError(f"{root} has no folder {probe_identity!r} with images")
        if probe_identity not in chosen:
            chosen.append(probe_identity)
        candidates = [probe_identity]
    else:
        candidates = chosen
    held_back = tuple(Photo(name, folders[name][-1]) for name in candidates if len(folders[name]) >= 2)
    if not held_back:
        raise DatasetError(
            "the probe needs a person with at least two images (one held back, one enrolled); "
            + (f"{probe_identity!r} has one" if probe_identity else "raise --max-identities")
        )
    kept = {photo.path for photo in held_back}
    enrol = tuple(Photo(name, path) for name in chosen for path in folders[name] if path not in kept)
    return DemoDataset(enrol=enrol, held_back=held_back, identities=len(chosen))


def upright_size(path: Path) -> tuple[int, int]:
    """(width, height) of the photo as the server sees it: turned upright by its EXIF
    orientation, as the server does before detecting faces, so boxes and size agree."""
    with Image.open(path) as image:
        width, height = image.size
        orientation = None
        # Unreadable EXIF: the server keeps the pixels as stored, and so does this.
        with contextlib.suppress(Exception):
            orientation = image.getexif().get(EXIF_ORIENTATION)
    return (height, width) if orientation in QUARTER_TURNS else (width, height)
