"""Request bodies are validated strictly: a JSON value of the wrong type is a 400 naming the field, never coerced
into something chargeable (`"duration": true` is not one second, `"6"` is not six)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from grokgate.api.errors import from_validation_errors
from grokgate.jobs.schemas import GenerateRequest, GenericInput, GenericJobRequest
from tests.conftest import Gateway, Sandbox
from tests.jobs.test_generate_errors import assert_error
from tests.support import counts

JSON_OF_EACH_TYPE = {
    "string": st.text(max_size=5),
    "integer": st.integers(min_value=-(10**6), max_value=10**6),
    "number": st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not float(x).is_integer()),
    "boolean": st.booleans(),
    "null": st.none(),
    "array": st.lists(st.integers(), max_size=2),
    "object": st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
}
FIELD_TYPES: dict[type[BaseModel], dict[str, set[str]]] = {
    GenerateRequest: {
        "prompt": {"string", "null"},
        "model": {"string"},
        "image_url": {"string", "null"},
        "aspect_ratio": {"string", "null"},
        "duration": {"integer", "null"},
        "webhookUrl": {"string", "null"},
    },
    GenericInput: {
        "prompt": {"string", "null"},
        "model": {"string"},
        "image_url": {"string", "null"},
        "aspect_ratio": {"string", "null"},
        "duration": {"integer", "null"},
    },
}


def wrong_values() -> st.SearchStrategy[tuple[type[BaseModel], str, Any]]:
    cases = [
        st.tuples(st.just(model), st.just(field), JSON_OF_EACH_TYPE[kind])
        for model, fields in FIELD_TYPES.items()
        for field, accepted in fields.items()
        for kind in JSON_OF_EACH_TYPE
        if kind not in accepted
    ]
    return st.one_of(cases)


@given(wrong_values())
def test_every_field_refuses_every_wrong_json_type(case: tuple[type[BaseModel], str, Any]) -> None:
    import json

    model, field, value = case
    with pytest.raises(ValidationError) as refused:
        model.model_validate_json(json.dumps({field: value}))
    error = from_validation_errors(list(refused.value.errors()))
    assert error.status == 400
    assert error.details["field"] == field


@given(st.sampled_from(["generate_image", "generate_video"]), st.booleans() | st.text(max_size=3))
def test_the_workflow_form_refuses_wrong_types_too(workflow: str, duration: Any) -> None:
    import json

    body = json.dumps({"workflow": workflow, "input": {"prompt": "x", "duration": duration}})
    with pytest.raises(ValidationError) as refused:
        GenericJobRequest.model_validate_json(body)
    assert from_validation_errors(list(refused.value.errors())).details["field"] == "input.duration"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "x", "duration": True}, "duration"),
        ({"prompt": "x", "duration": "6"}, "duration"),
        ({"prompt": "x", "duration": 6.5}, "duration"),
        ({"prompt": 7, "model": "text-to-image"}, "prompt"),
        ({"prompt": "x", "model": ["text-to-image"]}, "model"),
        ({"prompt": "x", "aspect_ratio": 1.5}, "aspect_ratio"),
        ({"model": "image-to-video", "image_url": {"url": "https://example.com/a.png"}}, "image_url"),
        ({"prompt": "x", "webhookUrl": False}, "webhookUrl"),
    ],
)
async def test_a_wrong_json_type_is_400_and_charges_nothing(
    gateway: Gateway, sandbox: Sandbox, body: dict[str, Any], field: str
) -> None:
    tenant = await gateway.tenant(credits=150)
    before = await counts(gateway.db_url)
    error = assert_error(await gateway.generate(tenant, body), 400, "INVALID_INPUT", field)
    assert error["details"]["field"] == field
    workflow = {"workflow": "generate_video", "input": {k: v for k, v in body.items() if k != "webhookUrl"}}
    if field != "webhookUrl":
        if "model" in body:
            workflow["input"].pop("model")
        if field != "model":
            response = await gateway.client.post("/api/v1/jobs", json=workflow, headers=tenant.headers)
            assert_error(response, 400, "INVALID_INPUT", f"input.{field}")
    assert await counts(gateway.db_url) == before
    assert await sandbox.requests("/v1/") == []


def test_a_whole_number_written_with_a_point_is_the_integer_json_schema_says_it_is() -> None:
    assert GenerateRequest.model_validate_json('{"prompt": "x", "duration": 6.0}').duration == 6
    for wrong in ("true", '"6"', "6.5"):
        with pytest.raises(ValidationError):
            GenerateRequest.model_validate_json('{"prompt": "x", "duration": %s}' % wrong)  # noqa: UP031
