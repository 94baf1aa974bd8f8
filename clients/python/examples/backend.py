"""An operator's backend with the Python client: a connect link for an end
user, their accounts, a proxy call as them, and a run with its log.

    AIRLOCK_SERVER=http://127.0.0.1:8080 AIRLOCK_CLIENT_ID=oc_… AIRLOCK_CLIENT_SECRET=cs_… \\
      python examples/backend.py alpha user-123 https://api.github.com/user hello
"""

import os
import sys

from airlock_client import Client, ClientCredentials, LogLine


def main(project: str, user: str, url: str, step: str) -> None:
    # OAuth client credentials: the token is fetched and refreshed by the client.
    creds = ClientCredentials(os.environ["AIRLOCK_CLIENT_ID"], os.environ["AIRLOCK_CLIENT_SECRET"])
    with Client(os.environ["AIRLOCK_SERVER"], client_credentials=creds) as airlock:
        # 1. A connect token: send the end user to its link.
        token = airlock.create_connect_token(project, user)
        print(f"connect link: {token.connect_link_url}")

        # 2. The end user's accounts.
        accounts = airlock.list_accounts(project, external_user_id=user)
        for a in accounts:
            print(f"account {a.id} ({a.app}, {a.health.value})")

        # 3. The proxy as that user, with their first account: a plain URL.
        if accounts:
            answer = airlock.proxy(project, url, external_user_id=user, account_id=accounts[0].id)
            print(f"proxy: {answer.status} {answer.text}")

        # 4. A run, and its log as it is written.
        queued = airlock.queue_run(project, step, {"name": user})
        for event in airlock.stream_logs(project, queued.id):
            if isinstance(event, LogLine):
                print(f"{event.elapsed_ms:>6}ms {event.text}")
            else:
                print(f"run {queued.id} {event.status}")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage: backend.py PROJECT EXTERNAL_USER_ID PROXY_URL STEP")
    main(*sys.argv[1:])
