"""Conformance case `hello`."""

import airlock_sdk as airlock
from airlock_sdk import log


@airlock.step
def run(input):
    name = input["name"]
    if not name:
        raise airlock.Error("name must not be empty", code="empty_name")
    log.info(f"greeting {name}")
    return {"greeting": f"Hello, {name}!"}
