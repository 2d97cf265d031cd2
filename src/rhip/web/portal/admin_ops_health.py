"""Platform health (平台运行): what was written, by which institution and door, what was refused, and the
queues, over the last hour or day — counts only (administrators and statisticians).

The numbers come from the database (:func:`rhip.bootstrap.activity.platform_activity`: one bounded
aggregate over the window's resource versions, the newest rejects and the outbox cursors).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rhip.bootstrap.activity import Activity, WriteCounts, platform_activity
from rhip.security.principal import Role
from rhip.web.portal.core import Portal, guarded
from rhip.web.portal.nav import PREFIX

PAGE = "/admin/health"
ZONE = ZoneInfo("Asia/Shanghai")
MINUTE_US = 60_000_000
# window -> (length, bucket) in microseconds
WINDOWS = {"hour": (60 * MINUTE_US, MINUTE_US), "day": (24 * 60 * MINUTE_US, 30 * MINUTE_US)}
TOP = 8  # institutions drawn one by one; the rest together


def routes(portal: Portal) -> list[Route]:
    """The platform health page's route."""
    writes = WriteCounts()  # settled buckets, kept between requests

    async def health(request: Request) -> Response:
        """Writes per minute by institution and channel, refusals and queue depths, with charts."""
        viewer = await portal.signed_in(request)
        portal.require(viewer, Role.ADMIN, Role.STATISTICIAN)
        window = request.query_params.get("window", "hour")
        if window not in WINDOWS:
            window = "hour"
        length, bucket = WINDOWS[window]
        until = (time.time_ns() // 1000 // bucket + 1) * bucket  # whole buckets, the current one last
        since = until - length
        activity = await portal.run(
            viewer, lambda: platform_activity(portal.current().db, since, until, bucket, writes)
        )
        t = lambda key: portal.messages.text(key, viewer.lang)  # noqa: E731
        return portal.page(
            viewer,
            "admin_ops/health.html",
            active=PAGE,
            here=request.url.path,
            charts=True,
            window=window,
            per=bucket // MINUTE_US,
            since_us=since,
            until_us=until,
            since=_clock(since),
            until=_clock(until),
            **summary(activity, t),
        )

    return [Route(PREFIX + PAGE, guarded(portal, health))]


def summary(a: Activity, t: Any) -> dict[str, Any]:
    """The page's table, totals and figures from the window's counts (``t``: the viewer's words)."""
    short = a.bucket_us < 30 * MINUTE_US  # an hour in minutes: the time of day is enough
    labels = [_clock(a.since_us + i * a.bucket_us, short=short) for i in range(a.buckets)]
    per_minute = a.bucket_us / MINUTE_US
    by_inst: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    series: dict[str, list[int]] = {}
    channels: dict[str, list[int]] = {}
    for (b, inst, channel), (count, msgs) in a.writes.items():
        by_inst[inst] += count
        messages[inst] += msgs
        if 0 <= b < a.buckets:
            series.setdefault(inst, [0] * a.buckets)[b] += count
            channels.setdefault(channel or "", [0] * a.buckets)[b] += msgs or 0
    no_source = t("ops.health.no_source")
    rows = [
        {
            "institution": inst or no_source,
            "resources": n,
            "messages": messages[inst],
            "refusals": a.refusals_by_sender.get(inst, 0) if inst else 0,
            "rate": round(n / (a.buckets * per_minute), 2),
        }
        for inst, n in by_inst.most_common()
    ]
    for sender, n in a.refusals_by_sender.items():
        if sender not in by_inst:
            rows.append({"institution": sender, "resources": 0, "messages": 0, "refusals": n, "rate": 0.0})
    top = [inst for inst, _ in by_inst.most_common(TOP)]
    traces = [_bar(labels, series[i], i or no_source) for i in top]
    rest = [sum(v[k] for inst, v in series.items() if inst not in top) for k in range(a.buckets)]
    if any(rest):
        traces.append(_bar(labels, rest, t("ops.health.other")))
    door_traces = [
        _line(labels, v, channel or no_source) for channel, v in sorted(channels.items()) if any(v)
    ]
    refused: dict[str, list[int]] = {}
    for (b, channel), n in a.refusals.items():
        if 0 <= b < a.buckets:
            refused.setdefault(channel, [0] * a.buckets)[b] += n
    door_traces += [
        _line(labels, v, f"{t('ops.health.refused')} {c}", dash=True) for c, v in sorted(refused.items())
    ]
    queues = {**{f"{t('ops.health.open_rejects')} {c}": n for c, n in sorted(a.open_rejects.items())}}
    queues.update({f"{t('ops.health.outbox')} {c}": n for c, n in sorted(a.backlog.items())})
    unit = t("ops.health.per_bucket")
    return {
        "rows": rows,
        "totals": {
            "resources": sum(by_inst.values()),
            "messages": sum(messages.values()),
            "refusals": sum(a.refusals.values()),
            "open_rejects": sum(a.open_rejects.values()),
            "backlog": max(a.backlog.values(), default=0),
        },
        "queues": queues,
        "figures": {
            "writes": _figure(traces, unit, stacked=True),
            "doors": _figure(door_traces, unit),
            "queues": _figure(
                [{"type": "bar", "x": list(queues), "y": list(queues.values()), "name": unit}], ""
            ),
        },
    }


def _clock(us: int, *, short: bool = False) -> str:
    return datetime.fromtimestamp(us / 1_000_000, ZONE).strftime("%H:%M" if short else "%m-%d %H:%M")


def _bar(x: list[str], y: list[int], name: str) -> dict[str, Any]:
    return {"type": "bar", "x": x, "y": y, "name": name}


def _line(x: list[str], y: list[int], name: str, *, dash: bool = False) -> dict[str, Any]:
    trace: dict[str, Any] = {"type": "scatter", "mode": "lines", "x": x, "y": y, "name": name}
    if dash:
        trace["line"] = {"dash": "dot"}
    return trace


def _figure(data: list[dict[str, Any]], unit: str, *, stacked: bool = False) -> dict[str, Any]:
    layout: dict[str, Any] = {"yaxis": {"title": {"text": unit}, "rangemode": "tozero"}, "height": 300}
    if stacked:
        layout["barmode"] = "stack"
    layout["legend"] = {"orientation": "h"}
    layout["xaxis"] = {"nticks": 12, "type": "category"}
    return {"data": data, "layout": layout}
