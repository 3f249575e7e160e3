"""Every biometric record is named by an event or erased (ADR 0015).

A command writes its records (image, face analysis, subject reference, templates) before the
save whose events name them, and ``Act`` erases them again if the command fails. A process
killed in between (SIGKILL, power cut) leaves records that no event names: no retention rule
and no erasure would ever reach them, since both find records through events.
``BiometricReconciliation.run()`` is one round; the worker runs one on start and one in each
of its rounds:

1. the records written since the last round are read from the store in the order written
   (``BiometricStore.written_after``, from the position ``record_reconciled`` kept), up to
   the first written less than ``grace`` ago;
2. each is checked against what the events name, through the library images projection and
   the probe's own aggregate:

   - a library image's records (``<image id>``, ``<image id>:face``, ``<image id>:subject``,
     owned by the library): an image of that library, not purged;
   - a template owned by a library: a template the projection lists for that library (it
     drops the templates of purged images);
   - a probe's records (``probe:<id>:image``, ``probe:<id>:face:<face id>``) and the templates
     a probe owns: a probe submitted and not purged, with that face or that template;

   anything else is erased, irrecoverably (``BiometricStore.erase``), and an erased template
   is taken out of its library's index, which a rebuild from the store may have filled
   with it. The store is erased before the index is locked, as ``BiometricErasure`` does, so
   a rebuild cannot put the template back;
3. the position reached is recorded, so the next round reads only what was written after it.
   A record that could not be erased holds the position before it, so it is tried again.

On start the round also removes stored bytes that no record names at all (a ``put`` cut
short between its file and its key row): ciphertext whose key was never stored, so a space
leak rather than a record, and finding them means listing every file, so only on start.

Why the grace period is safe. A record checked here was written at least ``grace`` ago, and
a command saves the events naming its records within one run: its writes come after its
slow work (detection, embedding) and just before its save, and a failed save erases them.
So a record still unnamed ``grace`` after it was written belongs to a command that is no
longer running, as long as no command takes longer than ``grace`` from a write to the end of
its save (default one hour, against seconds in practice). Each round costs what was written
since the last one, not what the store holds.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta

import attrs

from rfr.application.app import RfrApplication
from rfr.application.errors import NotFound
from rfr.application.ports import BiometricStore, Clock, RecordKind, StoredRecordInfo, WrittenRecord
from rfr.application.projections.library_images import ImageRow
from rfr.application.services.base import UseCase
from rfr.application.services.biometric_support import Biometrics
from rfr.domain.probe_image import ProbeImage
from rfr.domain.reference_library import ReferenceLibrary

log = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(hours=1)
# Records checked per read of the store and the projection.
PAGE_SIZE = 500
# Records checked per round at most; the rest are checked in the next rounds.
MAX_PER_ROUND = 50_000

_PROBE_PREFIX = "probe:"
_LIBRARY_SUFFIXES = ("", "face", "subject")


@attrs.frozen
class ReconciliationSummary:
    """One round: how many records were checked, what was erased (by kind), the stored files
    that no record named (``swept``: whether they were looked for, to the end), the position
    reached, and what failed (tried again next round)."""

    checked: int
    erased: Mapping[str, int]
    files_removed: int
    position: int
    failed: tuple[str, ...]
    swept: bool = False

    @property
    def erased_total(self) -> int:
        return sum(self.erased.values())


class BiometricReconciliation(UseCase):
    """One round of reconciliation; see the module docstring.

    ``store`` opens the biometric store (no model is loaded for it); ``biometrics`` is called
    only to take an erased template out of an index.
    """

    def __init__(
        self,
        app: RfrApplication,
        clock: Clock,
        store: Callable[[], BiometricStore],
        biometrics: Callable[[], Biometrics],
        *,
        grace: timedelta = DEFAULT_GRACE,
        page_size: int = PAGE_SIZE,
        max_per_round: int = MAX_PER_ROUND,
    ) -> None:
        super().__init__(app, clock)
        if grace < timedelta(0):
            raise ValueError("grace must not be negative")
        if page_size < 1 or max_per_round < 1:
            raise ValueError("page_size and max_per_round must be at least 1")
        self._store = store
        self._biometrics = biometrics
        self.grace = grace
        self.page_size = page_size
        self.max_per_round = max_per_round

    def run(self, *, sweep_files: bool = False) -> ReconciliationSummary:
        """One round; ``sweep_files`` also removes stored files no record names (on start).

        Nothing raises: what failed is reported in the summary and tried again next round.
        """
        older_than = self.grace.total_seconds()
        failed: list[str] = []
        try:
            store = self._store()
            start = reached = store.reconciled_position()
        except Exception as err:
            return ReconciliationSummary(0, {}, 0, 0, (f"biometric store: {_describe(err)}",))
        files_removed, swept = 0, False
        if sweep_files:
            try:
                files_removed, swept = store.sweep_orphans(older_than=older_than), True
            except Exception as err:  # reported; the records are still reconciled
                failed.append(f"stored files: {_describe(err)}")
        erased: Counter[str] = Counter()
        templates: dict[tuple[str, str], list[str]] = {}
        checked = 0
        try:
            while checked < self.max_per_round:
                limit = min(self.page_size, self.max_per_round - checked)
                page = store.written_after(reached, older_than=older_than, limit=limit)
                if not page:
                    break
                stuck = self._erase_unnamed(store, page, erased, templates, failed)
                checked += len(page)
                reached = page[-1].position if stuck is None else stuck - 1
                if stuck is not None or len(page) < limit:
                    break
        except Exception as err:  # the position stays where the last whole page left it
            failed.append(f"records after position {reached}: {_describe(err)}")
        self._unindex(templates, failed)
        if reached > start:
            try:
                store.record_reconciled(reached)
            except Exception as err:  # the next round checks these records again: no harm
                failed.append(f"recording position {reached}: {_describe(err)}")
        return ReconciliationSummary(
            checked, dict(sorted(erased.items())), files_removed, reached, tuple(failed), swept
        )

    # -- one page ----------------------------------------------------------------------------

    def _erase_unnamed(
        self,
        store: BiometricStore,
        page: Sequence[WrittenRecord],
        erased: Counter[str],
        templates: dict[tuple[str, str], list[str]],
        failed: list[str],
    ) -> int | None:
        """Erases the page's unnamed records; returns the position of the first that failed."""
        unnamed = self._unnamed([w.info for w in page])
        stuck: int | None = None
        for written in page:
            info = written.info
            if info.record_id not in unnamed:
                continue
            try:
                if store.erase(info.record_id):
                    erased[info.kind.value] += 1
                    log.info(
                        "erased biometric record %s (%s of %s) that no event names",
                        info.record_id,
                        info.kind.value,
                        info.owner,
                    )
            except Exception as err:
                failed.append(f"record {info.record_id}: {_describe(err)}")
                stuck = written.position if stuck is None else stuck
                continue
            if info.kind is RecordKind.TEMPLATE and info.algorithm_id:
                templates.setdefault((info.owner, info.algorithm_id), []).append(info.record_id)
        return stuck

    def _unnamed(self, infos: Sequence[StoredRecordInfo]) -> set[str]:
        """The ids of the records in ``infos`` that no event names."""
        image_ids = {
            _image_id(i.record_id)
            for i in infos
            if i.kind is not RecordKind.TEMPLATE and not i.record_id.startswith(_PROBE_PREFIX)
        }
        images = self.app.library_images.images(image_ids)
        listed = self.app.library_images.libraries_of_templates(
            {i.record_id for i in infos if i.kind is RecordKind.TEMPLATE}
        )
        probe_owners = {
            i.owner
            for i in infos
            if i.record_id.startswith(_PROBE_PREFIX)
            or (i.kind is RecordKind.TEMPLATE and listed.get(i.record_id) != i.owner)
        }
        probes = {owner: self._live_probe(owner) for owner in probe_owners}
        return {i.record_id for i in infos if not _named(i, images, listed, probes)}

    def _live_probe(self, owner: str) -> ProbeImage | None:
        try:
            probe = self.load(owner, ProbeImage)
        except NotFound:
            return None
        return None if probe.purged_at is not None else probe

    # -- indexes -----------------------------------------------------------------------------

    def _unindex(self, templates: Mapping[tuple[str, str], list[str]], failed: list[str]) -> None:
        """Takes erased templates out of their library's index, opened only if there are any."""
        for (owner, algorithm_id), template_ids in templates.items():
            try:
                self.load(owner, ReferenceLibrary)
            except NotFound:
                continue  # a probe's templates, or an owner nothing names: no index
            try:
                bio = self._biometrics()
            except Exception as err:
                failed.append(f"index of library {owner}: {_describe(err)}")
                continue
            try:
                if algorithm_id != bio.algorithm_id:
                    # Another algorithm's index is not opened here (its shape is that
                    # algorithm's); dropped, it is rebuilt from the store, which no longer has them.
                    bio.indexes.drop(owner, algorithm_id)
                    continue
                embedder = bio.engine.embedder
                with bio.indexes.writing(owner, algorithm_id, embedder.dimension, embedder.metric) as index:
                    index.remove(template_ids)
            except Exception as err:
                # Dropped instead: rebuilt from the store when next searched, without them.
                try:
                    bio.indexes.drop(owner, algorithm_id)
                except Exception as again:
                    failed.append(
                        f"index of library {owner}: {_describe(err)}; dropping it: {_describe(again)}"
                    )


def _image_id(record_id: str) -> str:
    return record_id.partition(":")[0]


def _named(
    info: StoredRecordInfo,
    images: Mapping[str, ImageRow],
    listed: Mapping[str, str],
    probes: Mapping[str, ProbeImage | None],
) -> bool:
    """Whether an event names ``info`` (see the module docstring for each kind of record)."""
    if info.kind is RecordKind.TEMPLATE:
        if listed.get(info.record_id) == info.owner:
            return True
        probe = probes.get(info.owner)
        return probe is not None and any(t.template_id == info.record_id for t in probe.templates)
    if info.record_id.startswith(_PROBE_PREFIX):
        probe = probes.get(info.owner)
        if probe is None:
            return False
        return _names_probe_record(probe, info.record_id[len(_PROBE_PREFIX) :].split(":"))
    image_id, _, suffix = info.record_id.partition(":")
    row = images.get(image_id)
    return (
        suffix in _LIBRARY_SUFFIXES
        and row is not None
        and row.library_id == info.owner
        and row.purged_at is None
    )


def _names_probe_record(probe: ProbeImage, parts: Iterable[str]) -> bool:
    """``probe:<id>:image`` or ``probe:<id>:face:<face id>`` of this probe (``parts`` after ``probe:``)."""
    match list(parts):
        case [probe_id, "image"]:
            return probe_id == str(probe.id)
        case [probe_id, "face", face_id]:
            return probe_id == str(probe.id) and face_id in probe.faces
        case _:
            return False


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
