"""Leaks its secret on purpose, three ways: stdout, the log, the output.

Run it to see Airlock mask every one of them as ``[REDACTED:TOKEN]``.
"""

import airlock_sdk as airlock
from airlock_sdk import log, secrets


@airlock.step
def run(input):
    token = secrets.get("TOKEN").reveal()
    print(f"stdout sees the token: {token}")
    log.info(f"the log sees the token: {token}")
    return {"token": token}
