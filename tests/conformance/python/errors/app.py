"""Conformance case `errors`."""

import airlock_sdk as airlock


@airlock.step
def run(input):
    kind = input["kind"]
    if kind == "plain":
        raise airlock.Error("plain failure")
    if kind == "coded":
        raise airlock.Error("coded failure", code="conformance_coded")
    if kind == "details":
        raise airlock.Error(
            "failure with details",
            code="conformance_details",
            details={"list": [1, "two", None], "flag": True},
        )
    return {
        "text": "héllo ✓ 😀",
        "nested": {"list": [1, 2.5, True, None, {"deep": []}]},
        "empty": {},
    }
