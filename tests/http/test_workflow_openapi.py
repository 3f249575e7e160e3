"""The OpenAPI document describes every workflow operation: what it does, an example of each body,
and the problems it may answer with."""

from __future__ import annotations

import json

import pytest

from rfr.entrypoints.http.app import create_app
from rfr.infrastructure.settings import Settings

WORKFLOW_PATHS = ("/library-approvals", "/libraries", "/probes", "/searches", "/cache")


@pytest.fixture(scope="module")
def document(tmp_path_factory) -> dict:
    app = create_app(Settings(tmp_path_factory.mktemp("openapi"), persistence="memory"))
    return app.openapi_schema.to_schema()


def operations(document: dict):
    for path, item in sorted(document["paths"].items()):
        if path.startswith(WORKFLOW_PATHS):
            for method, operation in item.items():
                yield f"{method.upper()} {path}", operation


def test_every_workflow_operation_has_a_summary_and_its_problem_responses(document):
    found = list(operations(document))
    assert len(found) >= 50
    for name, operation in found:
        assert operation.get("summary"), name
        assert {"401", "403", "404"} <= set(operation["responses"]), name
        problem = operation["responses"]["403"]["content"]["application/problem+json"]["schema"]
        assert problem == {"$ref": "#/components/schemas/Problem"}, name
        assert operation.get("security"), f"{name}: a bearer token is required"


def test_every_request_body_has_an_example(document):
    bodies = 0
    for name, operation in operations(document):
        body = operation.get("requestBody")
        if body is None:
            continue
        bodies += 1
        (media_type, content), *_ = body["content"].items()
        assert content.get("examples"), name
        if media_type == "application/json":
            assert not operation["responses"].get("415"), f"{name}: only uploads are refused as images"
    assert bodies >= 30


def test_the_form_3_part_of_a_probe_upload_carries_its_own_schema(document):
    schemas = document["components"]["schemas"]
    upload = schemas["ProbeUpload"]["properties"]["form3"]
    assert upload["contentMediaType"] == "application/json"
    assert upload["contentSchema"] == {"$ref": "#/components/schemas/Form3Body"}
    schema = schemas["Form3Body"]
    assert {"case_reference", "perceived_age", "pre_rfr_checks", "urgency"} <= set(schema["properties"])
    assert "a_identify" in schemas["SearchPurpose"]["enum"]
    example = json.loads(upload["examples"][0])
    assert set(example) <= set(schema["properties"]) and set(schema["required"]) <= set(example)
    uploads = document["paths"]["/probes"]["post"]["responses"]
    assert {"413", "415", "422"} <= set(uploads)


def test_documents_the_printable_report_and_thumbnails_by_their_media_types(document):
    paths = document["paths"]
    printable = paths["/searches/{request_id}/reports/{report_id}/printable"]["get"]["responses"]["200"]
    assert list(printable["content"]) == ["text/html"]
    for path in (
        "/probes/{probe_id}/faces/{face_id}/thumbnail",
        "/searches/{request_id}/candidates/{candidate_id}/thumbnail",
    ):
        assert list(paths[path]["get"]["responses"]["200"]["content"]) == ["image/jpeg"]
