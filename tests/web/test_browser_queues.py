"""The approving officers' queue in a real browser (Debian's Chromium, headless) against a real
``rfr serve``, each decision checked afterwards through the API:

- an Inspector endorses a 13-15 probe (P-04) from the queue;
- an analyst records technical advice on a probe's page and an Inspector then endorses it (P-06);
- a probe the analyst reassesses as 13 to 15 on its page joins the Inspector's queue (P-04);
- the SRO approves a Form 1 from the queue (L-02, L-05), and reviews an approval in force (L-07);
- an Inspector approves a search of a level 4 library awaiting approval (P-08);
- an Inspector approves an analyst's request to keep an unmatched probe in the cache and then
  reviews the entry (U-01, P-08, U-03);
- an RFR user is neither shown the queue nor let in (refused server-side, as the API refuses);
- a decision posted without its CSRF token is refused and changes nothing.

The probes and applications are submitted through the API (tests/http/workflow_builders), the
probes with real photos, as an analyst's client would; only the officers' part is done in the
browser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from web_steps import event_count, refusals_of, sign_in
from workflow_builders import (
    Cast,
    application,
    approval_record,
    approved_library,
    cast,
    enrol,
    later,
    lfw_photos,
    ok,
    open_search,
    ready_probe,
    submitted_probe,
)

RATIONALE = "Serious assault on a child's sibling; the person shown is the only lead"


@pytest.fixture(scope="module")
def people(web_server) -> Cast:
    return cast(web_server)


@pytest.fixture(scope="module")
def photo(shared_faces: Path) -> Path:
    return next(iter(lfw_photos(shared_faces).values()))[0]


def _young_probe(people: Cast, photo: Path) -> dict[str, Any]:
    """A probe of a person perceived to be 13-15, which P-04 asks an Inspector to endorse."""
    probe = submitted_probe(people, photo, perceived_age="13_15", case_reference="OP-WREN/2026/0007")
    governance = ok(people.inspector.client.get(f"/probes/{probe['probe_id']}/governance"))
    assert governance["missing_endorsements"] == ["P-04"], governance
    return probe


def test_P04_an_inspector_endorses_a_young_persons_probe_from_the_queue(
    web_server, new_page, people, photo, screenshots
):
    probe_id = _young_probe(people, photo)["probe_id"]
    page = new_page()
    sign_in(page, people.inspector.token)
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Your queue").click()
    page.wait_for_url("**/app/queues")
    expect(page.get_by_role("heading", name="1. Probe endorsements")).to_be_visible()
    page.screenshot(path=screenshots / "queue-inspector.png", full_page=True)

    # The probe is listed (from the endorsement queue's projection) with what it misses; the
    # keyboard alone opens it.
    awaited = page.locator("#endorsements-awaited tbody tr").filter(
        has=page.locator(f"a[href$='probe={probe_id}']")
    )
    expect(awaited).to_have_count(1)
    expect(awaited.locator("td").nth(5)).to_have_text("P-04")
    awaited.get_by_role("link", name="OP-WREN/2026/0007").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/app/queues/endorsement?probe={probe_id}")
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("OP-WREN/2026/0007")
    expect(facts).to_contain_text(people.analyst.user_id)
    expect(facts).to_contain_text("13 to 15")
    # What it needs, in words and a symbol, not by colour alone.
    expect(page.locator("li[data-kind=P-04]")).to_contain_text("✗ Missing")
    page.screenshot(path=screenshots / "queue-endorsement.png", full_page=True)

    rationale = page.get_by_label("Why you endorse the search (P-04)")
    rationale.fill(RATIONALE)
    page.keyboard.press("Tab")
    button = page.get_by_role("button", name="Endorse under P-04")
    expect(button).to_be_focused()
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Enter")
    page.wait_for_url("**done=P-04**")
    expect(page.get_by_test_id("endorsed")).to_contain_text("your endorsement under P-04 is recorded")
    expect(page.locator("li[data-kind=P-04]")).to_contain_text("✓ Given")
    expect(page.get_by_role("button", name="Endorse under P-04")).to_have_count(0)
    page.screenshot(path=screenshots / "queue-endorsed.png", full_page=True)
    # Off the queue once endorsed.
    page.goto("/app/queues")
    expect(page.locator(f"#endorsements-awaited a[href$='probe={probe_id}']")).to_have_count(0)

    # The API shows it endorsed, by this Inspector, with the rationale given in the browser.
    governance = ok(people.analyst.client.get(f"/probes/{probe_id}/governance"))
    assert governance["missing_endorsements"] == []
    (given,) = governance["endorsements"]
    assert given["kind"] == "P-04"
    assert given["by"] == people.inspector.user_id
    assert given["rationale"] == RATIONALE


def test_P04_an_rfr_user_is_not_shown_the_queue_and_is_refused_it_server_side(
    web_server, new_page, people, photo, screenshots
):
    probe_id = _young_probe(people, photo)["probe_id"]
    page = new_page()
    sign_in(page, people.colleague.token)
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Start")).to_be_visible()
    expect(page.get_by_role("link", name="Your queue")).to_have_count(0)
    before = len(refusals_of(web_server, people.colleague.user_id))
    for path in ("/app/queues", f"/app/queues/endorsement?probe={probe_id}"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
        expect(page.get_by_role("heading", name="Access refused")).to_be_visible()
    page.screenshot(path=screenshots / "queue-refused.png", full_page=True)
    # A decision posted with the session's own CSRF token: refused by the same gate as the API.
    token = page.locator("form.sign-out input[name=csrf_token]").input_value()
    posted = page.request.post(
        "/app/queues/endorsement",
        form={"csrf_token": token, "probe": probe_id, "kind": "P-04", "rationale": "not mine to give"},
        max_redirects=0,
    )
    assert posted.status == 403
    assert len(refusals_of(web_server, people.colleague.user_id)) == before + 3
    governance = ok(people.inspector.client.get(f"/probes/{probe_id}/governance"))
    assert governance["missing_endorsements"] == ["P-04"] and governance["endorsements"] == []


def test_P06_technical_advice_is_recorded_on_the_probe_page_before_the_inspector_endorses(
    web_server, new_page, people, photo, screenshots
):
    """P-06: the analyst records the facial recognition team's advice on the probe's page; the
    Inspector then finds the probe in the queue and endorses it; both in the browser."""
    vulnerable = {"suspected_relevant_disability": True, "suspected_predates_gender_reassignment": False}
    probe_id = submitted_probe(people, photo, vulnerability=vulnerable, case_reference="OP-HERON/2026/0031")[
        "probe_id"
    ]
    analyst = new_page()
    sign_in(analyst, people.analyst.token)
    analyst.goto(f"/app/probes/{probe_id}")
    section = analyst.locator("section", has=analyst.get_by_role("heading", name="Technical advice (P-06)"))
    expect(section).to_be_visible()
    # Blank advice (spaces pass the browser's own check) is refused by the server, naming what is
    # missing, and records nothing.
    before = event_count(web_server)
    analyst.get_by_label("The technical advice").fill("   ")
    section.get_by_role("button", name="Record the technical advice").click()
    expect(section.locator("#advice-error")).to_contain_text("the technical advice")
    assert event_count(web_server) == before
    advice = "Lower similarity expected for this subject; compare ears and jawline, not the score"
    analyst.get_by_label("The technical advice").fill(advice)
    analyst.get_by_role("button", name="Record the technical advice").click()
    expect(analyst.get_by_test_id("technical-advice")).to_have_text(advice)
    expect(analyst.get_by_role("button", name="Record the technical advice")).to_have_count(0)
    analyst.screenshot(path=screenshots / "probe-technical-advice.png", full_page=True)

    inspector = new_page()
    sign_in(inspector, people.inspector.token)
    inspector.goto("/app/queues")
    awaited = inspector.locator("#endorsements-awaited tbody tr").filter(
        has=inspector.locator(f"a[href$='probe={probe_id}']")
    )
    expect(awaited.locator("td").nth(5)).to_have_text("P-06")
    awaited.get_by_role("link", name="OP-HERON/2026/0031").click()
    inspector.get_by_label("Why you endorse the search (P-06)").fill("Necessary despite the advice")
    inspector.get_by_role("button", name="Endorse under P-06").click()
    inspector.wait_for_url("**done=P-06**")
    governance = ok(people.analyst.client.get(f"/probes/{probe_id}/governance"))
    assert governance["technical_advice"] == advice
    assert governance["missing_endorsements"] == [] and governance["endorsements"][0]["kind"] == "P-06"


def test_P04_a_probe_the_analyst_reassesses_as_13_to_15_joins_the_inspectors_queue(
    web_server, new_page, people, photo, screenshots
):
    """The analyst records a new perceived age on the probe's page, with the reason; P-04 then
    asks an Inspector's endorsement, and the probe is in the queue."""
    probe_id = submitted_probe(people, photo, case_reference="OP-KESTREL/2026/0012")["probe_id"]
    page = new_page()
    sign_in(page, people.analyst.token, next_path=f"/app/probes/{probe_id}")
    page.get_by_text("Change the perceived age or raise the level").click()
    page.get_by_label("13 to 15: needs an Inspector's endorsement").check()
    page.get_by_label("Why the age is reassessed").fill("A clearer frame shows a child")
    page.get_by_role("button", name="Record the perceived age").click()
    page.wait_for_url(f"**/app/probes/{probe_id}#facts")
    expect(page.locator("dl.facts")).to_contain_text("13 to 15")
    expect(page.get_by_role("status")).to_contain_text(
        "under 16 needs the endorsement of an officer of Inspector rank"
    )
    page.screenshot(path=screenshots / "probe-age-reassessed.png", full_page=True)
    inspector = new_page()
    sign_in(inspector, people.inspector.token)
    inspector.goto("/app/queues")
    awaited = inspector.locator("#endorsements-awaited tbody tr").filter(
        has=inspector.locator(f"a[href$='probe={probe_id}']")
    )
    expect(awaited.locator("td").nth(3)).to_have_text("13 to 15")
    expect(awaited.locator("td").nth(5)).to_have_text("P-04")


def test_P04_an_endorsement_posted_without_its_csrf_token_is_refused_and_changes_nothing(
    web_server, new_page, people, photo, screenshots
):
    probe_id = _young_probe(people, photo)["probe_id"]
    page = new_page()
    sign_in(page, people.inspector.token)
    page.goto(f"/app/queues/endorsement?probe={probe_id}")
    page.get_by_label("Why you endorse the search (P-04)").fill(RATIONALE)
    before = event_count(web_server)
    form = page.locator("form", has=page.get_by_role("button", name="Endorse under P-04"))
    form.locator("input[name=csrf_token]").evaluate("input => input.remove()")
    page.get_by_role("button", name="Endorse under P-04").click()
    expect(page.get_by_role("heading", name="This form was not accepted")).to_be_visible()
    page.screenshot(path=screenshots / "queue-csrf-refused.png", full_page=True)
    assert event_count(web_server) == before
    governance = ok(people.inspector.client.get(f"/probes/{probe_id}/governance"))
    assert governance["missing_endorsements"] == ["P-04"] and governance["endorsements"] == []


def test_L02_the_sro_approves_a_form_1_from_the_queue_with_its_l05_record(
    web_server, new_page, people, screenshots
):
    name = f"Custody images {people.team}"
    applied = ok(people.analyst.client.post("/library-approvals", json=application(library_name=name)), 201)
    page = new_page()
    sign_in(page, people.sro.token)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Your queue").click()
    page.wait_for_url("**/app/queues")
    row = page.get_by_role("row", name=name)
    expect(row).to_contain_text("Form 1")
    expect(row).to_contain_text("a decision (the SRO)")
    row.get_by_role("link", name=name).click()
    page.wait_for_url("**/app/queues/approval?approval=**")
    # The facts to decide on: every part of the application, in words.
    expect(page.get_by_role("heading", name=f"Form 1: {name}")).to_be_visible()
    expect(page.get_by_test_id("approval-status")).to_have_text("applied")
    expect(page.locator("dl.facts").nth(1)).to_contain_text(application()["legal_basis"])

    # Sent without a rationale: refused beside the field, nothing decided.
    page.get_by_role("button", name="Approve", exact=True).evaluate("b => b.form.noValidate = true")
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.get_by_role("heading", name="There is a problem")).to_be_visible()
    expect(page.locator("#approve-rationale-error")).to_contain_text("Enter why you approve")

    page.get_by_label("Why you approve").fill("Necessary to identify suspects of recordable offences")
    page.get_by_label("Teams who may search it").fill(people.team)
    page.get_by_label("Most intrusive image level approved").select_option("2")
    page.get_by_label("(a) identify a person").check()
    page.get_by_label("Conditions").fill("Team only; every search logged")
    page.get_by_label("Review due").fill(later(90)[:10])
    page.screenshot(path=screenshots / "queue-approval.png", full_page=True)
    page.get_by_role("button", name="Approve", exact=True).click()
    page.wait_for_url("**done=approve**")
    expect(page.get_by_test_id("decided")).to_contain_text("your decision is recorded")
    expect(page.get_by_test_id("approval-status")).to_have_text("approved")
    page.screenshot(path=screenshots / "queue-approved.png", full_page=True)

    approved = ok(people.sro.client.get(f"/library-approvals/{applied['id']}"))
    assert approved["status"] == "approved"
    assert approved["approver_id"] == people.sro.user_id
    assert approved["approved_level"] == 2
    assert approved["access_teams"] == [people.team]
    assert approved["purposes"] == ["a_identify"]


def test_P08_an_inspector_approves_a_search_of_a_level_4_library_from_the_queue(
    web_server, new_page, people, photo, screenshots
):
    high = approved_library(people, level=4, name=f"Level 4 images {people.team}")
    probe = ready_probe(people, photo)
    search = ok(open_search(people, probe["probe_id"], high["id"]), 201)
    assert search["awaiting"] == ["P-08"], search
    page = new_page()
    sign_in(page, people.inspector.token)
    page.goto("/app/queues")
    search_row = page.get_by_role("row", name=search["id"])
    expect(search_row).to_contain_text("P-08")
    expect(search_row).to_contain_text(people.analyst.user_id)
    page.screenshot(path=screenshots / "queue-searches.png", full_page=True)
    search_row.get_by_role("link", name=search["id"]).click()
    page.wait_for_url("**/app/queues/search?search=**")
    expect(page.get_by_test_id("search-awaiting")).to_have_text("P-08")
    expect(page.get_by_role("row", name=high["id"])).to_contain_text("4")
    page.get_by_label("Why you approve the search").fill("Level 4 justified by the risk of harm")
    page.get_by_role("button", name="Approve the search").click()
    page.wait_for_url("**done=approve**")
    expect(page.get_by_test_id("decided")).to_contain_text("your decision is recorded")
    expect(page.get_by_test_id("search-awaiting")).to_have_text("nothing: it may be searched")
    expect(page.get_by_role("button", name="Approve the search")).to_have_count(0)
    page.screenshot(path=screenshots / "queue-search-approved.png", full_page=True)

    approved = ok(people.analyst.client.get(f"/searches/{search['id']}"))
    assert approved["approval"]["by"] == people.inspector.user_id
    assert approved["approval"]["rationale"] == "Level 4 justified by the risk of harm"
    assert approved["awaiting"] == []


def test_U01_an_inspector_approves_a_probes_addition_to_the_cache_from_the_queue(
    web_server, new_page, people, shared_faces, screenshots
):
    photos = lfw_photos(shared_faces)
    enrolled, probe_subject = list(photos)[1], list(photos)[2]
    library = approved_library(people, name=f"Cache library {people.team}")
    enrol(people, library["id"], [(enrolled, photos[enrolled][0])])
    probe = ready_probe(people, photos[probe_subject][0], case_reference="OP-HERON/2026/0031")
    search = ok(open_search(people, probe["probe_id"], library["id"]), 201)
    run = ok(people.analyst.client.post(f"/searches/{search['id']}/runs"))
    for candidate in run["candidates"]:
        ok(
            people.analyst.client.post(
                f"/searches/{search['id']}/adjudications",
                json={"candidate_id": candidate["candidate_id"], "viable": False, "rationale": "Not him"},
            )
        )
    asked = {
        "probe_id": probe["probe_id"],
        "grounds": ["b_offence"],
        "rationale": "Burglar still unidentified",
    }
    ok(people.analyst.client.post("/ucc/requests", json=asked), 201)

    page = new_page()
    sign_in(page, people.inspector.token)
    page.goto("/app/queues")
    row = page.get_by_role("row", name=probe["probe_id"])
    expect(row).to_contain_text("OP-HERON/2026/0031")
    expect(row).to_contain_text(people.analyst.user_id)
    row.get_by_role("link", name=probe["probe_id"]).click()
    page.wait_for_url("**/app/queues/ucc?probe=**")
    expect(page.get_by_test_id("ucc-status")).to_have_text("pending")
    expect(page.locator("dl.facts")).to_contain_text("Burglar still unidentified")
    page.get_by_label("Why the probe should stay searchable").fill("Serious offence, offender at large")
    page.screenshot(path=screenshots / "queue-ucc.png", full_page=True)
    page.get_by_role("button", name="Approve the addition").click()
    page.wait_for_url("**done=approve**")
    expect(page.get_by_test_id("decided")).to_contain_text("the probe enters the cache")
    expect(page.get_by_test_id("ucc-status")).to_contain_text("in the cache")

    entry = ok(people.analyst.client.get(f"/ucc/entries/{probe['probe_id']}"))
    assert entry["approved_by"] == people.inspector.user_id

    # Its review (U-03): stopped, so the entry leaves the cache (U-04).
    page.get_by_role("link", name="The entry in the cache and its review").click()
    page.wait_for_url("**/app/queues/ucc-entry?probe=**")
    expect(page.get_by_test_id("ucc-in-cache")).to_have_text("yes")
    page.get_by_label("Stop: remove it from the cache").check()
    page.get_by_label("Why (the review's reason)").fill("Suspect identified by a witness")
    page.get_by_role("button", name="Record the review").click()
    page.wait_for_url("**done=stop**")
    expect(page.get_by_test_id("decided")).to_contain_text("reviewed (Stop)")
    expect(page.get_by_test_id("ucc-in-cache")).to_contain_text("no: removed")
    page.screenshot(path=screenshots / "queue-ucc-reviewed.png", full_page=True)
    stopped = ok(people.analyst.client.get(f"/ucc/entries/{probe['probe_id']}"))
    assert stopped["removed_at"] is not None


def test_L07_the_sro_reviews_an_approval_in_force_from_its_page(web_server, new_page, people, screenshots):
    applied = ok(
        people.analyst.client.post("/library-approvals", json=application(library_name="Reviewed images")),
        201,
    )
    ok(
        people.sro.client.post(
            f"/library-approvals/{applied['id']}/approval", json={"record": approval_record(people.team)}
        )
    )
    page = new_page()
    sign_in(page, people.sro.token)
    page.goto("/app/queues")
    page.get_by_label("Approval id").fill(applied["id"])
    page.get_by_role("button", name="Open the approval").click()
    page.wait_for_url("**/app/queues/approval?approval=**")
    expect(page.get_by_test_id("approval-status")).to_have_text("approved")
    expect(page.get_by_role("button", name="Approve", exact=True)).to_have_count(0)
    page.get_by_label("Continue").check()
    page.get_by_label("Why (the review's rationale)").fill("Still necessary: searches found suspects")
    page.get_by_label("Next review due").fill(later(180)[:10])
    page.get_by_role("button", name="Record the review").click()
    page.wait_for_url("**done=review**")
    expect(page.get_by_test_id("decided")).to_contain_text("Reviewed: your decision is recorded")
    page.screenshot(path=screenshots / "queue-approval-reviewed.png", full_page=True)

    reviewed = ok(people.sro.client.get(f"/library-approvals/{applied['id']}"))
    (review,) = reviewed["reviews"]
    assert review["outcome"] == "continue"
    assert review["reviewer_id"] == people.sro.user_id
    assert reviewed["review_due"][:10] == later(180)[:10]
