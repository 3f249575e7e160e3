"""The demo's photos: a folder per identity, some enrolled, one image of one person held back as the probe."""

from __future__ import annotations

from pathlib import Path

import attrs

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})


class DatasetError(ValueError):
    """The folder cannot give a demo: say what is missing."""


@attrs.frozen
class Photo:
    identity: str
    path: Path


@attrs.frozen
class DemoDataset:
    """``enrol`` holds every chosen photo except ``probe``, whose identity also has photos in ``enrol``."""

    enrol: tuple[Photo, ...]
    probe: Photo
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

    The probe is the last photo of ``probe_identity``, or of the first chosen identity with
    at least two photos, so the person it shows is in the library under another photo.
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
    probe_of = next((name for name in candidates if len(folders[name]) >= 2), None)
    if probe_of is None:
        raise DatasetError(
            "the probe needs a person with at least two images (one held back, one enrolled); "
            + (f"{probe_identity!r} has one" if probe_identity else "raise --max-identities")
        )
    probe = Photo(probe_of, folders[probe_of][-1])
    enrol = tuple(Photo(name, path) for name in chosen for path in folders[name] if path != probe.path)
    return DemoDataset(enrol=enrol, probe=probe, identities=len(chosen))
