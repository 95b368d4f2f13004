"""Page-load benchmark of the web UI's trace explorer (not a test: it asserts nothing about speed).

Usage: ui_page_load.py BASE_URL EMAIL PASSWORD [REPS]

Signs in through the UI in headless Chromium, then measures, REPS times each (default 20):
  - a cold load of the explorer's list page (navigation of a fresh tab to /#/traces until the
    table's rows are visible: HTML, the ES modules, /auth/me and the list call);
  - in-app navigation to the list page (unfiltered, filtered by a model version, the next page
    through the cursor) and to a trace's page (its chain, session and similar problems), each until
    its content is visible;
  - the API calls behind those pages, timed from Python through the browser's session.
Prints a table for people on stderr and one JSON line with the medians and 95th percentiles (ms).
"""

import json
import statistics
import sys
import time

from browser import chromium

BASE, EMAIL, PASSWORD = sys.argv[1:4]
REPS = int(sys.argv[4]) if len(sys.argv) > 4 else 20
PROJECT = {"X-Feedloop-Project": "default"}


def summary(samples):
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))], 1),
        "max_ms": round(ordered[-1], 1),
        "n": len(ordered),
    }


def timed(run):
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) * 1000


def navigate(page, fragment, selector):
    """In-app navigation: from another page (the datasets list, which costs little), changes the
    fragment and waits for the new content."""
    page.evaluate("() => { location.hash = '#/datasets'; }")
    page.wait_for_selector(".page[data-page=datasets]")

    def run():
        page.evaluate("f => { location.hash = f; }", fragment)
        page.wait_for_selector(selector)

    return timed(run)


def api_call(page, path):
    def run():
        response = page.request.get(f"{BASE}/api/v1{path}", headers=PROJECT)
        assert response.ok, (path, response.status, response.text())
        response.body()

    return timed(run)


def main():
    results = {}
    with chromium() as context:
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{BASE}/")
        page.wait_for_selector("form.login")
        page.fill("input[name=email]", EMAIL)
        page.fill("input[name=password]", PASSWORD)
        page.click("form.login button[type=submit]")
        page.wait_for_selector("#who-role:text('admin')")
        first = page.request.get(f"{BASE}/api/v1/traces?limit=50", headers=PROJECT).json()
        trace = first["items"][0]
        cursor = first["next_cursor"]
        model_version = trace["model"]["version"]
        trace_id = trace["id"]
        stats = page.request.get(f"{BASE}/api/v1/stats", headers=PROJECT).json()

        cold = []
        for _ in range(REPS):
            tab = context.new_page()
            cold.append(timed(lambda: (tab.goto(f"{BASE}/#/traces"), tab.wait_for_selector("#trace-list tbody tr"))))
            tab.close()
        results["cold load, list page"] = summary(cold)

        pages = {
            "list page": ("#/traces", "#trace-list tbody tr"),
            "list page, model_version filter": (f"#/traces?model_version={model_version}", "#trace-list tbody tr"),
            "list page, next page (cursor)": (f"#/traces?cursor={cursor}", "#trace-list tbody tr"),
            "list page, filter matching nothing (full scan)": ("#/traces?model_version=no-such-version", "#main .card .notice"),
            "trace page": (f"#/traces/{trace_id}", "#trace-feedback, #trace-chain .notice"),
        }
        for name, (fragment, selector) in pages.items():
            results[name] = summary([navigate(page, fragment, selector) for _ in range(REPS)])

        calls = {
            "GET /traces?limit=50": "/traces?limit=50",
            "GET /traces?model_version=…&limit=50": f"/traces?model_version={model_version}&limit=50",
            "GET /traces?cursor=…&limit=50": f"/traces?cursor={cursor}&limit=50",
            "GET /traces?model_version=no-such-version&limit=50": "/traces?model_version=no-such-version&limit=50",
            "GET /traces?environment=staging&negative_feedback=false&limit=50": "/traces?environment=staging&negative_feedback=false&limit=50",
            "GET /traces/{id}": f"/traces/{trace_id}",
            "GET /sessions/{id}": f"/sessions/{trace['session_id']}" if trace.get("session_id") else None,
            "GET /traces/{id}/similar?k=5&problems_only=true": f"/traces/{trace_id}/similar?k=5&problems_only=true",
        }
        for name, path in calls.items():
            if path:
                try:
                    results[f"API {name}"] = summary([api_call(page, path) for _ in range(REPS)])
                except AssertionError as error:
                    results[f"API {name}"] = {"error": str(error)[:200]}
    for name, figures in results.items():
        print(f"{name:55} {figures}", file=sys.stderr)
    print(json.dumps({"traces": stats.get("traces"), "reps": REPS, "results": results}))


if __name__ == "__main__":
    main()
