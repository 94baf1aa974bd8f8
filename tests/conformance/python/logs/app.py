"""Conformance case `logs`."""

import sys

import airlock_sdk as airlock
from airlock_sdk import log


@airlock.step
def run(input):
    log.trace("one")
    log.debug("two")
    log.info("three")
    log.warn("four")
    log.error("five")
    print("six", flush=True)
    print("seven", file=sys.stderr, flush=True)
    return None
