"""A deployment that chose SFace (RFR_ALGORITHM=sface, ADR 0018), end to end over HTTP.

A real `rfr serve` started with RFR_ALGORITHM=sface, real LFW photos: a library is approved and
several photos of several people enrolled; a probe of one of them (a photo not enrolled), aged
13-15 so that an Inspector must endorse it (P-04), has its face selected and templated; the search
finds the mate at rank 1, and every template the server made, of the library and of the probe,
is SFace's (T-01). A box drawn on SFace is located by YuNet or refused with a 422 (P-11). And an
installation switched from dlib to SFace never mixes them: a probe face dlib detected is templated
by SFace from YuNet's points in its box, and its dlib library is still searched with dlib (ADR 0019),
the probe templated with dlib for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from http_harness import LiveServer, start_server
from workflow_builders import (
    approved_library,
    audit_verify,
    cast,
    enrol,
    ok,
    open_search,
    problem,
    start_workflow_server,
    stored_events,
    stored_rows,
    submitted_probe,
)

from rfr.adapters.detection.yunet import ALGORITHM_ID as YUNET_ID
from rfr.adapters.embedding.sface import ALGORITHM_ID as SFACE_ID

# Five people, two photos of each enrolled; the probe is a third photo of one of them.
IDENTITIES = ("adam_sandler", "andy_roddick", "anne_mclellan", "bill_simon", "david_nalbandian")
TARGET = "bill_simon"
TEMPLATE_EVENTS = ("TemplatesBuilt", "TemplatesExtracted")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """This module's own server, on SQLite, with SFace chosen; its chain must verify at the end."""
    live, _ = start_workflow_server(
        tmp_path_factory.mktemp("sface"), env={"RFR_PERSISTENCE": "sqlite", "RFR_ALGORITHM": "sface"}
    )
    try:
        yield live
        verified = audit_verify(live)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        live.stop()


def _templated_algorithms(server: LiveServer) -> dict[str, set[str]]:
    """The algorithm of every template-making event the server stored, by event type."""
    found: dict[str, set[str]] = {}
    for topic, state in stored_rows(server):
        kind = topic.rsplit(".", 1)[-1]
        if kind in TEMPLATE_EVENTS:
            found.setdefault(kind, set()).add(json.loads(state)["algorithm_id"])
    return found


def _largest(faces: list[dict]) -> dict:
    """The subject of a photo: its largest face."""
    return max(faces, key=lambda f: (f["right"] - f["left"]) * (f["bottom"] - f["top"]))


def test_T01_with_RFR_ALGORITHM_sface_enrolment_probe_and_search_all_use_sface_and_find_the_mate_first(
    server, people, photos
):
    library = approved_library(people, name="LFW custody images (SFace)")
    gallery = [(who, p) for who in IDENTITIES for p in photos[who][:2]]
    report = enrol(people, library["id"], gallery)
    assert report["enrolled"] == len(gallery), report["results"]
    algorithm = report["algorithm_id"]
    assert YUNET_ID in algorithm and SFACE_ID in algorithm and "dlib" not in algorithm
    contents = ok(people.analyst.client.get(f"/libraries/{library['id']}/images"))
    assert algorithm in json.dumps(contents["library"]["searchable_with"]), contents["library"]

    # The probe: a photo of the target not enrolled, of a subject aged 13-15 (P-04).
    probe = submitted_probe(people, photos[TARGET][2], perceived_age="13_15")
    # YuNet from 0.75 (ADR 0022) also finds a small face in the background of this photo.
    assert probe["detector_algorithm_id"] == YUNET_ID and probe["faces"]
    subject = _largest(probe["faces"])
    probe_id = probe["probe_id"]
    client = people.analyst.client
    choice = {"face_ids": [subject["face_id"]], "reason": "the suspect"}
    selected = ok(client.post(f"/probes/{probe_id}/selection", json=choice))
    assert selected["algorithm_id"] == algorithm and selected["template_count"] == 1
    assert selected["faces"][0]["templated"]
    if selected["quality_flags"]:
        ok(client.post(f"/probes/{probe_id}/quality-decision", json={"proceed": True, "reason": "clear"}))
    assert selected["missing_endorsements"] == ["P-04"]
    endorsed = ok(
        people.inspector.client.post(
            f"/probes/{probe_id}/endorsements", json={"kind": "P-04", "rationale": "Serious burglary series"}
        ),
        201,
    )
    assert endorsed["missing_endorsements"] == [], endorsed
    ready = ok(client.get(f"/probes/{probe_id}"))
    assert ready["ready_for_search"], ready["not_ready_because"]

    search = ok(open_search(people, probe_id, library["id"]), 201)
    run = ok(client.post(f"/searches/{search['id']}/runs"))
    candidates = run["candidates"]
    best = candidates[0]
    ranked = [(c["rank"], c["subject"], round(c["score"], 4)) for c in candidates]
    print(f"SFace candidates (rank, subject, score): {ranked}")
    assert best["subject"] == TARGET and best["rank"] == 1, ranked
    # 0.5 is SFace's own threshold on the cosine scale: both enrolled photos of the mate are
    # above it, and every other person's below.
    mates = [c["score"] for c in candidates if c["subject"] == TARGET]
    others = [c["score"] for c in candidates if c["subject"] != TARGET]
    assert len(mates) == 2 and min(mates) > 0.5 > max(others), ranked
    assert {c["algorithm_id"] for c in candidates} == {algorithm}

    # T-01: every template this server made, of the library and of the probe, is SFace's.
    assert _templated_algorithms(server) == {"TemplatesBuilt": {algorithm}, "TemplatesExtracted": {algorithm}}


def test_P11_on_sface_a_drawn_box_around_the_face_is_templated_and_an_empty_one_refused_with_422(
    server, people, photos
):
    probe = submitted_probe(people, photos["andy_roddick"][2])
    face = probe["faces"][0]
    url = f"/probes/{probe['probe_id']}/drawn-faces"
    before = stored_events(server)
    # LFW photos are 250 x 250 and centred on the face: the top-left corner holds none.
    empty = {"left": 0, "top": 0, "right": 45, "bottom": 45, "reason": "a face I think I see"}
    body = problem(people.analyst.client.post(url, json=empty), 422, "unprocessable")
    assert "no face was found inside the drawn box" in json.dumps(body), body
    assert stored_events(server) == before, "a refused box records nothing"

    box = {
        "left": face["left"] - 5,
        "top": face["top"] + 3,
        "right": face["right"] + 4,
        "bottom": face["bottom"] - 2,
    }
    drawn = ok(people.analyst.client.post(url, json={**box, "reason": "Tighter box around the suspect"}))
    mine = [f for f in drawn["faces"] if f["drawn"]]
    assert len(mine) == 1 and mine[0]["selected"] and mine[0]["templated"] and mine[0]["score"] is None
    assert {k: mine[0][k] for k in box} == box, "the box is kept as drawn"
    assert not any(f["templated"] for f in drawn["faces"] if not f["drawn"]), "P-11: only chosen faces"


def test_T01_T02_switching_an_installation_from_dlib_to_sface_never_compares_across_algorithms(
    tmp_path, photos
):
    root = tmp_path / "switched"
    dlib_server, _ = start_workflow_server(root, env={"RFR_PERSISTENCE": "sqlite", "RFR_ALGORITHM": "dlib"})
    try:
        people = cast(dlib_server)
        library = approved_library(people, name="Templated with dlib")
        report = enrol(people, library["id"], [(who, photos[who][0]) for who in IDENTITIES[:3]])
        dlib_algorithm = report["algorithm_id"]
        assert "dlib" in dlib_algorithm and SFACE_ID not in dlib_algorithm
        probe = submitted_probe(people, photos[TARGET][2])
        assert "dlib" in probe["detector_algorithm_id"]
    finally:
        dlib_server.stop()

    # The same data folder and event store, restarted with SFace chosen.
    sface_server = start_server(root / "data", env={**dlib_server.env, "RFR_ALGORITHM": "sface"})
    try:
        analyst = sface_server.as_token(people.analyst.token)
        face_id = probe["faces"][0]["face_id"]
        choice = {"face_ids": [face_id], "reason": "the suspect"}
        selected = ok(analyst.post(f"/probes/{probe['probe_id']}/selection", json=choice))
        # dlib's box and landmarks were stored; SFace found YuNet's points inside that box.
        sface_algorithm = selected["algorithm_id"]
        assert SFACE_ID in sface_algorithm and selected["template_count"] == 1
        if selected["quality_flags"]:
            ok(
                analyst.post(
                    f"/probes/{probe['probe_id']}/quality-decision", json={"proceed": True, "reason": "clear"}
                )
            )
        contents = ok(analyst.get(f"/libraries/{library['id']}/images"))
        assert contents["library"]["searchable_with"] == [dlib_algorithm]
        body = {
            "probe_id": probe["probe_id"],
            "libraries": [{"library_id": library["id"], "relevance": "the suspect may have been arrested"}],
        }
        search = ok(analyst.post("/searches", json=body), 201)
        # The library keeps its own algorithm (ADR 0019): searched with dlib, the probe templated
        # with dlib for it from its stored image, and nothing of SFace's compared with it (T-01).
        run = ok(analyst.post(f"/searches/{search['id']}/runs"))
        assert run["algorithm_id"] == dlib_algorithm
        assert {c["algorithm_id"] for c in run["candidates"]} == {dlib_algorithm}
        verified = audit_verify(sface_server)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert _templated_algorithms(sface_server) == {
            "TemplatesBuilt": {dlib_algorithm},
            "TemplatesExtracted": {sface_algorithm, dlib_algorithm},
        }
    finally:
        sface_server.stop()
