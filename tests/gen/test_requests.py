"""The request context a policy decides on: typed, built once, the same fields it always had."""

from __future__ import annotations

from gen import RequestContext
from safety import Stage


def test_each_operation_carries_only_its_fields() -> None:
    seal = RequestContext(operation="seal", tenant="acme", model="elsewhere")
    assert seal.as_dict() == {
        "operation": "seal",
        "tenant": "acme",
        "purpose": "",
        "model": "elsewhere",
        "has_input_image": False,
        "preset": "",
        "n": 1,
    }
    screen = RequestContext(operation="screen", has_consent=False)
    assert screen.as_dict()["has_consent"] is False
    assert "consent" not in screen.as_dict() and "request_sha256" not in screen.as_dict()


def test_at_names_the_stage_and_leaves_the_original_alone() -> None:
    context = RequestContext(operation="generate", consent={}, has_consent=False)
    output = context.at(Stage.OUTPUT)
    assert output.as_dict()["stage"] == "output"
    assert "stage" not in context.as_dict()
    assert output.as_dict()["consent"] == {}
