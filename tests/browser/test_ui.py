"""Browser tests of the dashboard and the demo storefront, in headless Chromium (Debian's
chromium driven by playwright). They start `aisle quickstart` on a free loopback port,
search, open a product, add it to the cart, see complements with their reasons, and see the
cart event in the dashboard's live stream. Screenshots go to target/browser-artifacts/.

    python tests/browser/test_ui.py PATH/TO/aisle
"""
import json
import os
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


def test_dashboard(page, base):
    page.goto(base + "/")
    page.wait_for_selector("body[data-loaded=yes]", timeout=30_000)
    items = page.inner_text("#count-items")
    assert items == "49,688", f"items count shows {items!r}"
    page.wait_for_selector("#funnel svg rect")
    page.wait_for_selector("#retention svg rect")
    board = page.inner_text("#leaderboard")
    assert "sknn" in board and "temporal protocol" in board, f"leaderboard shows {board!r}"
    shot(page, "dashboard.png")


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
    page.wait_for_selector("#cart li", timeout=20_000)
    page.wait_for_selector("#complements .card", timeout=20_000)
    why = page.inner_text("#complements .card .why")
    assert "goes with" in why, f"complement reason is {why!r}"
    assert page.locator("#cart li").count() == 1
    shot(page, "shop-cart.png")


def test_dashboard_sees_the_cart_event(page, base):
    page.goto(base + "/")
    page.wait_for_function(
        "[...document.querySelectorAll('.feed-row')].some(r => r.textContent.includes('add_to_cart'))",
        timeout=20_000,
    )
    shot(page, "dashboard-live.png")


def main():
    aisle = sys.argv[1] if len(sys.argv) > 1 else os.path.join("target", "debug", "aisle")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("chromium is not installed: run scripts/browser-tests.sh, which installs it")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = tempfile.mkdtemp(prefix="aisle-browser-")
    log = open(os.path.join(data, "server.log"), "w")
    server = subprocess.Popen(
        [aisle, "quickstart", "--data-dir", os.path.join(data, "qs"), "--listen", f"127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    passed = failed = 0
    try:
        wait_ready(base, server)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            for test in (test_dashboard, test_search_cart_and_complements, test_dashboard_sees_the_cart_event):
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
