"""Conformance case `context`."""

import airlock_sdk as airlock
from airlock_sdk import context


@airlock.step
def run(input):
    c = context.get()
    return {
        "run_id": c.run_id,
        "step": c.step,
        "project": c.project,
        "external_user_id": c.external_user_id,
        "trigger": c.trigger,
        "attempt": context.attempt(),
        "idempotency_key": context.idempotency_key(),
    }
