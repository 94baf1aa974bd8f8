"""Lists the repositories of the run user's connected GitHub account.

The host inserts the account's token; the step never sees it.
"""

import airlock_sdk as airlock
from airlock_sdk import http, log


@airlock.step
def run(input):
    limit = min(int(input.get("limit") or 30), 100)
    response = (
        http.get(f"/user/repos?per_page={limit}&sort=updated")
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .account("github")
        .send()
    )
    if response.status != 200:
        raise airlock.Error(
            f"GitHub answered {response.status}",
            code="upstream_error",
            details={"body": response.text()},
        )
    repos = response.json()
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
