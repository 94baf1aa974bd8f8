"""Lists the repositories of the run user's connected GitHub account with
the standard library's ``urllib.request``, no Airlock HTTP API.

``airlock_sdk`` puts ``urllib.request`` on ``wasi:http`` (a step has no
sockets). The header ``x-airlock-account: github`` names the credential and
the host ``github.airlock.internal`` means "relative to the GitHub app's
base URL". The host removes the header, inserts the account's token and
masks it out of the response; the step never holds it.
"""

import json
import urllib.error
import urllib.request

import airlock_sdk as airlock
from airlock_sdk import log


@airlock.step
def run(input):
    limit = min(int(input.get("limit") or 30), 100)
    req = urllib.request.Request(
        f"https://github.airlock.internal/user/repos?per_page={limit}&sort=updated",
        headers={
            "x-airlock-account": "github",
            "accept": "application/vnd.github+json",
            "x-github-api-version": "2022-11-28",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            repos = json.load(response)
    except urllib.error.HTTPError as e:
        raise airlock.Error(
            f"GitHub answered {e.code}",
            code="upstream_error",
            details={"body": e.read().decode("utf-8", "replace")},
        )
    except urllib.error.URLError as e:
        # A refusal by the host (a host outside the grants, a private
        # address); the reason is also a warn line in the run's log.
        raise airlock.Error(f"calling GitHub: {e.reason}", code="http")
    log.info(f"listed {len(repos)} repositories")
    return {
        "count": len(repos),
        "repositories": [
            {
                "name": r["full_name"],
                "private": r["private"],
                "stars": r.get("stargazers_count", 0),
            }
            for r in repos
        ],
    }
