#!/usr/bin/env python3
"""The goals table of issue 13 from scripts/bench-peers.sh's raw windows.

    report.py WINDOWS.tsv [HYPERFINE.json]...

WINDOWS.tsv has one line per wrk window:
    path  c  side  round  req/s  p50_us  p99_us  cpu_us_per_request  requests  non2xx  errors
where side is `airlock` or `peer`. Each cell of the table is the median
over the rounds with the spread (min–max) beside it; a ratio is Airlock's
median over the peer's. A spread wider than 20 % of the median is flagged
with `!`: rerun that row (more rounds, a quieter machine) before trusting it.
Each hyperfine JSON holds one round of `airlock run` (first command) against
`wasmtime run` (second); the ratio is of the median means.
"""

import json
import statistics
import sys
from collections import defaultdict

# path -> (peer, {c: req/s goal}, cpu goal, p99 goal at c=64)
GOALS = {
    "trigger": ("wasmtime serve", {64: 1.0, 1: 1.0}, 1.2, 2.0),
    "runs API": ("wasmtime serve", {64: 1.0, 1: 1.0}, 1.2, 2.0),
    "trigger, PostgreSQL": ("wasmtime serve", {64: 1.0, 1: 1.0}, 1.2, 2.0),
    "proxy": ("nginx", {64: 0.7}, None, None),
}


def spread(values, fmt):
    """`median (min–max)`, flagged ` !` when the spread passes 20 % of the median."""
    m = statistics.median(values)
    wide = m and (max(values) - min(values)) / m > 0.2
    return m, f"{fmt(m, values)}{' !' if wide else ''}"


def rate(m, values):
    return f"{m:,.0f} ({min(values):,.0f}–{max(values):,.0f})"


def micros(m, values):
    """Microseconds, shown in the median's unit: `1.04 (0.98–1.10) ms`."""
    div, unit, digits = (1000, "ms", 2) if m >= 1000 else (1, "µs", 0)
    f = lambda v: f"{v / div:.{digits}f}"  # noqa: E731
    return f"{f(m)} ({f(min(values))}–{f(max(values))}) {unit}"


def ratio(a, b, goal, higher_is_better):
    if not b:
        return "—"
    r = a / b
    if goal is None:
        return f"{r:.2f}"
    met = r >= goal if higher_is_better else r <= goal
    sign = "≥" if higher_is_better else "≤"
    return f"**{r:.2f}** ({sign} {goal}: {'met' if met else 'not met'})"


def windows_table(path):
    cells = defaultdict(lambda: defaultdict(list))
    bad = defaultdict(int)
    order = []
    with open(path) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            p, c, side, _round, rps, p50, p99, cpu, _reqs, non2xx, errors = fields
            key = (p, int(c))
            if key not in order:
                order.append(key)
            for name, v in (("rps", rps), ("p50", p50), ("p99", p99), ("cpu", cpu)):
                cells[(key, side)][name].append(float(v))
            bad[(key, side, "non-2xx answers")] += int(non2xx)
            bad[(key, side, "socket errors or timeouts (> 2 s)")] += int(errors)
    rows = [k for k in order if cells[(k, "airlock")] and cells[(k, "peer")]]

    # The goals: one ratio of medians per goal, the goal beside it.
    print(
        "| path | c | peer | Airlock req/s | peer req/s | req/s ratio (goal) "
        "| p99 ratio (goal) | CPU/request ratio (goal) |"
    )
    print("| --- " * 8 + "|")
    med = lambda key, side, m: statistics.median(cells[(key, side)][m])  # noqa: E731
    for key in rows:
        p, c = key
        peer, rps_goals, cpu_goal, p99_goal = GOALS[p]
        r = {m: (med(key, "airlock", m), med(key, "peer", m)) for m in ("rps", "p99", "cpu")}
        print(
            f"| {p} | {c} | {peer} | {r['rps'][0]:,.0f} | {r['rps'][1]:,.0f} "
            f"| {ratio(*r['rps'], rps_goals.get(c), True)} "
            f"| {ratio(*r['p99'], p99_goal if c == 64 else None, False)} "
            f"| {ratio(*r['cpu'], cpu_goal, False)} |"
        )

    # What the ratios come from: medians with their spread.
    print()
    print("| path | c | side | req/s | p50 | p99 | server CPU/request |")
    print("| --- " * 7 + "|")
    for key in rows:
        p, c = key
        for side in ("airlock", "peer"):
            v = cells[(key, side)]
            name = "Airlock" if side == "airlock" else GOALS[p][0]
            print(
                f"| {p} | {c} | {name} | {spread(v['rps'], rate)[1]} | {spread(v['p50'], micros)[1]} "
                f"| {spread(v['p99'], micros)[1]} | {spread(v['cpu'], micros)[1]} |"
            )
    for (key, side, what), n in bad.items():
        if n:
            print(f"\nwarning: {key[0]} c={key[1]} {side}: {n} {what} over all rounds")
    for c in (64, 1):
        sq, pg = ("trigger", c), ("trigger, PostgreSQL", c)
        if sq in rows and pg in rows:
            print(
                f"\ntrigger on PostgreSQL / on SQLite at c={c}: req/s "
                f"{med(pg, 'airlock', 'rps') / med(sq, 'airlock', 'rps'):.2f}, CPU/request "
                f"{med(pg, 'airlock', 'cpu') / med(sq, 'airlock', 'cpu'):.2f}"
            )


def hyperfine_table(paths):
    means = [[], []]
    for path in paths:
        with open(path) as f:
            results = json.load(f)["results"]
        for i in (0, 1):
            means[i].append(results[i]["mean"] * 1000)
    ms = lambda m, vs: f"{m:.2f} ({min(vs):.2f}–{max(vs):.2f}) ms"  # noqa: E731
    a, a_s = spread(means[0], ms)
    b, b_s = spread(means[1], ms)
    print(
        "\n| command | mean, median of rounds (min–max) |\n| --- | --- |\n"
        f"| `airlock run` of a cached hello | {a_s} |\n"
        f"| `wasmtime run --allow-precompiled` of hello-cli.cwasm | {b_s} |\n"
        f"| **ratio** | {ratio(a, b, 1.2, False)} |"
    )


if __name__ == "__main__":
    windows_table(sys.argv[1])
    if len(sys.argv) > 2:
        hyperfine_table(sys.argv[2:])
