"""Conformance case `secrets`."""

import airlock_sdk as airlock
from airlock_sdk import log, secrets


def outcome(call):
    try:
        call()
    except secrets.SecretError as e:
        return e.kind
    return "ok"


@airlock.step
def run(input):
    token = secrets.get("TOKEN")
    value = token.reveal()
    log.info(f"revealed {value}")
    handle_only = secrets.get("HANDLE_ONLY")
    return {
        "name": token.name,
        "token": value,
        "handle_only": outcome(handle_only.reveal),
        "missing": outcome(lambda: secrets.get("MISSING")),
        "ungranted": outcome(lambda: secrets.get("UNGRANTED")),
    }
