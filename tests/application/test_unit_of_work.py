"""The unit of work of a command: biometric records it wrote are undone when it does not land.

A use case writes biometric records through ``Act.recording(store)``; if the command is then
refused (the refusal is still recorded, A-01), raises, or its save fails, every record it
wrote is erased, so nothing is left that no event names (R-05).
"""

from __future__ import annotations

import pytest
from app_world import World
from fake_biometrics import face_image

from rfr.application.app import ConcurrentModification
from rfr.application.ports import RecordKind
from rfr.application.services.base import Act, Need, UseCase
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.people import Role
from rfr.domain.user import User

ANYONE = Need((Role.RFR_USER,))


def _writer(world: World, then):
    written: list[str] = []

    def action(act: Act) -> None:
        store = act.recording(world.bio.store)
        for n in range(3):
            record_id = f"uow-record-{n}"
            store.put(record_id, RecordKind.IMAGE, face_image(n), owner="uow")
            written.append(record_id)
        then(act)

    use_case = UseCase(world.app, world.clock)
    return use_case, written, action


def test_R05_A01_a_refused_command_leaves_no_record_it_wrote_and_keeps_its_refusal(world: World):
    def refuse(act: Act) -> None:
        raise PolicyRefusal(("S-05",), "refused after writing")

    use_case, written, action = _writer(world, refuse)
    with pytest.raises(PolicyRefusal) as caught:
        use_case._act("analyst", "write then refuse", [], action, target_name="test")
    assert written and not any(world.bio.store.exists(r) for r in written)
    assert world.app.get(caught.value.record.id).refusals[-1].rule_ids == ("S-05",)


def test_R05_a_command_whose_save_fails_leaves_no_record_it_wrote(world: World):
    stale = world.app.get(User.id_for("analyst-2"), User)
    fresh = world.app.get(User.id_for("analyst-2"), User)

    def change_both(act: Act) -> None:
        # Another writer changes the same record first: this command's save must fail.
        fresh.record_activity(act.at, "elsewhere")
        world.app.save(fresh)
        stale.record_activity(act.at, "here")

    use_case, written, action = _writer(world, change_both)
    with pytest.raises(ConcurrentModification):
        use_case._act("analyst", "write then conflict", [stale], action)
    assert written and not any(world.bio.store.exists(r) for r in written)


def test_R05_a_command_that_lands_keeps_what_it_wrote(world: World):
    use_case, written, action = _writer(world, lambda act: None)
    use_case._act("analyst", "write", [world.app.get(User.id_for("analyst"), User)], action)
    assert written and all(world.bio.store.exists(r) for r in written)
