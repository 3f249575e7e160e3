"""The OpenAPI document describes every workflow operation: what it does, an example of each body,
and the problems it may answer with."""

from __future__ import annotations

import pytest

from rfr.entrypoints.http.app import create_app
from rfr.infrastructure.settings import Settings

WORKFLOW_PATHS = ("/library-approvals", "/libraries", "/probes", "/searches", "/ucc")


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
        responses = set(operation["responses"])
        assert {"401", "403", "500"} <= responses, name
        if "{" in name:
            assert "404" in responses, f"{name}: its path names a resource"
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
        statuses = set(operation["responses"])
        # Any body may be too large or of the wrong media type; an image may also be unusable.
        assert {"400", "413", "415"} <= statuses, name
        if media_type == "multipart/form-data":
            assert {"422", "503"} <= statuses, f"{name}: an image may be unusable, image work busy"
    assert bodies >= 30


def test_the_form_3_part_of_a_probe_upload_carries_its_own_schema(document):
    schemas = document["components"]["schemas"]
    upload = schemas["ProbeUpload"]["properties"]["form3"]
    assert upload["$ref"] == "#/components/schemas/Form3Body"
    schema = schemas["Form3Body"]
    assert {"case_reference", "perceived_age", "pre_rfr_checks", "urgency"} <= set(schema["properties"])
    assert "a_identify" in schemas["SearchPurpose"]["enum"]
    operation = document["paths"]["/probes"]["post"]
    example = operation["requestBody"]["content"]["multipart/form-data"]["examples"]["example"]["value"][
        "form3"
    ]
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
