"""The smallest useful step: ``{"name": "Ada"}`` in, a greeting out.

Behind an HTTP trigger it reads the name from the request's JSON body.
"""

import airlock_sdk as airlock
from airlock_sdk import log


@airlock.step
def run(input):
    body = input.get("json") if isinstance(input.get("json"), dict) else input
    name = str(body.get("name", "")).strip()
    if not name:
        raise airlock.Error("`name` must not be empty", code="empty_name")
    log.info(f"greeting {name}")
    return {"greeting": f"Hello, {name}!"}
