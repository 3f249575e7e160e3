"""The analyst's path in a real browser (Debian's Chromium, headless) against a real ``rfr serve``,
with real LFW photos: Form 3 and the image, the faces drawn on it, a face selected (P-11) and any
quality flag decided (P-10), a search opened naming its library and why (S-03), run in progressive
order (S-02), a candidate adjudicated beside the probe's face with the keyboard (S-05), its match
report issued and printed (S-06), its sharing recorded (S-07), and the probe proposed for the
Unresolved Crime Cache (U-01); a short video submitted in the same Form 3, one face offered per
person followed through it (ADR 0026).
A user outside the library's access list sees neither the search's candidates nor their images,
refused by the server (L-13).

The library is approved and enrolled through the API (tests/http/workflow_builders), as the
Operational Lead and the SRO would; everything the analyst does is done in the browser.
Screenshots of each page go to the ``screenshots`` folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from video_builders import Walker, face_of, walking_faces, write_video
from web_steps import refusals_of, sign_in
from workflow_builders import Cast, approved_library, cast, enrol, lfw_photos, ok, submitted_probe

from rfr.domain.people import Role


@pytest.fixture(scope="module")
def people(web_server) -> Cast:
    return cast(web_server)


@pytest.fixture(scope="module")
def scene(people: Cast, shared_faces: Path) -> dict[str, Any]:
    """A library of one photo each of four people; the probe is another photo of the first."""
    photos = lfw_photos(shared_faces)
    subjects = list(photos)[:4]
    library = approved_library(people, name=f"LFW custody images {people.team}")
    enrol(people, library["id"], [(s, photos[s][0]) for s in subjects])
    return {"library": library, "subject": subjects[0], "probe_photo": photos[subjects[0]][1]}


def unlabelled_controls(page: Any) -> list[str]:
    """The visible form controls with no accessible name from a label (each must have one)."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll("input, select, textarea"))
            .filter(el => el.type !== "hidden")
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute("aria-label"))
            .map(el => el.name || el.id)"""
    )


def _submit_form3(page: Any, photo: Path) -> None:
    page.goto("/app/probes/new")
    expect(page.get_by_role("heading", name="Submit a probe with its Form 3")).to_be_visible()
    page.get_by_label("Probe image").set_input_files(str(photo))
    page.get_by_label("Case or crime reference").fill("OP-LANTERN/2026/0142")
    page.get_by_label("Where the image comes from").fill("Shop CCTV, camera 3")
    page.get_by_label("Sensitivity of the source").fill("None")
    page.get_by_label("This is the most current and suitable image of the person held").check()
    page.get_by_label("(a) Identify a person").check()
    page.get_by_label("(b) Suspected of an offence").check()
    page.get_by_role("combobox", name="Offence").select_option("burglary")
    page.get_by_label("Level 1: a compliant police image (custody-style)").check()
    page.get_by_label("18 or over").check()
    page.get_by_label("Why the search is necessary and proportionate").fill(
        "Burglary suspect unidentified after a CCTV trawl"
    )
    page.get_by_label("Local enquiries").check()
    page.get_by_label("Why they did not suffice").fill("Nobody recognised him")


def test_L13_an_analyst_goes_from_probe_to_adjudication_and_an_outsider_sees_none_of_it(
    web_server, new_page, screenshots, people, scene
):
    page = new_page()
    sign_in(page, people.analyst.token, next_path="/app/probes/new")
    # A form with errors is sent back with them, each linked to its field.
    page.goto("/app/probes/new")
    page.get_by_role("button", name="Submit the probe").click()
    expect(page.get_by_role("alert")).to_contain_text("Choose at least one purpose (P-01).")

    _submit_form3(page, scene["probe_photo"])
    page.screenshot(path=screenshots / "probe-form3.png", full_page=True)
    assert unlabelled_controls(page) == []
    page.get_by_role("button", name="Submit the probe").click()
    page.wait_for_url("**/app/probes/*-*")
    expect(page.get_by_role("heading", name="Probe", exact=True)).to_be_visible()
    expect(page.get_by_test_id("probe-image")).to_be_visible()
    assert page.get_by_test_id("face-box").count() >= 1
    page.screenshot(path=screenshots / "probe-faces.png", full_page=True)
    assert unlabelled_controls(page) == []
    probe_id = page.get_by_test_id("probe-id").inner_text()

    # The largest face, as a person would pick the suspect nearest the camera.
    faces = page.locator("li[data-face]")
    areas = [int(faces.nth(i).get_attribute("data-area")) for i in range(faces.count())]
    face_id = faces.nth(areas.index(max(areas))).get_attribute("data-face")
    page.locator(f"input[name=face_id][value='{face_id}']").check()
    page.get_by_label("Why this face").fill("The suspect, nearest the camera")
    page.get_by_role("button", name="Select this face").click()
    page.wait_for_url(f"**/app/probes/{probe_id}")
    expect(page.get_by_text("(selected)")).to_be_visible()
    if page.get_by_role("heading", name="Quality decision (P-10)").count():
        page.get_by_label("Yes, search: the features are still clear enough").check()
        page.get_by_label("Why", exact=True).fill("Features still clear")
        page.get_by_role("button", name="Record the decision").click()
        expect(page.get_by_test_id("quality-decision")).to_contain_text("search despite the flags")
    expect(page.get_by_test_id("ready")).to_have_text("Yes")
    probe = ok(people.analyst.client.get(f"/probes/{probe_id}"))
    assert [f["face_id"] for f in probe["faces"] if f["selected"]] == [face_id]

    # Open the search naming the library and why it is relevant.
    page.get_by_role("link", name="Open a search with this probe").click()
    expect(page.get_by_label("Probe")).to_have_value(probe_id)
    name = scene["library"]["name"]
    page.get_by_label(f"Why search “{name}”").fill("The suspect may have been arrested before")
    page.screenshot(path=screenshots / "search-open.png", full_page=True)
    page.get_by_role("button", name="Open the search").click()
    page.wait_for_url("**/app/searches/*-*")
    search_id = page.get_by_test_id("search-id").inner_text()
    expect(page.get_by_test_id("libraries")).to_contain_text("The suspect may have been arrested before")

    # Run it: the next library in progressive order.
    page.get_by_role("button", name=f"Search the next library: {name}").click()
    page.wait_for_url(f"**/app/searches/{search_id}#candidates")
    candidates = page.get_by_test_id("candidate")
    expect(candidates.first).to_be_visible()
    assert candidates.count() >= 1
    expect(page.get_by_text("Every library of this request has been searched.")).to_be_visible()
    first = candidates.first
    expect(first.get_by_role("img", name="The probe's face")).to_be_visible()
    expect(first.get_by_test_id("candidate-image")).to_be_visible()
    assert page.evaluate(
        "() => Array.from(document.images).filter(i => i.classList.contains('face-large'))"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    expect(first).to_contain_text("Rank")
    expect(first).to_contain_text("Score")
    expect(first).to_contain_text("Algorithm")
    page.screenshot(path=screenshots / "adjudication.png", full_page=True)
    assert unlabelled_controls(page) == []
    # j / k move between candidates; typing in a field is left alone.
    if candidates.count() > 1:
        first.focus()
        page.keyboard.press("j")
        expect(candidates.nth(1)).to_be_focused()
        page.keyboard.press("k")
        expect(first).to_be_focused()

    # The keyboard: focus the first candidate, "v" chooses viable and moves to the reasons.
    first.focus()
    page.keyboard.press("v")
    expect(first.get_by_label("Viable match")).to_be_checked()
    expect(first.get_by_label("Your reasons")).to_be_focused()
    page.keyboard.type("Same ear shape and hairline; no difference seen")
    first.get_by_label("Unknown (U-01)").check()
    first.get_by_role("button", name="Record the judgement of candidate 1").click()
    page.wait_for_url(f"**/app/searches/{search_id}#candidate-*")
    expect(page.get_by_test_id("adjudication").first).to_contain_text("Viable, by")
    view = ok(people.analyst.client.get(f"/searches/{search_id}"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Searches").click()
    expect(page.get_by_test_id("searches")).to_contain_text(search_id)
    page.get_by_role("link", name=search_id).click()
    page.wait_for_url(f"**/app/searches/{search_id}")
    judged = [c for c in view["candidates"] if c["adjudication"]]
    assert judged[0]["rank"] == 1 and judged[0]["adjudication"]["viable"] is True
    page.screenshot(path=screenshots / "adjudicated.png", full_page=True)

    # The match report (S-06): issued, printed alone, and its sharing recorded (S-07).
    page.get_by_role("button", name="Issue the match report for candidate 1").click()
    page.wait_for_url(f"**/app/searches/{search_id}/reports/*")
    report = page.get_by_test_id("match-report")
    expect(report).to_contain_text("OP-LANTERN/2026/0142")
    expect(report).to_contain_text("Same ear shape and hairline")
    caveat = ok(people.analyst.client.get(f"/searches/{search_id}"))["reports"][0]["caveat"]
    expect(page.get_by_test_id("caveat")).to_have_text(caveat)
    assert unlabelled_controls(page) == []
    page.screenshot(path=screenshots / "match-report.png", full_page=True)
    page.emulate_media(media="print")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    expect(page.get_by_role("button", name="Record the sharing")).to_be_hidden()
    expect(report).to_be_visible()
    page.screenshot(path=screenshots / "match-report-printed.png", full_page=True)
    page.pdf(path=str(screenshots / "match-report.pdf"))
    page.emulate_media(media="screen")
    report_url = page.url
    # Without the safeguards acknowledged the sharing is refused by the domain (S-07).
    page.get_by_label("Who receives it").fill("DC Smith, Burglary Squad")
    page.get_by_label("Legal basis for sharing").fill("Common law policing purpose; DPA 2018 s.35")
    page.get_by_role("button", name="Record the sharing").click()
    expect(page.get_by_role("alert")).to_contain_text("S-07")
    page.goto(report_url)
    page.get_by_label("Who receives it").fill("DC Smith, Burglary Squad")
    page.get_by_label("Legal basis for sharing").fill("Common law policing purpose; DPA 2018 s.35")
    page.get_by_label("The recipient applies safeguards equivalent to this policy's").check()
    page.get_by_role("button", name="Record the sharing").click()
    expect(page.get_by_test_id("disseminations")).to_contain_text("DC Smith, Burglary Squad")
    shared = ok(people.analyst.client.get(f"/searches/{search_id}"))["disseminations"]
    assert [d["recipient"] for d in shared] == ["DC Smith, Burglary Squad"]

    # The person matched is unknown: the analyst proposes the probe for the cache (U-01).
    page.goto(f"/app/searches/{search_id}#ucc")
    page.get_by_label("(b) Suspected of an offence").check()
    page.get_by_label("Why it should be searched again as new material arrives").fill(
        "Burglar still unidentified; new custody images arrive weekly"
    )
    page.get_by_role("button", name="Propose for the cache").click()
    expect(page.get_by_test_id("ucc-request")).to_contain_text("pending")
    asked = ok(people.analyst.client.get(f"/ucc/requests/{probe_id}"))
    assert asked["status"] == "pending" and asked["grounds"] == ["b_offence"]
    page.screenshot(path=screenshots / "ucc-proposed.png", full_page=True)

    # L-13: a user outside the library's access list, signed in, gets neither the search's
    # candidates nor their images, refused by the server.
    outsider = new_page()
    sign_in(outsider, people.outsider.token)
    refused = outsider.goto(f"/app/searches/{search_id}")
    assert refused.status == 403
    assert view["candidates"][0]["candidate_id"] not in outsider.content()
    expect(outsider.get_by_role("heading", name="Refused by policy")).to_be_visible()
    expect(outsider.get_by_role("alert")).to_contain_text("L-13")
    outsider.screenshot(path=screenshots / "search-refused-l13.png", full_page=True)
    assert outsider.goto(report_url).status == 403
    assert outsider.goto("/app/searches").status == 200
    assert search_id not in outsider.content()
    candidate = view["candidates"][0]["candidate_id"].replace("#", "%23")
    image = outsider.request.get(f"/app/searches/{search_id}/candidates/{candidate}/thumbnail")
    assert image.status == 403 and image.headers["content-type"].startswith("text/html")
    assert outsider.request.get(f"/app/probes/{probe_id}/image").status == 403
    # And the analyst's own image URLs answer with a JPEG.
    mine = page.request.get(f"/app/searches/{search_id}/candidates/{candidate}/thumbnail")
    assert mine.status == 200 and mine.headers["content-type"] == "image/jpeg"


def test_the_analysts_pages_refuse_other_roles_server_side(web_server, new_page, people):
    auditor = web_server.user([Role.AUDITOR.value], prefix="auditor")
    page = new_page()
    sign_in(page, auditor.token)
    for path in ("/app/probes/new", "/app/searches/new"):
        assert page.goto(path).status == 403
        expect(page.get_by_role("heading", name="Access refused")).to_be_visible()
    # Without a session the image URLs send to sign in, never the image.
    bare = httpx.get(f"{web_server.base_url}/app/probes/new", follow_redirects=False)
    assert bare.status_code == 303


def test_P11_an_analyst_draws_a_box_by_dragging_across_the_image_and_it_is_selected(
    web_server, new_page, screenshots, people, scene
):
    probe = submitted_probe(people, scene["probe_photo"], case_reference="OP-DRAW/2026/0001")
    face = max(probe["faces"], key=lambda f: (f["right"] - f["left"]) * (f["bottom"] - f["top"]))
    page = new_page()
    sign_in(page, people.analyst.token, next_path=f"/app/probes/{probe['probe_id']}")
    # Typed edges that make no box are refused on the page, nothing recorded.
    page.get_by_label("Left edge").fill("50")
    page.get_by_label("Right edge").fill("10")
    page.get_by_label("Top edge").fill("5")
    page.get_by_label("Bottom edge").fill("60")
    page.get_by_label("Why you drew the box").fill("The detector's box cuts the chin")
    page.get_by_role("button", name="Draw this box and select it").click()
    expect(page.get_by_role("alert")).to_contain_text("The right edge must be to the right of the left edge.")
    # Dragging across the image fills the edges in, in the image's pixels.
    image = page.get_by_test_id("probe-image")
    image.scroll_into_view_if_needed()
    shown = image.bounding_box()
    width = int(image.get_attribute("viewBox").split()[2])
    scale = shown["width"] / width

    def at(x: int, y: int) -> tuple[float, float]:
        return shown["x"] + (x + 0.5) * scale, shown["y"] + (y + 0.5) * scale

    left, top, right, bottom = face["left"] - 4, face["top"] - 4, face["right"] + 4, face["bottom"] + 4
    page.mouse.move(*at(left, top))
    page.mouse.down()
    page.mouse.move(*at((left + right) // 2, (top + bottom) // 2), steps=4)
    page.mouse.move(*at(right, bottom), steps=4)
    page.mouse.up()
    for name, value in (
        ("Left edge", left),
        ("Top edge", top),
        ("Right edge", right),
        ("Bottom edge", bottom),
    ):
        assert abs(int(page.get_by_label(name).input_value()) - value) <= 1, name
    assert width > right
    expect(page.get_by_label("Why you drew the box")).to_be_focused()
    page.screenshot(path=screenshots / "probe-draw-box.png", full_page=True)
    page.get_by_role("button", name="Draw this box and select it").click()
    page.wait_for_url(f"**/app/probes/{probe['probe_id']}")
    expect(page.get_by_text("(selected) (drawn)")).to_be_visible()
    after = ok(people.analyst.client.get(f"/probes/{probe['probe_id']}"))
    (drawn,) = [f for f in after["faces"] if f["drawn"]]
    assert drawn["selected"] and drawn["templated"]
    assert abs(drawn["left"] - left) <= 1 and abs(drawn["bottom"] - bottom) <= 1


def test_P03_a_form3_for_a_child_under_13_is_refused_naming_the_rule_and_recorded(
    web_server, new_page, people, scene
):
    page = new_page()
    sign_in(page, people.analyst.token, next_path="/app/probes/new")
    before = len(refusals_of(web_server, people.analyst.user_id))
    _submit_form3(page, scene["probe_photo"])
    page.get_by_label("Under 13: the search is refused (P-03)").check()
    with page.expect_response(lambda r: r.url.endswith("/app/probes") and r.request.method == "POST") as sent:
        page.get_by_role("button", name="Submit the probe").click()
    assert sent.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text("P-03")
    assert len(refusals_of(web_server, people.analyst.user_id)) == before + 1


def test_P11_an_analyst_submits_a_short_video_and_selects_one_of_the_faces_followed_through_it(
    web_server, new_page, screenshots, people, shared_faces, tmp_path
):
    """The Form 3 takes a short video as the API does (ADR 0026): one face offered per person
    followed through it, each listed with its frame and time; the picture is one frame, so only
    the faces offered from that frame are boxed on it. Selecting one templates it (P-11)."""
    photos = lfw_photos(shared_faces)
    left, right = list(photos)[4:6]
    size = (480, 360)
    walkers = [
        Walker(face_of(photos[left][0]), (10, 60), (4, 2)),
        Walker(face_of(photos[right][0]), (300, 140), (-3, -2)),
    ]
    clip = tmp_path / "two-people.mp4"
    clip.write_bytes(write_video(30, size, walking_faces(walkers, size), fps=10.0))
    page = new_page()
    sign_in(page, people.analyst.token)
    _submit_form3(page, clip)
    page.get_by_role("button", name="Submit the probe").click()
    page.wait_for_url("**/app/probes/*")
    probe_id = page.get_by_test_id("probe-id").inner_text()
    probe = ok(people.analyst.client.get(f"/probes/{probe_id}"))
    assert probe["video"] is not None and len(probe["faces"]) == 2
    poster = probe["video"]["poster_frame"]
    on_poster = [f for f in probe["faces"] if f["frame_index"] == poster]
    expect(page.get_by_test_id("face-box")).to_have_count(len(on_poster))
    expect(page.locator("#faces-caption")).to_contain_text(f"Frame {poster} of the video")
    for n, face in enumerate(probe["faces"], 1):
        seconds = f"{face['time_ms'] / 1000:.1f}"
        expect(page.get_by_test_id(f"face-{n}")).to_contain_text(
            f"Frame {face['frame_index']}, at {seconds} s."
        )
    page.screenshot(path=screenshots / "probe-video-faces.png", full_page=True)
    page.get_by_label("Face 2", exact=False).first.check()
    page.get_by_label("Why this face").fill("The man on the right, who takes the bag")
    page.get_by_role("button", name="Select this face").click()
    page.wait_for_url(f"**/app/probes/{probe_id}")
    after = ok(people.analyst.client.get(f"/probes/{probe_id}"))
    chosen = after["faces"][1]
    assert chosen["selected"] and chosen["templated"]
    assert not after["faces"][0]["templated"]
