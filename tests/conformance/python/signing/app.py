"""Conformance case `signing`."""

import airlock_sdk as airlock
from airlock_sdk import http, secrets


def between(text, start):
    if start not in text:
        return ""
    return text.split(start, 1)[1].split(",", 1)[0]


def sigv4_parts(auth):
    parts = between(auth, "Credential=").split("/")
    return {
        "algorithm": auth.split(" ", 1)[0],
        "key_id": parts[0],
        "scope": "/".join(parts[2:]),
        "signed_headers": between(auth, "SignedHeaders="),
        "signature_length": len(between(auth, "Signature=")),
    }


@airlock.step
def run(input):
    url = input["url"]
    key = secrets.get("AWS_KEY")
    signed = (
        http.post(f"{url}/upload?b=2&a=1")
        .header("x-conformance", "yes")
        .json({"name": "widget"})
        .aws_sigv4("AKIDEXAMPLE", key, "us-east-1", "s3")
        .send()
    )
    echo = signed.json()
    sigv4 = sigv4_parts(echo["authorization"] or "")
    sigv4["status"] = signed.status
    for field in ("method", "path", "query"):
        sigv4[field] = echo[field]
    pw = secrets.get("DIGEST_PW")
    digest = http.get(f"{url}/legacy").digest("user", pw).send()
    try:
        (
            http.get(url)
            .header("x-amz-date", "20150830T123600Z")
            .aws_sigv4("AKIDEXAMPLE", key, "us-east-1", "s3")
            .send()
        )
        reserved = "sent"
    except http.HttpError as e:
        reserved = e.kind
    return {
        "sigv4": sigv4,
        "digest": {"status": digest.status, "authorization": digest.json()["authorization"]},
        "reserved": reserved,
    }
