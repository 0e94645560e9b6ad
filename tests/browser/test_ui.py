"""Browser tests of the dashboard and the demo storefront, in headless Chromium (Debian's
chromium driven by playwright). They start `aisle quickstart` on a free loopback port,
search, open a product, add it to the cart, see complements with their reasons, and see the
cart event in the dashboard's live stream, and check that ids and titles holding markup are
shown as text (issue 13). The server gets a read key and an admin key of the tests' own
(AISLE_API_KEYS); the dashboard is opened with the read key in its URL fragment (#key=KEY), as
it no longer gets the storefront's demo key. Screenshots go to target/browser-artifacts/.

    python tests/browser/test_ui.py PATH/TO/aisle
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

from playwright.sync_api import sync_playwright

ARTIFACTS = os.path.join("target", "browser-artifacts")
# Keys the test server is started with (AISLE_API_KEYS), besides quickstart's own demo key.
READ_KEY = "browser-test-read-key"
ADMIN_KEY = "browser-test-admin-key"
# Markup and a quote, in a user id, an item id and an item title (issue 13: stored XSS).
MARKUP = "<img src=x onerror=alert(1)>"
XSS_USER = f"shopper {MARKUP} o'neil"
XSS_ITEM = f"item-{MARKUP}-'x'"
XSS_TITLE = f"Zqxprobe crisps {MARKUP} O'Brien's"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(base, server, seconds=600):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"aisle quickstart exited with {server.returncode}")
        try:
            with urllib.request.urlopen(base + "/ready", timeout=2) as r:
                if json.load(r).get("ready"):
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the server did not become ready")


def shot(page, name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, name), full_page=True)


def call(base, method, path, body=None, key=ADMIN_KEY):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", "Bearer " + key)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def open_dashboard(page, base, key=READ_KEY):
    """Opens the dashboard with `key` in the URL fragment; returns its /v1/dashboard request."""
    # From a blank page, so that it is a fresh load even when only the fragment differs.
    page.goto("about:blank")
    with page.expect_request(lambda r: r.url.endswith("/v1/dashboard"), timeout=30_000) as first:
        page.goto(f"{base}/#key={key}")
    return first.value


def test_dashboard(page, base):
    request = open_dashboard(page, base)
    page.wait_for_selector("body[data-loaded=yes]", timeout=30_000)
    sent = request.headers.get("authorization")
    assert sent == "Bearer " + READ_KEY, f"the dashboard sent Authorization {sent!r}"
    assert "#" not in page.url and READ_KEY not in page.url, f"the key stays in the URL: {page.url}"
    kept = page.evaluate("Object.values(sessionStorage)")
    assert READ_KEY in kept, f"sessionStorage holds {kept!r}"
    assert page.locator("#key-form").is_hidden(), "the key form is hidden once the key works"
    items = page.inner_text("#count-items")
    assert items == "49,688", f"items count shows {items!r}"
    page.wait_for_selector("#funnel svg rect")
    page.wait_for_selector("#retention svg rect")
    # A read key: private analytics, stated, and no live stream of individual events.
    privacy = page.inner_text("#privacy")
    assert "differential privacy" in privacy, f"the privacy line shows {privacy!r}"
    assert page.locator(".feed-row").count() == 0, "a read key sees the live event stream"
    board = page.inner_text("#leaderboard")
    assert "sknn" in board and "temporal protocol" in board, f"leaderboard shows {board!r}"
    shot(page, "dashboard.png")


def test_dashboard_asks_for_a_key_it_can_use(page, base):
    # An unknown key: the form says so; a good key typed into it loads the dashboard.
    open_dashboard(page, base, key="not-a-key-of-this-server")
    page.wait_for_selector("#key-form:not([hidden])", timeout=20_000)
    message = page.inner_text("#key-message")
    assert "did not accept" in message, f"the key form says {message!r}"
    assert page.get_attribute("body", "data-loaded") is None, "nothing was shown with a bad key"
    page.fill("#key-input", READ_KEY)
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("body[data-loaded=yes]", timeout=30_000)
    assert page.locator("#key-form").is_hidden()
    # The storefront's demo key may not read the dashboard (403): the form explains it.
    html = urllib.request.urlopen(base + "/shop", timeout=30).read().decode()
    demo = re.search(r'const KEY = "([^"]+)";', html)
    assert demo, "the storefront page carries its demo key"
    open_dashboard(page, base, key=demo.group(1))
    page.wait_for_selector("#key-form:not([hidden])", timeout=20_000)
    message = page.inner_text("#key-message")
    assert "may not read the dashboard" in message, f"the key form says {message!r}"
    shot(page, "dashboard-key-form.png")


def test_search_cart_and_complements(page, base):
    page.goto(base + "/shop")
    page.wait_for_selector("body[data-loaded=yes]", timeout=30_000)
    page.wait_for_selector("#foryou .card")
    assert page.locator("#user option").count() >= 2, "the shopper picker lists shoppers"
    page.select_option("#user", index=1)
    page.wait_for_selector("#foryou .card")
    page.select_option("#user", index=0)
    page.fill("#q", "chocolat")
    page.wait_for_function("document.querySelector('#results-title').textContent.includes('chocolat')", timeout=20_000)
    first = page.inner_text("#results .card .title")
    assert "chocolate" in first.lower(), f"first result for 'chocolat' is {first!r}"
    assert page.locator("#facets .facet").count() > 0, "facets are shown"
    shot(page, "shop-search.png")
    # Open the product page and see similar items.
    page.click("#results .card .title")
    page.wait_for_selector("#product #similar .card", timeout=20_000)
    # Add the first search result to the cart; complements appear with a reason.
    page.click("#results .card button.add")
    # The cart starts with a placeholder line ("empty", class muted): wait for a real one.
    page.wait_for_selector("#cart li:not(.muted)", timeout=20_000)
    page.wait_for_selector("#complements .card", timeout=20_000)
    # The serving policy explores (epsilon-greedy by default), so any card may be an explored
    # one; those say so, and the list still carries the cart's complements with their reason.
    reasons = page.locator("#complements .card .why").all_inner_texts()
    assert any("goes with" in why for why in reasons), f"complement reasons are {reasons!r}"
    for why in reasons:
        assert "goes with" in why or "shown to explore" in why or "popular" in why, why
    assert page.locator("#cart li").count() == 1
    shot(page, "shop-cart.png")


def test_dashboard_sees_the_cart_event(page, base):
    # The live stream is individual events: shown to admin keys only.
    open_dashboard(page, base, key=ADMIN_KEY)
    page.wait_for_function(
        "[...document.querySelectorAll('.feed-row')].some(r => r.textContent.includes('add_to_cart'))",
        timeout=20_000,
    )
    shot(page, "dashboard-live.png")


def test_markup_is_shown_as_text(page, base):
    # Regression, issue 13: user ids, item ids and titles were put into the pages as HTML.
    call(base, "PUT", "/v1/items", [{"id": XSS_ITEM, "title": XSS_TITLE, "category": ["snacks", f"chips {MARKUP}'"]}])
    call(base, "POST", "/v1/events", {"user": XSS_USER, "kind": "add_to_cart", "item": XSS_ITEM})
    dialogs = []
    on_dialog = lambda d: (dialogs.append(d.message), d.dismiss())
    page.on("dialog", on_dialog)
    try:
        open_dashboard(page, base, key=ADMIN_KEY)
        page.wait_for_selector(".feed-row:has-text('Zqxprobe')", timeout=20_000)
        row = page.locator(".feed-row", has_text="Zqxprobe").first.inner_text()
        assert XSS_USER in row and XSS_TITLE in row, f"the live stream shows {row!r}"
        assert page.locator("img").count() == 0, "markup in the live stream became an element"

        # The storefront: the shopper picker lists the user, search finds the item; open it and
        # add it to the cart. The shopper list is the server's, with the user put first.
        def shoppers(route):
            listed = route.fetch().json()["users"]
            route.fulfill(json={"users": [XSS_USER] + listed})

        page.route("**/v1/shop/shoppers", shoppers)
        try:
            page.goto(base + "/shop")
            page.wait_for_selector("body[data-loaded=yes]", timeout=30_000)
        finally:
            page.unroute("**/v1/shop/shoppers")
        first = page.locator("#user option").first
        assert first.inner_text() == XSS_USER, f"the first shopper shows {first.inner_text()!r}"
        assert page.input_value("#user") == XSS_USER, "the shopper's value is the id itself"
        page.fill("#q", "zqxprobe")
        page.wait_for_function("document.querySelector('#results-title').textContent.includes('zqxprobe')", timeout=20_000)
        title = page.locator("#results .card .title").first
        assert title.inner_text() == XSS_TITLE, f"the search result shows {title.inner_text()!r}"
        title.click()
        page.wait_for_function(
            "t => document.querySelector('#product h2')?.textContent === t", arg=XSS_TITLE, timeout=20_000
        )
        page.click("#product > button")
        page.wait_for_selector("#cart li:not(.muted)", timeout=20_000)
        cart = page.inner_text("#cart li")
        assert cart == XSS_TITLE, f"the cart shows {cart!r}"
        page.wait_for_timeout(500)  # an injected image would have failed to load by now
        assert page.locator("img").count() == 0, "markup in the storefront became an element"
        assert not dialogs, f"a script ran: dialogs {dialogs!r}"
        shot(page, "shop-markup-as-text.png")
    finally:
        page.remove_listener("dialog", on_dialog)


def main():
    aisle = sys.argv[1] if len(sys.argv) > 1 else os.path.join("target", "debug", "aisle")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("chromium is not installed: run scripts/browser-tests.sh, which installs it")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = tempfile.mkdtemp(prefix="aisle-browser-")
    log = open(os.path.join(data, "server.log"), "w")
    env = dict(os.environ, AISLE_API_KEYS=f"{READ_KEY}:read,{ADMIN_KEY}:admin")
    server = subprocess.Popen(
        [aisle, "quickstart", "--data-dir", os.path.join(data, "qs"), "--listen", f"127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    passed = failed = 0
    try:
        wait_ready(base, server)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            tests = (
                test_dashboard,
                test_dashboard_asks_for_a_key_it_can_use,
                test_search_cart_and_complements,
                test_dashboard_sees_the_cart_event,
                test_markup_is_shown_as_text,
            )
            for test in tests:
                try:
                    test(page, base)
                    passed += 1
                    print(f"ok   {test.__name__}")
                except Exception:
                    failed += 1
                    print(f"FAIL {test.__name__}")
                    traceback.print_exc()
                    try:
                        shot(page, f"failed-{test.__name__}.png")
                    except Exception:
                        pass
            browser.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        if failed:
            with open(os.path.join(data, "server.log")) as f:
                print(f.read()[-3000:])
        shutil.rmtree(data, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
