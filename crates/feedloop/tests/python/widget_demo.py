"""Drives the feedback widget on the demo page in headless Chromium, as a user would.

Usage: widget_demo.py BASE_URL PUBLIC_KEY [PAGE_BASE_URL]

On BASE_URL/demo?key=…&endpoint=BASE_URL (the sample chat of /demo/chat.json, traces demo-1 to
demo-3), or on the same page served by an app's own server at PAGE_BASE_URL (another origin: the
widget then works through CORS preflights and cross-origin beacons), this script:
- answer 1: thumbs down, two reason chips and a comment and a correction (keyboard for the
  chips), a note on a highlighted part of the answer (keyboard), a copy of a selected part
  (Ctrl+C), and the app's regenerate, share and edit buttons (the widget's hooks);
- answer 3: thumbs up, then down, while the browser is offline, then back online (the queue
  sends both, in order);
- answer 2: nothing, so leaving the page reports it abandoned (a beacon), with dwell times;
- first, without a key, reads the set-up steps the page shows and enters the key in its form;
- takes screenshots of the widget and of the page (docs/screenshots/widget.png and
  widget-demo.png unless FEEDLOOP_SCREENSHOTS names another folder).

Prints one JSON line: every body the page posted (captured from the network), the signals it
left with (its beacon's), the queue seen while offline, and what the page showed. The Rust test checks what was stored.
"""

import json
import os
import sys
import time

from browser import chromium, screenshot_dir

BASE, KEY = sys.argv[1], sys.argv[2]
PAGE_BASE = sys.argv[3] if len(sys.argv) > 3 else BASE


def wait_for(condition, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def select_text(page, answer_id, text):
    """Selects `text` inside the answer (its first text node), as a mouse drag would."""
    page.evaluate(
        """([id, text]) => {
            const node = document.getElementById(id).firstChild;
            const at = node.data.indexOf(text);
            if (at < 0) throw new Error('not in the answer: ' + text);
            const range = document.createRange();
            range.setStart(node, at);
            range.setEnd(node, at + text.length);
            const selection = window.getSelection();
            selection.removeAllRanges();
            selection.addRange(range);
        }""",
        [answer_id, text],
    )


def queue(page):
    return page.evaluate("JSON.parse(localStorage.getItem('feedloop:queue') || '[]')")


def main():
    posted = []  # (url path with query, body) of every POST to the API, in order
    failures = []

    def on_request(request):
        if request.method == "POST" and request.url.startswith(f"{BASE}/api/v1/"):
            path = request.url[len(BASE):]
            posted.append({"path": path, "type": request.resource_type, "body": request.post_data})

    def on_failed(request):
        if request.url.startswith(f"{BASE}/api/v1/"):
            failures.append({"url": request.url[len(BASE):], "error": request.failure})

    with chromium() as context:
        context.on("request", on_request)
        context.on("requestfailed", on_failed)
        page = context.new_page()
        console = []
        page.on("console", lambda message: console.append(message.text))
        page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
        page.on(
            "response",
            lambda response: response.status >= 400
            and console.append(f"{response.status} {response.request.method} {response.url}"),
        )
        try:
            result = drive(context, page, posted, failures, console)
        except Exception:
            # What the page said helps more than the timeout alone.
            print(json.dumps({"console": console, "posted": posted, "failures": failures}), file=sys.stderr)
            raise
    print(json.dumps(result))


def drive(context, page, posted, failures, console):
    # feedloop serves the page at /demo; an app's own server as the file it is.
    demo = "/demo" if PAGE_BASE == BASE else "/demo.html"
    # Without a key the page shows the set-up steps and a form for the public key.
    page.goto(f"{PAGE_BASE}{demo}?endpoint={BASE}")
    page.locator("#setup").wait_for()
    setup = [page.locator("#setup-traces").inner_text(), page.locator("#setup-key").inner_text()]
    page.locator("#key-input").fill(KEY)
    page.locator("#key-input").press("Enter")
    page.wait_for_url(lambda url: "key=" in url)

    turn1 = page.locator("#turn-demo-1")
    turn1.locator(".fl-chip").first.wait_for(state="attached")
    chips = turn1.locator(".fl-chip").evaluate_all("els => els.map(e => e.dataset.category)")

    # Thumbs down opens the details, focus on the first reason chip.
    turn1.locator(".fl-down").click()
    panel_open = turn1.locator(".fl-panel").is_visible()
    focused = page.evaluate("document.activeElement.dataset.category || ''")
    for name in ["factually_incorrect", "incomplete"]:
        turn1.locator(f".fl-chip[data-category={name}]").focus()
        page.keyboard.press("Enter")
    turn1.locator(".fl-comment").fill("It says nothing about the fee for a second card.")
    turn1.locator(".fl-correction").fill(
        "A replacement costs €7 since March; the first one each year is free."
    )
    shots = screenshot_dir()
    widget_png = os.path.join(shots, "widget.png")
    wait_for(lambda: "Thanks" in turn1.locator(".fl-status").inner_text(), "the rating's thanks")
    page.mouse.move(0, 0)  # no hover state in the picture
    turn1.locator(".fl-w").screenshot(path=widget_png, animations="disabled")
    turn1.locator(".fl-send").click()

    # A note on a highlighted part of the answer, by keyboard.
    select_text(page, "answer-demo-1", "€5")
    select_button = turn1.locator(".fl-select")
    select_button.wait_for(state="visible")
    select_button.focus()
    page.keyboard.press("Enter")
    note_focused = page.evaluate("document.activeElement.classList.contains('fl-note-text')")
    quote_shown = turn1.locator(".fl-quote").inner_text()
    page.keyboard.type("The fee is €7 since March.")
    turn1.locator(".fl-add-note").focus()
    page.keyboard.press("Enter")

    # A copy of part of the answer.
    select_text(page, "answer-demo-1", "Your first replacement each year is free.")
    page.keyboard.press("Control+C")

    # The app's own buttons call the widget's hooks.
    turn1.get_by_role("button", name="Regenerate").click()
    turn1.get_by_role("button", name="Share").click()
    turn1.get_by_role("button", name="Edit").click()
    turn1.locator(".editor textarea").fill("A replacement costs €7. The first one each year is free.")
    turn1.get_by_role("button", name="Use my version").click()
    # The other client signal types through the widget's generic hook, as an app calls it.
    page.evaluate(
        """() => {
            const widget = FeedloopWidget.widgets.find(w => w.traceId === 'demo-1');
            widget.signal('rephrase');
            widget.signal('frustration', {details: {clicks: 3}});
        }"""
    )
    wait_for(lambda: not queue(page), "the widget's queue to empty")

    # Keyboard only on answer 2 (which gets no feedback): Details opens the panel with the focus
    # on the first reason, Escape closes it and gives the focus back.
    turn2 = page.locator("#turn-demo-2")
    turn2.locator(".fl-more").focus()
    page.keyboard.press("Enter")
    keyboard = {
        "expanded": turn2.locator(".fl-more").get_attribute("aria-expanded"),
        "focus": page.evaluate("document.activeElement.dataset.category || ''"),
    }
    page.keyboard.press("Escape")
    keyboard["closed"] = turn2.locator(".fl-panel").is_hidden()
    keyboard["expanded_after"] = turn2.locator(".fl-more").get_attribute("aria-expanded")
    keyboard["focus_after"] = page.evaluate("document.activeElement.className")
    keyboard["labels"] = turn2.locator(".fl-up, .fl-down").evaluate_all(
        "els => els.map(e => [e.getAttribute('aria-label'), e.getAttribute('aria-pressed')])"
    )

    # Offline: the rating waits in the queue and is sent once the browser is back online.
    turn3 = page.locator("#turn-demo-3")
    context.set_offline(True)
    turn3.locator(".fl-up").click()
    wait_for(lambda: [item for item in queue(page) if item.get("attempt")], "a failed attempt")
    offline_status = wait_for(lambda: turn3.locator(".fl-status").inner_text(), "a status")
    # A change of mind while offline: both wait, and must arrive in order.
    turn3.locator(".fl-down").click()
    offline_queue = wait_for(lambda: (lambda q: q if len(q) == 2 else None)(queue(page)), "two items")
    context.set_offline(False)
    wait_for(lambda: not queue(page), "the queue to empty once online")
    online_status = wait_for(
        lambda: (lambda s: s if "Thanks" in s else "")(turn3.locator(".fl-status").inner_text()),
        "the thanks",
    )
    pressed = [turn3.locator(f".fl-{thumb}").get_attribute("aria-pressed") for thumb in ["up", "down"]]

    demo_png = os.path.join(shots, "widget-demo.png")
    # The chat only: the log below it has random ids.
    page.locator("#chat").screenshot(path=demo_png)

    # Leaving the page: dwell for every answer, abandon for the untouched one, as a beacon. The
    # widget also keeps them in its queue (for a later page, should the beacon be lost): read
    # there from a page of the same origin without the widget, so nothing sends them again.
    page.goto(f"{PAGE_BASE}/demo/chat.json")
    left = [item["body"] for item in queue(page)]

    return {
        "setup": setup,
        "keyboard": keyboard,
        "posted": posted,
        "left": left,
        "failures": failures,
        "chips": chips,
        "panel_open": panel_open,
        "focused_after_thumbs_down": focused,
        "note_focused": note_focused,
        "quote_shown": quote_shown,
        "offline_queue": offline_queue,
        "offline_status": offline_status,
        "online_status": online_status,
        "pressed": pressed,
        "screenshot": widget_png,
        "console": console,
    }


if __name__ == "__main__":
    main()
