"""A reviewer's session in the web UI, in headless Chromium against the real server.

Usage: ui_reviewer.py BASE_URL EMAIL PASSWORD QUEUE

Signs in; checks that the dashboard's charts draw what the analytics API counts; filters the
trace explorer and opens a trace's chain; in the review queue reserves the next item, selects a
text range of its output and annotates it (comment + tags), writes a correction (the diff shows),
promotes the case to a lesson; approves the lesson on the lessons page. Takes the screenshots of
the dashboard, the trace view and the review queue. Prints one JSON line with what it saw and did,
which the Rust side checks against the API.
"""

import datetime
import json
import os
import sys
import tempfile
import time
import urllib.parse

from browser import chromium, screenshot_dir

BASE, EMAIL, PASSWORD, QUEUE = sys.argv[1:5]
PROJECT = {"X-Feedloop-Project": "default"}
QUOTE = "wait 3 business days"
COMMENT = "Three days is wrong: it takes one."
CORRECTION_TAIL = "Transfers arrive within one business day."
DATASET = "reviewed_cases"


def wait_for_hash(page, part):
    """Waits until the URL's fragment holds `part` (wait_for_function would need the page to
    eval strings, which the UI's Content-Security-Policy forbids)."""
    for _ in range(400):
        if part in page.evaluate("() => location.hash"):
            return
        time.sleep(0.05)
    raise AssertionError(f"the location never got {part!r}: {page.url}")


def api(page, path):
    """GET through the browser's own session (cookie), as the UI calls the API."""
    response = page.request.get(f"{BASE}/api/v1{path}", headers=PROJECT)
    assert response.ok, f"{path}: {response.status} {response.text()}"
    return response.json()


def marks(page, selector):
    return page.eval_on_selector_all(
        f"{selector} .mark",
        "els => els.map(e => ({series: e.dataset.series, x: e.dataset.x, value: Number(e.dataset.value)}))",
    )


def dashboard(page, shots):
    page.wait_for_selector("#chart-volume svg .mark")
    page.wait_for_selector("#chart-negative svg .mark")
    # The dashboard's range: the last 14 UTC days, up to the end of today.
    today = datetime.datetime.now(datetime.timezone.utc).date() + datetime.timedelta(days=1)
    start = today - datetime.timedelta(days=14)
    query = urllib.parse.urlencode(
        {"from": f"{start}T00:00:00Z", "to": f"{today}T00:00:00Z", "bucket": "day"}
    )
    overall = api(page, f"/analytics/feedback?{query}")["buckets"]
    volume = marks(page, "#chart-volume")
    negative = marks(page, "#chart-negative")
    signals = marks(page, "#chart-signals")
    model = marks(page, "#chart-model")
    prompt = marks(page, "#chart-prompt")
    # Every volume bar is a kind's count on a day: compare per day and kind too.
    for mark in volume:
        bucket = next(b for b in overall if b["start"].startswith(mark["x"]))
        assert bucket["kinds"][mark["series"]]["count"] == mark["value"], (mark, bucket)
    for mark in negative:
        bucket = next(b for b in overall if b["start"][5:10] == mark["x"])
        assert abs(bucket["negative_traces"]["rate"]["rate"] - mark["value"]) < 1e-9, (mark, bucket)
    # The backlog bars are the queue's counts.
    counts = api(page, f"/queues/{QUEUE}/counts")
    backlog = {m["x"]: m["value"] for m in marks(page, "#chart-backlog")}
    assert backlog == {f"{QUEUE} · pending": counts["pending"], f"{QUEUE} · in progress": counts["in_progress"]}, (backlog, counts)
    page.screenshot(path=os.path.join(shots, "dashboard.png"), full_page=True)
    return {
        "volume_marks": len(volume),
        "volume_marks_total": sum(m["value"] for m in volume),
        "api_feedback": sum(b["feedback"] for b in overall),
        "negative_marks": len(negative),
        "api_buckets_with_traces": sum(1 for b in overall if b["traces"] > 0),
        "signal_marks_total": sum(m["value"] for m in signals),
        "api_signals": sum(s["count"] for b in overall for s in b["signals"].values()),
        "model_series": sorted({m["series"] for m in model}),
        "prompt_series": sorted({m["series"] for m in prompt}),
        "cluster_marks": page.locator("#chart-clusters .mark").count(),
        "backlog_pending": backlog[f"{QUEUE} · pending"],
    }


def explorer(page, shots):
    page.click("#nav a[data-page=traces]")
    page.wait_for_selector("#trace-list tbody tr")
    rows = page.locator("#trace-list tbody tr").count()
    # Filters: the older model version, with negative feedback.
    page.click("details.card > summary")
    page.fill("#filter-model_version", "2024-07-18")
    page.select_option("#filter-negative_feedback", "true")
    page.click("text=Apply filters")
    wait_for_hash(page, "model_version=2024-07-18")
    page.wait_for_selector("#trace-list tbody tr")
    filtered = page.locator("#trace-list tbody tr").count()
    api_filtered = len(api(page, "/traces?model_version=2024-07-18&negative_feedback=true&limit=50")["items"])
    # A trace's chain: query, context stack, output, feedback; its session; similar problems.
    page.locator("#trace-list tbody tr a").first.click()
    page.wait_for_selector("#trace-chain #trace-output")
    page.wait_for_selector("#trace-feedback li")
    page.wait_for_selector("#session-timeline li")
    page.wait_for_selector("#similar-problems li")
    chain_text = page.inner_text("#trace-chain")
    assert "You are the bank's support assistant." in chain_text, chain_text
    assert "Thanks for asking" in chain_text, chain_text
    page.screenshot(path=os.path.join(shots, "trace.png"), full_page=True)
    return {"rows": rows, "filtered_rows": filtered, "api_filtered": api_filtered}


SELECT_QUOTE = """
([quote]) => {
  const output = document.querySelector('#trace-output');
  const walker = document.createTreeWalker(output, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const at = node.data.indexOf(quote);
    if (at >= 0) {
      const range = document.createRange();
      range.setStart(node, at);
      range.setEnd(node, at + quote.length);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      return true;
    }
  }
  return false;
}
"""


def review(page, shots):
    page.click("#nav a[data-page=review]")
    page.wait_for_selector("#review-items li")
    page.keyboard.press("n")  # reserve the next item by priority
    page.wait_for_selector("#review-work .badge:text('in progress')")
    item = page.locator("#review-items li[aria-selected=true]").get_attribute("data-item")
    trace_id = page.locator("#review-work a:text('Open the full trace')").get_attribute("href").split("/")[-1]
    assert page.evaluate(SELECT_QUOTE, [QUOTE]), "the quote is in the output"
    page.keyboard.press("a")
    page.wait_for_selector("#annotate-panel:not([hidden])")
    assert page.inner_text("#annotate-quote") == QUOTE
    page.fill("#annotate-comment", COMMENT)
    page.fill("#annotate-tags", "wrong_fact, timing")
    page.click("#annotate-save")
    page.wait_for_selector(f"#trace-output mark:text('{QUOTE}')")
    # The correction editor: the diff shows what is removed and what is added.
    output = page.input_value("#correction-text")
    correction = output.replace(QUOTE, "wait one business day") + " " + CORRECTION_TAIL
    page.keyboard.press("c")
    assert page.evaluate("document.activeElement.id") == "correction-text"
    page.fill("#correction-text", correction)
    page.wait_for_selector("#correction-diff ins")
    assert "3" in page.inner_text("#correction-diff del"), page.inner_html("#correction-diff")
    assert CORRECTION_TAIL in page.inner_text("#correction-diff"), page.inner_html("#correction-diff")
    page.screenshot(path=os.path.join(shots, "review.png"), full_page=True)
    page.click("#correction-save")
    page.wait_for_selector("#review-feedback li[data-kind=correction]")
    # Into a new dataset (the UI creates it), which then lists the case with its correction.
    page.fill("#dataset-name", DATASET)
    page.keyboard.press("Escape")
    page.keyboard.press("s")
    page.wait_for_selector("#dataset-link")
    page.fill("#lesson-title", "Transfers take one business day")
    page.keyboard.press("Escape")  # leave the field: shortcuts do not fire while typing
    page.keyboard.press("l")  # promote to a lesson
    page.wait_for_selector("#lesson-link")
    lesson_id = page.inner_text("#lesson-link")
    return {"item_id": int(item), "trace_id": urllib.parse.unquote(trace_id), "quote": QUOTE, "correction": correction}, lesson_id


def approve(page, lesson_id):
    page.click("#lesson-link")
    page.wait_for_selector("#lesson-approve")
    assert "proposed" in page.inner_text("#lesson-detail-title")
    page.click("#lesson-approve")
    wait_for_hash(page, "status=active")
    page.wait_for_selector(f"#lesson-list tr[data-lesson='{lesson_id}']")
    page.wait_for_selector("#lesson-detail-title .badge:text('active')")
    return {"id": lesson_id}


def datasets(page, correction):
    page.click("#nav a[data-page=datasets]")
    page.wait_for_selector(f"#dataset-list a:text('{DATASET}')")
    page.click(f"#dataset-list a:text('{DATASET}')")
    page.wait_for_selector("#dataset-items tbody tr")
    rows = page.locator("#dataset-items tbody tr").count()
    ideal = page.locator("#dataset-items tbody tr td").nth(1).inner_text()
    assert correction.startswith(ideal.rstrip("…")), (ideal, correction)
    return {"rows": rows}


def main():
    shots = screenshot_dir()
    errors = []
    with chromium() as context:
        page = context.pages[0] if context.pages else context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.set_default_timeout(20_000)
        page.goto(f"{BASE}/")
        page.wait_for_selector("form.login")
        page.fill("input[name=email]", EMAIL)
        page.fill("input[name=password]", PASSWORD)
        page.click("form.login button[type=submit]")
        page.wait_for_selector("#who-role:text('reviewer')")
        try:
            seen = {"dashboard": dashboard(page, shots)}
            seen["explorer"] = explorer(page, shots)
            seen["review"], lesson_id = review(page, shots)
            seen["lesson"] = approve(page, lesson_id)
            seen["datasets"] = datasets(page, seen["review"]["correction"])
        except Exception:
            # What the page showed when it went wrong, for the failure report.
            failure = os.path.join(tempfile.gettempdir(), "feedloop-ui-failure.png")
            page.screenshot(path=failure, full_page=True)
            print(f"page at failure: {page.url}, screenshot {failure}", file=sys.stderr)
            print(page.inner_text("body")[:4000], file=sys.stderr)
            raise
    assert not errors, errors
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
