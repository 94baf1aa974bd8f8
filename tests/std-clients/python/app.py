"""One request with urllib.request; what came back is the output, and also
a log line and a stdout line (so masking is seen in all three)."""

import urllib.error
import urllib.request

import airlock_sdk as airlock
from airlock_sdk import log


@airlock.step
def run(input):
    body = input.get("body")
    req = urllib.request.Request(
        input["url"],
        data=body.encode() if body is not None else None,
        headers=input.get("headers") or {},
        method=input.get("method") or "GET",
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            status, headers, text = response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        status, headers, text = e.code, e.headers, e.read()
    except urllib.error.URLError as e:
        raise airlock.Error(f"urlopen failed: {e.reason}", code="request_failed")
    text = text.decode("utf-8", "replace")
    log.info(f"upstream said: {text}")
    print(f"stdout sees: {text}")
    return {
        "status": status,
        "headers": {k.lower(): v for k, v in headers.items()},
        "body": text,
    }
