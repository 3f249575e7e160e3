"""A-04 over HTTP: usage reports for Administrators and Auditors, schedules for Administrators only.

The foundation's route-table test (tests/http/test_route_access.py) walks these routes too:
401 without a token and 403 for every role not declared.
"""

from __future__ import annotations

import csv
import io

from http_harness import LiveServer


def test_A04_administrator_runs_the_usage_report_as_json_and_csv(reports_server: LiveServer) -> None:
    admin = reports_server.admin.client
    analyst = reports_server.user(["rfr_user"], prefix="analyst")
    refused = analyst.client.get("/reports/usage")
    assert refused.status_code == 403 and refused.json()["recorded"] is True

    report = admin.get("/reports/usage")
    assert report.status_code == 200 and report.headers["content-type"].startswith("application/json")
    body = report.json()
    assert (body["rule"], body["period"]["from"], body["period"]["real_time"]) == ("A-04", None, True)
    # The wrong-role call above is in the trail the report reads: it shows as a refusal.
    assert body["refusals"]["by_command"]["call GET /reports/usage"] >= 1
    assert body["refusals"]["by_rule"]["A-05"] >= 1

    as_csv = admin.get(
        "/reports/usage",
        params={
            "format": "csv",
            "from": "2024-01-01T00:00:00",
            "to": "2024-02-01T00:00:00Z",
            "reason": "January",
        },
    )
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = {
        (r["section"], r["measure"], r["key"]): r["value"] for r in csv.DictReader(io.StringIO(as_csv.text))
    }
    assert rows["period", "from", ""] == "2024-01-01T00:00:00+00:00"
    assert rows["searches", "requests_opened", ""] == "0"

    after = admin.get("/reports/usage").json()
    assert after["reports"]["run_on_demand"] == body["reports"]["run_on_demand"] + 2


def test_A04_auditor_may_run_the_report_but_not_schedule_it(reports_server: LiveServer) -> None:
    """A-04: auditor may run the report but not schedule it."""
    auditor = reports_server.user(["auditor"], prefix="auditor")
    assert auditor.client.get("/reports/usage", params={"reason": "oversight"}).status_code == 200
    create = auditor.client.post(
        "/reports/schedules", json={"name": "mine", "frequency": "daily", "recipients": ["admin"]}
    )
    assert create.status_code == 403 and create.json()["recorded"] is True
    assert auditor.client.get("/reports/schedules").status_code == 403


def test_A04_administrator_schedules_changes_and_cancels_a_report(reports_server: LiveServer) -> None:
    admin = reports_server.admin.client
    other_admin = reports_server.user(["administrator"], prefix="admin")
    created = admin.post(
        "/reports/schedules",
        json={"name": "daily usage", "frequency": "daily", "recipients": [other_admin.user_id]},
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert (schedule["frequency"], schedule["recipients"], schedule["status"]) == (
        "daily",
        [other_admin.user_id],
        "active",
    )
    sid = schedule["id"]
    assert sid in [s["id"] for s in admin.get("/reports/schedules", params={"limit": 500}).json()["items"]]
    assert other_admin.client.get(f"/reports/schedules/{sid}").json()["name"] == "daily usage"

    changed = admin.patch(
        f"/reports/schedules/{sid}",
        json={"reason": "both of us", "frequency": "monthly", "recipients": [other_admin.user_id, "admin"]},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["frequency"], changed.json()["recipients"]) == (
        "monthly",
        [other_admin.user_id, "admin"],
    )
    assert admin.patch(f"/reports/schedules/{sid}", json={"reason": "nothing"}).status_code == 400

    cancelled = admin.post(f"/reports/schedules/{sid}/cancel", json={"reason": "replaced"})
    assert cancelled.status_code == 201 and cancelled.json()["status"] == "cancelled"
    again = admin.post(f"/reports/schedules/{sid}/cancel", json={"reason": "again"})
    assert again.status_code == 403 and again.json()["rule_ids"] == ["A-04"]


def test_A04_schedules_go_only_to_administrators_and_bad_requests_are_refused(
    reports_server: LiveServer,
) -> None:
    admin = reports_server.admin.client
    user = reports_server.user(["rfr_user"], prefix="user")
    refused = admin.post(
        "/reports/schedules", json={"name": "usage", "frequency": "hourly", "recipients": [user.user_id]}
    )
    assert refused.status_code == 403
    assert (refused.json()["rule_ids"], refused.json()["recorded"]) == (["A-04"], True)
    weekly = admin.post(
        "/reports/schedules", json={"name": "usage", "frequency": "weekly", "recipients": ["admin"]}
    )
    assert weekly.status_code == 400
    backwards = admin.get(
        "/reports/usage", params={"from": "2024-02-01T00:00:00Z", "to": "2024-01-01T00:00:00Z"}
    )
    # Each a valid date: their order is what the schema cannot state (422, ADR 0008).
    assert backwards.status_code == 422 and backwards.json()["errors"][0]["field"] == "from"
    assert admin.get("/reports/usage", params={"format": "pdf"}).status_code == 400
    missing = admin.get("/reports/schedules/7d4d6b4e-0000-4000-8000-000000000000")
    assert missing.status_code == 404


def test_A04_the_html_report_with_charts_is_served_to_report_readers_only(reports_server: LiveServer) -> None:
    """A-04, A-05: ``format=html`` is the report as one page with inline SVG charts and no script,
    for Administrators and Auditors as the JSON one is; any other role is refused and recorded."""
    admin = reports_server.admin.client
    page = admin.get("/reports/usage", params={"format": "html", "reason": "oversight board"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html
    assert "<svg" in html and "Refusals by rule" in html and "Policy exceptions awaiting the SRO" in html
    auditor = reports_server.user(["auditor"], prefix="auditor")
    assert auditor.client.get("/reports/usage", params={"format": "html"}).status_code == 200
    for roles in (["rfr_user"], ["approving_officer"], ["sro"], ["operational_lead"]):
        other = reports_server.user(roles, prefix="reader")
        refused = other.client.get("/reports/usage", params={"format": "html"})
        assert refused.status_code == 403 and refused.json()["recorded"] is True, roles
        assert refused.json()["rule_ids"] == ["A-05"]
    # Each run is recorded with its format: the two above count as runs on demand.
    runs = admin.get("/reports/usage").json()["reports"]["run_on_demand"]
    assert runs >= 2
