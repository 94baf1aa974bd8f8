"""Conformance case `http`."""

import airlock_sdk as airlock
from airlock_sdk import http, secrets


def kind(send):
    try:
        send()
    except http.HttpError as e:
        return e.kind
    return "sent"


@airlock.step
def run(input):
    url = input["url"]
    key = secrets.get("API_KEY")
    bearer = (
        http.post(f"{url}/items?x=1")
        .bearer(key)
        .header("x-conformance", "yes")
        .json({"name": "widget", "n": 3})
        .send()
    )
    account = http.get("/whoami").account("conformance-echo").send()
    return {
        "bearer": {
            "status": bearer.status,
            "content_type": bearer.header("content-type"),
            "echo": bearer.json(),
        },
        "account": account.json(),
        "denied": kind(http.get("https://denied.invalid/").send),
        "restricted": kind(http.get(url).header("authorization", "Bearer mine").send),
    }
