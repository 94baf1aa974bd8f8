"""Conformance case `hmac`."""

import airlock_sdk as airlock
from airlock_sdk import crypto, secrets


@airlock.step
def run(input):
    key = secrets.get("SIGNING_KEY")
    data = input["payload"]
    return {
        "sha256": crypto.to_hex(crypto.hmac_sha256(key, data)),
        "sha512": crypto.to_hex(crypto.hmac_sha512(key, data)),
        "sha1": crypto.to_hex(crypto.hmac_sha1(key, data)),
    }
