"""The soak's checks, once the run is quiet, and the summary table. Each check is a row:
PASS or FAIL with what was measured; any FAIL makes the exit status 1."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections import Counter
from typing import Any

# (check, result, detail): result True (PASS), False (FAIL) or KNOWN — a service issue
# that is reported and understood (see KNOWN_REPLY_LOSS); it fails the run only with
# SOAK_STRICT=1, so that the soak guards everything else meanwhile.
KNOWN = "known"
Row = tuple[str, object, str]

KNOWN_REPLY_LOSS = (
    "the service counts a reply as received when it hands it to the waiting request, but the "
    "`reply` frame is lost when the requester's connection ends (4008) before it is written"
)


async def wait_dashboards(soak: Any, end: float) -> Row:
    """Every dashboard reaches the log's latest seq (read once the senders stopped)."""
    head = await soak.admin.get(0, "/api/v2/events", params={"limit": 1})
    if not isinstance(head, dict):
        return ("dashboards caught up", False, "GET /api/v2/events failed")
    epoch, seq = head["epoch"], int(head["latest_seq"])
    behind = soak.dashboards
    while time.monotonic() < end:
        behind = [d for d in soak.dashboards if d.epoch != epoch or d.last < seq]
        if not behind:
            break
        await asyncio.sleep(0.3)
    ok = not behind
    detail = f"all {len(soak.dashboards)} at or past {epoch}-{seq}"
    if not ok:
        sample = ", ".join(f"#{d.idx} at {d.epoch}-{d.last} on {d.at}" for d in behind[:5])
        detail = f"{len(behind)} behind {epoch}-{seq}: {sample}"
    return ("dashboards caught up", ok, detail)


def dashboard_rows(soak: Any) -> list[Row]:
    ds = soak.dashboards
    tot: Counter[str] = Counter()
    resyncs: Counter[str] = Counter()
    bad = []
    for d in ds:
        r = d.r
        for k in ("events", "connections", "resumed", "missed", "gap_missing", "unexcused", "duplicates", "bad_epoch"):
            tot[k] += getattr(r, k)
        resyncs.update(r.resyncs)
        if r.unexcused or r.duplicates or r.bad_epoch or r.failures:
            bad.append(d)
    rows: list[Row] = [
        (
            "dashboards: no gap without missed/recovered:false",
            tot["unexcused"] == 0 and tot["bad_epoch"] == 0,
            f"{tot['events']} events over {tot['connections']} connections ({tot['resumed']} resumed with since, "
            f"resyncs {dict(resyncs) or 0}); missed announced {tot['missed']}, seqs missing {tot['gap_missing']}, "
            f"unexcused {tot['unexcused']}, epoch changes unannounced {tot['bad_epoch']}",
        ),
        ("dashboards: no duplicate", tot["duplicates"] == 0, f"{tot['duplicates']} duplicate or out-of-order events"),
        (
            "dashboards: every client received events",
            all(d.r.events > 0 for d in ds),
            f"fewest {min((d.r.events for d in ds), default=0)}, most {max((d.r.events for d in ds), default=0)}",
        ),
    ]
    for d in bad[:10]:
        rows.append((f"  client #{d.idx} (home {'ab'[d.home]})", False, "; ".join(d.r.failures)))
    with open(soak.work / "dashboards.tsv", "w") as f:
        f.write("client\thome\tevents\tconnections\tresumed\tresyncs\tmissed\tgap_missing\tunexcused\tduplicates\n")
        for d in ds:
            r = d.r
            f.write(
                f"{d.idx}\t{'ab'[d.home]}\t{r.events}\t{r.connections}\t{r.resumed}\t{sum(r.resyncs.values())}\t"
                f"{r.missed}\t{r.gap_missing}\t{r.unexcused}\t{r.duplicates}\n"
            )
    return rows


async def module_accounts(soak: Any, end: float) -> dict[str, list[dict[str, Any]]]:
    """Each module's `messages` from every instance that knows it, once `waiting` is 0 and
    two reads a second apart agree (bounded by `end`)."""
    last: dict[str, list[dict[str, Any]]] = {}
    while time.monotonic() < end:
        now: dict[str, list[dict[str, Any]]] = {}
        for m in soak.modules:
            now[m.name] = []
            for i in soak.bus_hosts():
                st = await soak.admin.get(i, f"/api/v2/modules/{m.name}")
                now[m.name].append(st.get("messages", {}) if isinstance(st, dict) else {})
        await soak.admin.poll_dead_letters(soak.bus_hosts())
        quiet = all(a.get("waiting") == 0 for accts in now.values() for a in accts)
        if quiet and now == last:
            return now
        last = now
        await asyncio.sleep(1.0)
    return last


def module_rows(soak: Any, accounts: dict[str, list[dict[str, Any]]]) -> list[Row]:
    rows: list[Row] = []
    led = {m.name: m.led for m in soak.modules}
    http = soak.admin.http_bus
    dead_polled = Counter(mod for mod, _reason in soak.admin.dead.values())
    for m in soak.modules:
        accts = accounts.get(m.name) or [{}]
        a = accts[0]
        if any(x != a for x in accts[1:]):
            rows.append((f"module {m.name}: same account on every instance", False, f"{accts}"))
        sent, recv = a.get("sent", -1), a.get("received", -1)
        refused, dead, waiting = a.get("refused", -1), a.get("dead_lettered", -1), a.get("waiting", -1)
        balanced = sent == recv + refused + dead + waiting and waiting == 0
        rows.append(
            (
                f"module {m.name}: sent = received + refused + dead_lettered + waiting",
                balanced,
                f"{sent} = {recv} + {refused} + {dead} + {waiting}",
            )
        )
        mine = m.led
        unique = len(mine.got)
        twice = sum(1 for n in mine.got.values() if n > 1)
        peer = led[m.peer]
        acc_ids = set(peer.accepted.get(m.name, set())) | http.accepted.get(m.name, set())
        lost = [i for i in acc_ids if i not in mine.got and soak.admin.dead.get(i, ("", ""))[0] != m.name]
        # Replies to its own requests that were pending when a connection of its ended.
        lost_replies = [i for i in lost if i in peer.replies]
        replies_explain = 0 < len(lost_replies) <= mine.requests["unknown"]
        known_loss = replies_explain and len(lost_replies) == len(lost)
        same = unique == recv
        rows.append(
            (
                f"module {m.name}: what it received is the service's received",
                True if same else (KNOWN if replies_explain and recv - unique == len(lost_replies) else False),
                f"{unique} distinct message ids on its sockets, service says {recv}"
                + ("" if same else f" ({recv - unique} fewer: {len(lost_replies)} replies to its requests)"),
            )
        )
        redelivery_ok = soak.placement == "split" and soak.kills > 0
        rows.append(
            (
                f"module {m.name}: no message id twice",
                twice == 0 or redelivery_ok,
                f"{twice} ids twice" + (" (redelivery after an instance SIGKILL: at least once)" if twice else ""),
            )
        )
        known = len(acc_ids) + peer.unnamed[m.name] + peer.refused[m.name] + http.refused[m.name]
        unknown = peer.unknown[m.name] + http.unknown[m.name]
        rows.append(
            (
                f"module {m.name}: senders' count agrees with sent",
                known <= sent <= known + unknown,
                f"senders know of {known} (accepted {len(acc_ids) + peer.unnamed[m.name]}, refused "
                f"{peer.refused[m.name] + http.refused[m.name]}), {unknown} unanswered; service: sent {sent}",
            )
        )
        complete = dead_polled[m.name] >= dead
        detail = f"{len(acc_ids)} accepted with their ids: {len(acc_ids) - len(lost)} received or dead-lettered"
        if lost:
            t0 = soak.t0
            when = sorted(round(peer.accepted_at[i] - t0, 1) for i in lost if i in peer.accepted_at)
            spans = ", ".join(f"{a - t0:.1f}-{b - t0:.1f} s on {w} ({c})" for a, b, w, c in mine.spans)
            detail += (
                f", {len(lost)} neither ({len(lost_replies)} of them replies to its requests; accepted at "
                f"{when[:6]} s; its connections that ended: {spans or 'none'})"
            )
            if known_loss:
                detail += f" — KNOWN: {KNOWN_REPLY_LOSS}"
        if not complete:
            detail += f" (dead letters seen {dead_polled[m.name]} of {dead}: not all listed)"
        rows.append(
            (
                f"module {m.name}: every accepted message received or dead-lettered",
                True if not lost or not complete else (KNOWN if known_loss else False),
                detail,
            )
        )
        reasons = Counter(r for mod, r in soak.admin.dead.values() if mod == m.name)
        rows.append(
            (
                f"module {m.name}: traffic",
                True,
                f"connections {mine.connections} (closes {dict(mine.closes)}), requests {dict(mine.requests)}, "
                f"refusals {dict(mine.refusals)}, errors {dict(mine.errors) or 0}, dead letters {dict(reasons) or 0}",
            )
        )
    return rows


async def audit_rows(soak: Any, end: float) -> list[Row]:
    records, problem = await soak.admin.audit_records(0, end)
    if problem:
        return [("audit trail holds every action", False, problem)]
    missing, _ = soak.admin.missing_in(records)
    by = Counter(f"{a.via}:{a.action}" for a in soak.admin.made)
    detail = f"{len(soak.admin.made)} actions ({dict(by)}), {len(records)} records read"
    if soak.admin.unanswered:
        detail += f"; {sum(soak.admin.unanswered.values())} unanswered (not required)"
    if missing:
        kills = [t for t, msg in soak.timeline if "instance b SIGKILLed" in msg]
        ex = "; ".join(
            f"{a.via} {a.action} {a.outcome} on {a.inst} corr {a.corr}"
            + (f" ({min(abs(a.at - soak.t0 - k) for k in kills):.1f} s from a kill of b)" if kills else "")
            for a in missing[:5]
        )
        detail += f"; MISSING {len(missing)}: {ex}"
    return [("audit trail holds every action", not missing, detail)]


def resource_rows(soak: Any) -> list[Row]:
    """The survivor (`a`, never killed): RSS, fds and threads in the final window within
    10 % of the window after warm-up (medians of the 2 s samples). `b` is shown, not
    checked: it was killed, and its clients came back only at the end."""
    rows: list[Row] = []
    with open(soak.work / "resources.tsv", "w") as f:
        f.write("instance\tt_s\trss_kb\tthreads\tfds\theap_kb\n")
        for name in ("a", "b"):
            for t, rss, thr, fds, heap in soak.samples[name]:
                f.write(f"{name}\t{t - soak.t0:.1f}\t{rss}\t{thr}\t{fds}\t{heap}\n")
    for name in ("a", "b"):
        started = soak.started_at.get(name, soak.t0) - soak.t0
        samples = [(t - soak.t0, *rest) for t, *rest in soak.samples[name] if t - soak.t0 >= started]
        base = [s for s in samples if soak.baseline_from <= s[0] < soak.baseline_from + soak.window]
        final = [s for s in samples if soak.final_from <= s[0] <= soak.final_from + soak.window]
        checked = name == "a"
        title = f"instance {name}: RSS, fds, threads flat (±10 %)" if checked else "instance b (killed): resources"
        if not final or (checked and not base):
            rows.append((title, not checked, "no samples"))
            continue
        if not base:
            base = samples[:3]
        parts, ok = [], True
        for k, label in ((1, "RSS kB"), (3, "fds"), (2, "threads")):
            b = statistics.median(s[k] for s in base)
            f = statistics.median(s[k] for s in final)
            within = abs(f - b) <= 0.10 * b
            ok &= within
            parts.append(
                f"{label} {b:.0f} -> {f:.0f} ({(f - b) / b * 100:+.1f} %)" + ("" if within or not checked else " OUT")
            )
        peak = max(s[1] for s in samples)
        hb, hf = statistics.median(s[4] for s in base), statistics.median(s[4] for s in final)
        if hb > 0:
            parts.append(f"heap kB {hb:.0f} -> {hf:.0f} ({(hf - hb) / hb * 100:+.1f} %, shown)")
        note = "" if checked else f" (not checked: restarted at {started:.0f} s)"
        rows.append(
            (
                title,
                ok or not checked,
                f"{'; '.join(parts)}; peak RSS {peak} kB; windows {base[0][0]:.0f}-{base[-1][0]:.0f} s and "
                f"{final[0][0]:.0f}-{final[-1][0]:.0f} s{note}",
            )
        )
    return rows


async def finish(soak: Any, hard: float) -> int:
    for m in soak.modules:
        await m.settle(10)
    rows: list[Row] = []
    rows.append(await wait_dashboards(soak, min(hard, time.monotonic() + 30)))
    rows += dashboard_rows(soak)
    accounts = await module_accounts(soak, min(hard, time.monotonic() + 30))
    rows += module_rows(soak, accounts)
    rows += await audit_rows(soak, min(hard, time.monotonic() + 30))
    rows += resource_rows(soak)
    for f, n in Counter(soak.failures).items():
        rows.append(("during the run", False, f + (f" ({n} times)" if n > 1 else "")))
    print_table(soak, rows)
    strict = os.environ.get("SOAK_STRICT") == "1"
    return 0 if all(ok is True or (ok == KNOWN and not strict) for _, ok, _ in rows) else 1


def print_table(soak: Any, rows: list[Row]) -> None:
    w = max(len(n) for n, _, _ in rows)
    print()
    print(f"soak summary: {soak.minutes:g} min, binary {soak.binary}, modules {soak.placement}, ", end="")
    print(f"{soak.n_clients} dashboards, stand-in activity {soak.activity:g}/s")
    print("timeline:")
    for t, msg in soak.timeline:
        print(f"  {t:7.1f} s  {msg}")
    print(f"{'check':<{w}}  result  detail")
    print(f"{'-' * w}  ------  {'-' * 40}")
    for name, ok, detail in rows:
        print(f"{name:<{w}}  {'PASS' if ok is True else 'KNOWN' if ok == KNOWN else 'FAIL':<6}  {detail}")
    failed = sum(1 for _, ok, _ in rows if ok is not True and ok != KNOWN)
    known = sum(1 for _, ok, _ in rows if ok == KNOWN)
    if known:
        print(f"soak: {known} KNOWN (service issues reported, not failures unless SOAK_STRICT=1)")
    print(f"soak: {len(rows)} checks, {failed} FAILED" if failed else f"soak: all {len(rows)} checks hold")
