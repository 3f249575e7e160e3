"""``GET /health/details``: what operators watch, for Administrators only (issue 10, item 4).

``GET /health`` stays public and says ok or unavailable, nothing more. The details name the
store, the log's head, the chain head (as ``rfr audit head`` prints it), each projection's
position and the vector indexes this process holds, with their lag behind the log (ADR 0013,
ADR 0014 and its addendum), read from memory and a few single-row reads: nothing is loaded to
answer. Roles and the lag's meaning are checked in process over the application tests' world
(fake biometrics); the store and the chain head through a real server process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from http_harness import REPO_ROOT, LiveServer
from litestar.testing import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "application"))

from app_world import FixedClock, World, memory_app

from rfr.application.services.base import list_ids
from rfr.application.services.searches import LibrarySelection
from rfr.domain.people import Role
from rfr.domain.refused_attempt import RefusedAttempt
from rfr.entrypoints.composition import Services
from rfr.entrypoints.http.app import create_app
from rfr.infrastructure.settings import Settings

DETAILS = "/health/details"
# One holder of each role among the world's staff (tests/application/app_world.py).
HOLDERS = {
    Role.ADMINISTRATOR: "admin2",
    Role.RFR_USER: "analyst",
    Role.APPROVING_OFFICER: "inspector",
    Role.SRO: "sro",
    Role.OPERATIONAL_LEAD: "op-lead",
    Role.AUDITOR: "auditor",
    Role.OPERATIONS: "ops",
}
FIELDS = {
    "status",
    "process_id",
    "store",
    "store_answers",
    "log_head",
    "chain_head",
    "projections",
    "indexes",
}


@attrs.define
class Api:
    world: World
    services: Services
    client: TestClient
    tokens: dict[Role, str]

    def get(self, path: str, role: Role | None = Role.ADMINISTRATOR) -> Any:
        headers = {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}
        return self.client.get(path, headers=headers)

    def details(self) -> dict[str, Any]:
        response = self.get(DETAILS)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """The API over a populated world; its biometrics are built only when a test asks for them."""
    world = World(memory_app(), FixedClock()).populate()
    settings = Settings(tmp_path, persistence="memory")
    services = Services(settings, application=world.app, clock=world.clock, biometrics=lambda: world.bio)
    access = services.access()
    tokens = {role: access.issue("admin", user).secret for role, user in HOLDERS.items()}
    with TestClient(create_app(settings, services=services)) as client:
        yield Api(world, services, client, tokens)


def _index(details: dict[str, Any], library_id: object) -> dict[str, Any]:
    (entry,) = [i for i in details["indexes"] if i["library_id"] == str(library_id)]
    return entry


def test_A05_the_details_are_refused_to_the_public_with_401_and_to_every_other_role_with_403(api: Api):
    anonymous = api.get(DETAILS, role=None)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert anonymous.json()["type"] == "/problems/unauthenticated"
    assert "log_head" not in anonymous.text

    for role in set(Role) - {Role.ADMINISTRATOR}:
        refused = api.get(DETAILS, role=role)
        assert refused.status_code == 403, (role, refused.text)
        problem = refused.json()
        assert problem["type"] == "/problems/forbidden"
        assert problem["rule_ids"] == ["A-05"]
        assert problem["recorded"] is True
        assert "log_head" not in refused.text
    ids, _ = list_ids(api.world.app, RefusedAttempt.AttemptRefused, limit=50)
    refused_by = {
        a.refusals[0].actor.user_id
        for a in (api.world.app.get(i, RefusedAttempt) for i in ids)
        if a.command == f"call GET {DETAILS}"
    }
    assert refused_by == {user for role, user in HOLDERS.items() if role is not Role.ADMINISTRATOR}

    assert api.get(DETAILS).status_code == 200


def test_the_public_health_check_still_says_only_ok(api: Api):
    response = api.get("/health", role=None)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_the_details_name_the_store_the_heads_and_projections_up_to_date(api: Api):
    recorder = api.world.app.recorder
    details = api.details()
    assert set(details) == FIELDS
    assert details["status"] == "ok" and details["store"] == "memory" and details["store_answers"] is True
    head = recorder.max_notification_id()
    assert details["log_head"] == head > 0
    chain = recorder.chain_head()
    assert details["chain_head"] == {"count": chain.count, "hash": chain.hash, "text": str(chain)}
    names = [p.name for p in api.world.app.projections]
    assert [p["name"] for p in details["projections"]] == sorted(names)
    for projection in details["projections"]:
        # Written in the events' transaction: never behind the log.
        assert projection["position"] == head and projection["behind"] == 0, projection
        assert projection["version"] == projection["expected_version"], projection


def test_only_indexes_already_open_are_reported_and_the_biometrics_are_not_built_to_answer(tmp_path: Path):
    world = World(memory_app(), FixedClock()).populate()
    built: list[bool] = []

    def biometrics():
        built.append(True)
        return world.bio

    settings = Settings(tmp_path, persistence="memory")
    services = Services(settings, application=world.app, clock=world.clock, biometrics=biometrics)
    token = services.access().issue("admin", "admin2").secret
    with TestClient(create_app(settings, services=services)) as client:
        response = client.get(DETAILS, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.json()["indexes"] == []
    assert built == []  # loading the face models is no part of a health report


def test_the_index_lag_is_what_the_next_search_in_this_process_reads_before_it_searches(api: Api):
    """ADR 0014 and its addendum: an enrolment writes templates but no position (the next catch-up
    reads the whole log); a search's catch-up saves the head it reached; searches whose events
    change nothing keep the position reached in memory, which the report shows beside the saved one."""
    world = api.world
    api.services.biometrics  # noqa: B018  (built, as a serving process builds them on first use)
    assert api.details()["indexes"] == []

    _, library_id = world.enrolled_library(n=3)
    details = api.details()
    entry = _index(details, library_id)
    assert entry == {
        "library_id": str(library_id),
        "algorithm_id": world.bio.algorithm_id,
        "saved_position": None,
        "reached_position": 0,
        "lag": details["log_head"],
    }

    probe_id = world.probe()
    request = world.searches.open("analyst", probe_id, [LibrarySelection(str(library_id), "held here")])
    before = world.app.recorder.max_notification_id()
    world.search(request.id, library_id)
    details = api.details()
    entry = _index(details, library_id)
    saved = world.bio.index(str(library_id)).position
    assert before <= saved == entry["saved_position"] == entry["reached_position"]
    # What is left to read is what the search stored after its catch-up, and nothing else.
    assert 1 <= entry["lag"] == details["log_head"] - saved <= details["log_head"] - before

    # Events that change no index (a user registered, a request opened) make the lag grow...
    world.users.register("admin", "newcomer", [Role.RFR_USER], teams=["team-a"])
    again = world.searches.open("analyst", probe_id, [LibrarySelection(str(library_id), "held here")])
    grown = _index(api.details(), library_id)
    assert grown["lag"] > entry["lag"] and grown["saved_position"] == saved

    # ...and the next search reads past them without saving: the position reached is memory's.
    world.search(again.id, library_id)
    details = api.details()
    moved = _index(details, library_id)
    assert moved["saved_position"] == saved == world.bio.index(str(library_id)).position
    assert moved["reached_position"] > saved
    assert 1 <= moved["lag"] == details["log_head"] - moved["reached_position"] < grown["lag"]


def test_through_a_server_the_details_name_sqlite_and_the_chain_head_rfr_audit_head_prints(
    live_server: LiveServer,
):
    analyst = live_server.user(["rfr_user"], prefix="health-analyst")
    assert analyst.client.get(DETAILS).status_code == 403
    assert live_server.anonymous().get(DETAILS).status_code == 401
    assert live_server.anonymous().get("/health").json() == {"status": "ok"}

    assert live_server.admin is not None
    response = live_server.admin.client.get(DETAILS)
    assert response.status_code == 200, response.text
    details = response.json()
    assert set(details) == FIELDS
    assert details["status"] == "ok" and details["store"] == "sqlite" and details["store_answers"] is True
    assert details["process_id"] == live_server.process.pid
    # SQLite's notification ids are its row ids: one per event, as the chain links them.
    assert details["log_head"] == details["chain_head"]["count"]
    assert all(p["behind"] == 0 for p in details["projections"]), details["projections"]
    head = subprocess.run(
        [sys.executable, "-m", "rfr.entrypoints.cli", "audit", "head"],
        cwd=REPO_ROOT,
        env={"RFR_DATA_DIR": str(live_server.data_dir), "RFR_PERSISTENCE": "sqlite", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert head.stdout.strip() == details["chain_head"]["text"]
    # Nothing that names a person, a folder or a secret.
    text = json.dumps(details)
    for private in (analyst.user_id, analyst.token, live_server.admin.token, str(live_server.data_dir)):
        assert private not in text
