"""The calibration holds on photos it was not fitted on (issue 11 item 4, ADR 0020).

The shared LFW photos (120 identities, 552 photos) are split by identity into two disjoint
halves, deterministically (the parity of the first byte of the sha256 of the folder name).
Each half in turn is calibrated with the real engine of each algorithm (dlib, SFace), for a
target FMR of 1e-3 (FPIR 1e-3 in a gallery of 1); the false match rate measured on the other
half at the calibrated threshold must be within the tolerance below of the target. 1e-3 is
what a half can measure (about 33,000 to 42,000 impostor pairs, so 33 to 42 false matches
expected), and it lies a decade below where the tail is fitted (the closest 1 % of impostor
pairs), so the fitted tail, not the table, sets the threshold.

**The tolerance: three standard errors, counting pairs that share a person as dependent.**
A binomial interval on the number of impostor pairs treats every pair as an independent
draw, and here they are not: a photo takes part in ~270 pairs, a pair of people in up to 100,
and the closest impostor pairs crowd into a few pairs of people who look alike (for dlib,
most of the closest 150 impostor pairs of LFW come from five pairs of people). Over 100
random identity splits of these photos, a 3-standard-error binomial interval (both halves'
sampling) held the measured FMR in only 27-33 of 100 splits for dlib and 55-86 for SFace (at
targets 1e-2 to 1e-3). The standard error used here is the dyadic cluster-robust one (Aronow,
Samii and Assenova 2015, "Cluster-robust variance estimation for dyadic data"): it sums the
products of residuals of every two pairs that share a person,

    Var(sum r) = sum over people i of (S_i)^2 - sum over pairs of people {i,j} of (R_ij)^2

with r = 1[d <= t] - target per image pair, S_i the sum of r over the pairs of person i and
R_ij over the pairs of people i and j (which the first sum counts twice). It is computed on
both halves (the fitted threshold carries the fit half's sampling error, the measurement the
other's), never below the binomial variance, and the two are added. Over the same 100 splits
this 3-standard-error interval held the measured FMR in all 100 for both algorithms; it is
wide (dlib's relative standard error at 1e-3 is about 0.8 to 1.6, SFace's 0.4 to 0.5),
because 60 people cannot pin down a rate driven by a few look-alike pairs. So the measured
FMR must also be within a factor of 10 of the target, which the interval alone (open at 0
below) would not require.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

from rfr.application.calibration import Calibration
from rfr.entrypoints.cli.calibrate import DatasetTemplates, calibrate_templates, template_dataset
from rfr.entrypoints.composition import cached_face_engine
from rfr.infrastructure.settings import Settings

TARGET_FMR = 1e-3
STANDARD_ERRORS = 3.0
WITHIN_FACTOR = 10.0

pytestmark = [pytest.mark.slow, pytest.mark.dataset]


@attrs.frozen
class Templated:
    algorithm: str
    algorithm_id: str
    metric: str
    dataset: DatasetTemplates


@pytest.fixture(scope="module", params=["dlib", "sface"])
def templated(
    request: pytest.FixtureRequest, model_store: Any, shared_faces: Path, dlib_reference: list[dict]
) -> Templated:
    """Every shared LFW photo templated with one algorithm (`rfr calibrate`'s protocol: the face
    nearest the centre). dlib's are the original dlib's own descriptors from the dataset's
    reference file, which our engine reproduces exactly (tests/biometrics' parity tests): the same
    templates without two minutes of CPU. SFace's are made by its real engine here."""
    settings = Settings(data_dir=Path(model_store.models_dir).parent, ort_threads=2)
    engine = cached_face_engine(attrs.evolve(settings, algorithm=request.param))
    root = shared_faces / "lfw"
    if request.param == "dlib":
        dataset = _from_reference(dlib_reference, root, engine.embedder.dimension)
    else:
        dataset = template_dataset(engine, root)
    assert dataset.images == 552 and dataset.identities == 120
    assert dataset.templated >= 548  # a face found in (nearly) every photo
    return Templated(request.param, engine.algorithm_id, engine.embedder.metric, dataset)


def _from_reference(reference: list[dict], root: Path, dimension: int) -> DatasetTemplates:
    labels, rows, files = [], [], []
    for item in reference:
        if not item["path"].startswith("lfw/"):
            continue
        relative = item["path"].removeprefix("lfw/")
        files.append((relative, hashlib.sha256((root / relative).read_bytes()).hexdigest()))
        if not item["faces"]:
            continue
        centre = ((item["width"] - 1) / 2.0, (item["height"] - 1) / 2.0)
        nearest = min(item["faces"], key=lambda face, c=centre: _off_centre(face["box_ltrb"], c))
        rows.append(np.asarray(nearest["descriptor"], np.float32))
        labels.append(item["identity"])
    identities = len({relative.split("/")[0] for relative, _ in files})
    templates = np.stack(rows) if rows else np.zeros((0, dimension), np.float32)
    return DatasetTemplates(tuple(labels), templates, tuple(files), identities, len(files))


def _off_centre(box: list[int], centre: tuple[float, float]) -> float:
    left, top, right, bottom = box
    return ((left + right) / 2.0 - centre[0]) ** 2 + ((top + bottom) / 2.0 - centre[1]) ** 2


def half(dataset: DatasetTemplates, parity: int) -> DatasetTemplates:
    """The photos of the people whose folder name hashes to ``parity``."""
    keep = [hashlib.sha256(label.encode()).digest()[0] % 2 == parity for label in dataset.labels]
    labels = tuple(label for label, k in zip(dataset.labels, keep, strict=True) if k)
    people = set(labels)
    files = tuple(f for f in dataset.files if f[0].split("/")[0] in people)
    return DatasetTemplates(labels, dataset.templates[np.array(keep)], files, len(people), len(files))


def impostor_pairs(dataset: DatasetTemplates, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance of every impostor pair, with the two people (as numbers) it is between."""
    from rfr.application.evaluation import pairwise_distances

    people = np.unique(np.asarray(dataset.labels), return_inverse=True)[1].reshape(-1)
    rows, cols = np.triu_indices(len(dataset.labels), k=1)
    distances = pairwise_distances(dataset.templates, metric)[rows, cols]
    apart = people[rows] != people[cols]
    return distances[apart], people[rows][apart], people[cols][apart]


def dyadic_variance(matched: np.ndarray, a: np.ndarray, b: np.ndarray, p: float) -> float:
    """Variance of the number of matched pairs about n * p, pairs sharing a person dependent
    (module docstring), never below the binomial n p (1 - p)."""
    residual = matched.astype(np.float64) - p
    people = int(max(a.max(), b.max())) + 1
    by_person = np.bincount(a, residual, people) + np.bincount(b, residual, people)
    by_pair = np.bincount(np.minimum(a, b) * people + np.maximum(a, b), residual)
    robust = float(np.sum(by_person**2) - np.sum(by_pair**2))
    return max(robust, p * (1 - p) * matched.size)


@pytest.mark.parametrize("fitted_on", [0, 1])
def test_the_false_match_rate_at_the_calibrated_threshold_holds_on_people_not_fitted_on(
    templated: Templated, fitted_on: int
) -> None:
    fit, held_out = half(templated.dataset, fitted_on), half(templated.dataset, 1 - fitted_on)
    assert not set(fit.labels) & set(held_out.labels)
    calibration: Calibration = calibrate_templates(
        fit,
        algorithm_id=templated.algorithm_id,
        metric=templated.metric,
        target_fpir=TARGET_FMR,
        gallery_size=1,
    )
    assert calibration.target_fmr == pytest.approx(TARGET_FMR)
    assert calibration.threshold < calibration.tail.threshold  # set by the fitted tail

    fit_d, fit_a, fit_b = impostor_pairs(fit, templated.metric)
    out_d, out_a, out_b = impostor_pairs(held_out, templated.metric)
    assert fit_d.size == calibration.dataset.impostor_pairs
    measured_matches = out_d <= calibration.threshold
    measured = float(measured_matches.mean())
    standard_error = math.sqrt(
        dyadic_variance(fit_d <= calibration.threshold, fit_a, fit_b, TARGET_FMR) / fit_d.size**2
        + dyadic_variance(measured_matches, out_a, out_b, TARGET_FMR) / out_d.size**2
    )
    figures = (
        f"{templated.algorithm}, fitted on half {fitted_on} ({fit_d.size:,} impostor pairs): threshold "
        f"{calibration.threshold:.4f}; on the other half ({out_d.size:,} pairs) FMR {measured:.2e} "
        f"({int(measured_matches.sum())} matches) against {TARGET_FMR:g}, ratio {measured / TARGET_FMR:.2f}; "
        f"tolerance {STANDARD_ERRORS:g} x {standard_error:.2e}"
    )
    print(figures)
    assert abs(measured - TARGET_FMR) <= STANDARD_ERRORS * standard_error, figures
    assert TARGET_FMR / WITHIN_FACTOR <= measured <= TARGET_FMR * WITHIN_FACTOR, figures
