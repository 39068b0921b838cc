"""make bench-pages: the resident's poll page and the staff results page against the bare
static file, in the same run, and what the resident's first page costs to load.

The whole system runs as ``make run`` starts it (every service of deploy/Procfile as its own
process, here on free ports against fresh databases and a fresh vhost), seeded with Utrecht's
111 buurten, a resident and an open poll (the veiligheidsgevoel template, every question type).
A client on loopback then asks, one request at a time (PAGES_N, default 300 each):

- the bare static file: ``/static/<digest>/css/app.css`` — the gateway's floor for a page;
- the resident's poll page: session cookie, the poll from the gateway's cache, the form;
- the staff results page of an open poll (veiligheidsgevoel) with PAGES_RESULTS_N responses
  (default 100,000; bench-results' seeding — spread over Utrecht's 111 buurten by population,
  COPY into responses' tables — so ``PAGES_RESULTS_N=1000000`` is Utrecht at bench-results'
  size): the gemeente's chart and table, the wijk chart, the buurt map of 111 buurten, as an
  admin signed in by cookie. The results document is cached by responses between changes, so
  this is the page's own cost over a warm results route.

It prints the p50/p95 time per request as the client sees it (on loopback: the server's time
plus a loopback round trip) and the bytes sent; and the resident's first page (the start page,
before joining) with every CSS and JS file and icon it loads, as compressed on the wire,
against the budget of 100 KB.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import bench_results  # noqa: E402
from services.common import migrate  # noqa: E402
from tests.browser.system import UTRECHT, start_system  # noqa: E402
from tests.browser.world import join, open_poll, until  # noqa: E402
from tests.support import infra  # noqa: E402

# The system runs with the development secrets (as the browser tests' does): say so, or the
# services refuse to start.
os.environ.setdefault("BUURTPEIL_ENV", "development")
N = int(os.environ.get("PAGES_N", "300"))
RESULTS_N = int(os.environ.get("PAGES_RESULTS_N", "100000"))
BUDGET = 100 * 1024


def timed(session: requests.Session, url: str, n: int) -> tuple[list[float], int]:
    times, size = [], 0
    for _ in range(n):
        started = time.perf_counter()
        response = session.get(url, headers={"Accept-Encoding": "gzip"}, stream=True, timeout=30)
        body = response.raw.read(decode_content=False)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        size = len(body)
    return times, size


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def wire_size(session: requests.Session, url: str) -> int:
    response = session.get(url, headers={"Accept-Encoding": "gzip"}, stream=True, timeout=30)
    assert response.status_code == 200, url
    return len(response.raw.read(decode_content=False))


def first_page(base: str) -> tuple[int, list[tuple[str, int]]]:
    """The start page and everything it loads, compressed as sent."""
    session = requests.Session()
    html = wire_size(session, f"{base}/app/{UTRECHT}/")
    page = session.get(f"{base}/app/{UTRECHT}/").text
    parts = [("HTML", html)]
    loads = re.findall(r'<(?:link|script|img)[^>]*(?:href|src)="(/[^"]+)"', page)
    for url in dict.fromkeys(loads):  # each once, in order; <a> links are not loaded
        parts.append((url.rsplit("/", 1)[-1], wire_size(session, base + url)))
    return sum(size for _, size in parts), parts


def seed_responses(system, responses_url: str, poll_id: str, n: int) -> float:
    """``n`` responses to the open poll, stored as intake stores them (bench-results' seeding),
    then the poll's results version bumped so the next read computes them. Seconds taken."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    started = time.perf_counter()
    admin = system.admin(UTRECHT)
    results_url = f"/admin/v1/polls/{poll_id}/results"
    until(
        "responses to know the poll",
        lambda: system.api.request("GET", results_url, token=admin).status_code == 200,
    )
    records, _ = bench_results.areas()
    engine = sa.create_engine(responses_url)
    try:
        rows = bench_results.respondents(n, records, bench_results.definition(), 20261206)
        bench_results.copy_responses(engine, uuid.UUID(poll_id), rows)
        with Session(engine) as session, session.begin():
            bench_results.seed_counters(session, uuid.UUID(poll_id))
            session.execute(
                sa.text("UPDATE polls SET results_version = results_version + 1 WHERE id = :p"),
                {"p": poll_id},
            )
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE"))
    finally:
        engine.dispose()
    return time.perf_counter() - started


def main() -> int:
    run = f"bench_pages_{uuid.uuid4().hex[:6]}"
    urls = {s: f"{infra.PG_BASE}/bp_test_{run}_{s}" for s in migrate.SERVICES_WITH_DATABASE}
    vhost = f"bp_{run}"
    system = None
    try:
        for service, url in urls.items():
            migrate.upgrade(service, url, create=True)
        amqp = infra.create_vhost(vhost)
        # One resident asks for far more pages than a person would: lift the per-token limit.
        system = start_system(
            urls,
            amqp,
            Path(tempfile.mkdtemp(prefix="bench-pages-")),
            RATE_TOKEN="1000000/min burst 100000",
        )
        resident = join(system, UTRECHT, "BU03440111")
        poll_id = open_poll(system, UTRECHT)
        session = requests.Session()
        session.cookies.set("bp_resident_access", resident["access_token"])
        poll_url = f"{system.base}/app/{UTRECHT}/peilingen/{poll_id}"
        until("the poll in the gateway's cache", lambda: session.get(poll_url).status_code == 200)
        results_poll = open_poll(system, UTRECHT)
        seeding = seed_responses(system, urls["responses"], results_poll, RESULTS_N)
        staff = requests.Session()
        staff.cookies.set("bp_staff_access", system.api.staff_token(UTRECHT, "admin", ttl=900))
        results_url = f"{system.base}/staff/peilingen/{results_poll}/resultaten"
        shown = staff.get(results_url, timeout=120)
        assert shown.status_code == 200 and "map-buurten" in shown.text, shown.text[:500]
        start = session.get(f"{system.base}/app/{UTRECHT}/").text
        static = re.search(r'href="(/static/\w+/css/app.css)"', start).group(1)
        timed(session, system.base + static, 20)  # warm both paths
        timed(session, poll_url, 20)
        bare, bare_size = timed(session, system.base + static, N)
        poll, poll_size = timed(session, poll_url, N)
        timed(staff, results_url, 10)
        bare_again, _ = timed(session, system.base + static, N)
        staff_results, results_size = timed(staff, results_url, N)
        # What the page reads through the results route, alone: the rest is the page's own.
        route = requests.Session()
        route.headers["Authorization"] = "Bearer " + staff.cookies["bp_staff_access"]
        results_json, json_size = timed(
            route, f"{system.base}/admin/v1/polls/{results_poll}/results", N
        )
        total, parts = first_page(system.base)
        print(
            f"bench-pages: {N} sequential requests each, loopback client (busy machines: "
            "compare the two lines of one run, not runs)"
        )
        print(
            f"  bare static file (app.css)  p50 {percentile(bare, 50):6.1f} ms  "
            f"p95 {percentile(bare, 95):6.1f} ms  {bare_size:,} bytes sent (gzip)"
        )
        print(
            f"  resident poll page          p50 {percentile(poll, 50):6.1f} ms  "
            f"p95 {percentile(poll, 95):6.1f} ms  {poll_size:,} bytes sent (HTML)"
        )
        ratio = percentile(poll, 95) / percentile(bare, 95)
        print(f"  ratio poll page / static file at p95: {ratio:.1f}")
        print(
            f"  bare static file, again     p50 {percentile(bare_again, 50):6.1f} ms  "
            f"p95 {percentile(bare_again, 95):6.1f} ms  (just before the results page)"
        )
        print(
            f"  staff results page          p50 {percentile(staff_results, 50):6.1f} ms  "
            f"p95 {percentile(staff_results, 95):6.1f} ms  {results_size:,} bytes sent (HTML), "
            f"{RESULTS_N:,} responses in 111 buurten (seeded in {seeding:.0f} s)"
        )
        print(
            f"  its results route (JSON)    p50 {percentile(results_json, 50):6.1f} ms  "
            f"p95 {percentile(results_json, 95):6.1f} ms  {json_size:,} bytes sent"
        )
        ratio = percentile(staff_results, 95) / percentile(bare_again, 95)
        print(f"  ratio results page / static file at p95: {ratio:.1f}")
        verdict = "within" if total <= BUDGET else "OVER"
        print(
            f"  resident's first page: {total / 1024:.1f} KB as sent, CSS and JS included "
            f"({verdict} the {BUDGET // 1024} KB budget): "
            + ", ".join(f"{name} {size / 1024:.1f}" for name, size in parts)
        )
        return 0 if total <= BUDGET else 1
    finally:
        if system is not None:
            system.stop()
            system.push.stop()
            system.smtp.stop()
        infra.delete_vhost(vhost)
        for url in urls.values():
            migrate.drop_database(url)


if __name__ == "__main__":
    sys.exit(main())
