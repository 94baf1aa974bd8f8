#!/usr/bin/env python3
"""N concurrent POSTs held open at once, for scripts/bench-peers.sh.

    park.py URL BODY_JSON N TIMEOUT_S [HEADER: VALUE]...

Opens N connections to URL (plain http://host:port/path on loopback), sends
one POST on each as fast as it can, and waits for every answer (at most
TIMEOUT_S seconds each, so the run always ends). Prints one JSON object:
how many got which HTTP status, how many runs the body calls `succeeded`,
whether any answer carried `Retry-After`, and how long the first and the
last caller waited. A raw asyncio client, so the only limit on how many
requests are in flight at once is N (no client pool in the way).
"""

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


async def one(host, port, request, timeout):
    started = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), timeout
        )
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            read = reader.readexactly(int(headers["content-length"]))
        else:  # `connection: close`: the body ends with the connection
            read = reader.read()
        body = await asyncio.wait_for(read, timeout)
        writer.close()
        run_status = None
        try:
            run_status = json.loads(body).get("status")
        except (ValueError, AttributeError):
            pass
        return status, run_status, "retry-after" in headers, time.monotonic() - started
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
        return f"error:{type(e).__name__}", None, False, time.monotonic() - started


async def main():
    url, body, n, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    extra = sys.argv[5:]
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    data = body.encode()
    head = [
        f"POST {path} HTTP/1.1",
        f"host: {parts.netloc}",
        "content-type: application/json",
        f"content-length: {len(data)}",
        "connection: close",
        *extra,
    ]
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + data
    results = await asyncio.gather(
        *(one(parts.hostname, parts.port, request, timeout) for _ in range(n))
    )
    statuses = {}
    for status, _, _, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    waits = sorted(r[3] for r in results)
    print(
        json.dumps(
            {
                "requests": n,
                "http_status": statuses,
                "runs_succeeded": sum(1 for r in results if r[1] == "succeeded"),
                "runs_failed": sum(1 for r in results if r[1] == "failed"),
                "retry_after_seen": sum(1 for r in results if r[2]),
                "first_answer_s": round(waits[0], 3),
                "median_wait_s": round(waits[len(waits) // 2], 3),
                "last_answer_s": round(waits[-1], 3),
                "last_status": str(max(results, key=lambda r: r[3])[0]),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
