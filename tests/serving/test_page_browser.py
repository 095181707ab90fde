"""The sales-ops page and the evaluation report in a real headless Chromium (Debian's,
via /usr/bin/chromedriver).

The app runs under uvicorn on 127.0.0.1 in a thread; selenium drives Debian's chromium
through its chromedriver (both installed by .ci/chromium.sh; selenium-manager is never
asked to download anything). The tests log in with a page token, filter the list by
grade and owner, search it, filter it by clicking a cell of the quadrant plot, and open a
lead whose reasons are drawn as SVG bars, with its timeline, sub-scores and the rules'
breakdown; screenshots at a phone's 390 px and a desktop's 1366 px are checked for size,
content and no horizontal scrolling. The evaluation report is opened from disk, as a
reader opens ``reports/latest.html``.

Without the browser the test fails under CI=true and is skipped locally, with the reason.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadscore.serving.api import PAGE_TOKENS_ENV, TOKENS_ENV, ApiConfig, create_app
from leadscore.serving.store import ScoreStore, StoreConfig
from tests.models.monitor_sample import sample_result
from tests.serving.live import uvicorn_serving
from tests.serving.test_store import AS_OF, _frame, in_ci

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PAGE_TOKEN = "page-only-token"
LONG_REASON = (
    "viewed the pricing page 3 times, last 1 day ago, and asked for a demo of the "
    "enterprise plan twice"
)
# v4 columns of the five leads: name, company, fit_score, engagement_score, cell, rule_rank
PEOPLE = {
    "L-1": (None, None, 80, 90, "call_now", 5),
    "L-2": ("Dana Kowalski", "Kowalski GmbH", 70, 20, "nurture", 4),
    "L-3": ("Ann Lee", "Lee & Co", 30, 75, "educate", 3),
    "L-4": ("Bo Chen", "Chen Ltd", 20, 10, "deprioritise", 2),
    "L-5": ("Cy Park", "Park Inc", 60, 60, "call_now", 1),
}


def _require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return
    message = f"{missing} not installed: run `bash .ci/chromium.sh` (make test does)"
    if in_ci():
        pytest.fail(message + " -- browser tests may not be skipped under CI=true")
    pytest.skip(message)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    _require_browser()
    folder = tmp_path_factory.mktemp("page")
    store = ScoreStore(StoreConfig(url=f"sqlite:///{folder}/s.db"))
    store.create()
    first = _frame([("L-1", 20, "B", "ann")])
    _with_v4_columns(first)
    store.publish(first, model_version="6", as_of=AS_OF)
    frame = _frame(
        [
            ("L-1", 55, "A", "ann"),
            ("L-2", 48, "A", "bob"),
            ("L-3", 30, "B", "ann"),
            ("L-4", 12, "C", "bob"),
            ("L-5", 3, "D", "cy"),
        ]
    )
    frame["reasons"] = json.dumps(
        [
            {"feature": "demo", "text": "demo request 2 days ago", "direction": "+",
             "contribution": 1.2},
            {"feature": "pricing", "text": "pricing-page view 5 days ago", "direction": "+",
             "contribution": 0.6},
            {"feature": "unsub", "text": "unsubscribed from email", "direction": "-",
             "contribution": -0.4},
        ]
    )  # fmt: skip
    _with_v4_columns(frame)
    store.publish(frame, model_version="7", as_of=AS_OF)
    store.save_monitor(sample_result(), mlflow_run_id=None)  # the "past grades" tab
    saved = {k: os.environ.pop(k, None) for k in (TOKENS_ENV, PAGE_TOKENS_ENV)}
    app = create_app(store.config, ApiConfig(tokens=["api-token"], page_tokens=[PAGE_TOKEN]))
    with uvicorn_serving(app) as port:
        yield f"http://127.0.0.1:{port}"
    store.close()
    for key, value in saved.items():
        if value is not None:
            os.environ[key] = value


def _with_v4_columns(frame) -> None:
    """Fill the score row v4's columns of the five leads."""
    values = {
        "name": lambda p: p[0],
        "company": lambda p: p[1],
        "email": lambda p: p[0] and p[0].split()[0].lower() + "@example.com",
        "fit_score": lambda p: p[2],
        "engagement_score": lambda p: p[3],
        "cell": lambda p: p[4],
        "rule_rank": lambda p: p[5],
        "rule_reasons": lambda p: json.dumps(
            [{"text": "industry is fintech", "points": 27.0},
             {"text": "no reply for 30 days", "points": -10.0}]
        ),
        "last_activity": lambda p: "demo request",
        "last_activity_at": lambda p: "2026-11-20T10:00:00+00:00",
        "attributes": lambda p: json.dumps(
            {"country": "US", "industry": "fintech"}, sort_keys=True, separators=(",", ":")
        ),
        "timeline": lambda p: json.dumps(
            [{"type": "demo request", "at": "2026-11-20T10:00:00+00:00", "value": None},
             {"type": "pricing-page view", "at": "2026-11-18T09:00:00+00:00", "value": 3},
             {"type": "email open", "at": "2026-11-02T08:00:00+00:00", "value": None}]
        ),
    }  # fmt: skip
    for column, value in values.items():
        frame[column] = [value(PEOPLE[lead]) for lead in frame["lead_id"]]
    reasons = json.loads(frame["reasons"].iloc[0])
    if len(reasons) > 1:  # L-2's second reason: longer than any chart label
        reasons[1]["text"] = LONG_REASON
        frame.loc[frame["lead_id"] == "L-2", "reasons"] = json.dumps(reasons)


@pytest.fixture(scope="module")
def browser(server: str):
    yield from _chromium()


def _chromium() -> Iterator[object]:
    """A headless Chromium driven by selenium, in a profile of its own (removed after)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    _require_browser()
    profile = tempfile.mkdtemp(prefix="leadscore-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP reports
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:  # also when a test fails inside a `for driver in _chromium()` loop
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _rows(driver) -> list[tuple[str, str]]:
    from selenium.webdriver.common.by import By

    return [
        (tr.get_attribute("data-lead"), tr.get_attribute("data-grade"))
        for tr in driver.find_elements(By.CSS_SELECTOR, "#leads tr.lead")
    ]


def _wait_for(driver, url_part: str) -> None:
    """Wait until a navigation started by a click has landed on a URL holding url_part."""
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 15).until(ec.url_contains(url_part))
    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def test_login_filter_and_lead_page_in_chromium(server: str, browser) -> None:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = browser
    driver.get(f"{server}/ui")
    assert "/ui/login" in driver.current_url  # no token, no page
    driver.find_element(By.ID, "token").send_keys("wrong")
    driver.find_element(By.ID, "login").click()
    # the login page comes back with the error; while it reloads, chromedriver may report
    # the old page's nodes in ways other than "stale", so poll through those
    WebDriverWait(driver, 15, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.find_element(By.ID, "error").text == "Unknown token."
    )
    driver.find_element(By.ID, "token").send_keys(PAGE_TOKEN)
    driver.find_element(By.ID, "login").click()
    WebDriverWait(driver, 15).until(lambda d: d.current_url.endswith("/ui"))
    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )

    # the cookie holds a session id, not the token; the page's own stylesheet passes its CSP
    cookies = {c["name"]: c for c in driver.get_cookies()}
    assert PAGE_TOKEN not in cookies["leadscore_session"]["value"]
    assert (
        cookies["leadscore_session"]["httpOnly"]
        and cookies["leadscore_session"]["sameSite"] == "Strict"
    )
    grade_a = driver.find_element(By.CSS_SELECTOR, "#leads td.g-A")
    assert grade_a.value_of_css_property("color") == "rgba(10, 125, 39, 1)"
    assert _csp_violations(driver) == []

    # the list: every lead of the current batch, by priority, with its reasons
    assert _rows(driver) == [("L-1", "A"), ("L-2", "A"), ("L-3", "B"), ("L-4", "C"), ("L-5", "D")]
    first = driver.find_element(By.CSS_SELECTOR, "#leads tr.lead").text
    assert "55.0%" in first and "demo request 2 days ago" in first and "10 (C)" in first
    assert "model 7" in driver.find_element(By.ID, "batch").text

    # filter by grade A: the list narrows
    driver.find_element(By.ID, "grade-A").click()
    driver.find_element(By.ID, "apply").click()
    _wait_for(driver, "grade=A")
    assert _rows(driver) == [("L-1", "A"), ("L-2", "A")]
    # and by owner
    Select(driver.find_element(By.ID, "owner")).select_by_value("bob")
    driver.find_element(By.ID, "apply").click()
    _wait_for(driver, "owner=bob")
    assert _rows(driver) == [("L-2", "A")]

    # a lead page: reasons, the contribution chart, the score history
    driver.get(f"{server}/ui")
    driver.find_element(By.LINK_TEXT, "L-1").click()
    _wait_for(driver, "/ui/leads/L-1")
    assert driver.find_element(By.ID, "lead-id").text == "L-1"
    assert driver.find_element(By.ID, "grade").text == "A"
    reasons = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#reasons li")]
    assert reasons == [
        "+ demo request 2 days ago",
        "+ pricing-page view 5 days ago",
        "- unsubscribed from email",
    ]
    bars = driver.find_elements(By.CSS_SELECTOR, "#contributions rect.bar")
    assert [b.get_attribute("data-feature") for b in bars] == ["demo", "pricing", "unsub"]
    widths = [float(b.get_attribute("width")) for b in bars]
    assert widths[0] > widths[1] > widths[2] > 0  # proportional to |contribution|
    assert bars[0].rect["width"] > 0 and bars[0].is_displayed()  # really rendered
    history = driver.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[3].text for r in history] == ["55", "20"]
    assert driver.find_element(By.ID, "history-chart").is_displayed()

    # a page token does not open the API
    driver.get(f"{server}/v1/scores")
    assert "missing or invalid bearer token" in driver.page_source


def _log_in(driver, server: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.delete_all_cookies()
    driver.get(f"{server}/ui/login")
    driver.find_element(By.ID, "token").send_keys(PAGE_TOKEN)
    driver.find_element(By.ID, "login").click()
    WebDriverWait(driver, 15).until(lambda d: d.current_url.endswith("/ui"))


def _screenshot(driver, width: int, height: int, path: Path):
    """A screenshot of the viewport emulated at ``width`` x ``height`` CSS pixels (scale
    1, a phone's touch and viewport rules below 500 px), saved at ``path``, as an image."""
    from PIL import Image

    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500},
    )
    driver.refresh()
    png = driver.get_screenshot_as_png()
    path.write_bytes(png)
    return Image.open(io.BytesIO(png)).convert("RGB")


def _busy(image) -> bool:
    """Not one colour: many distinct colours (text, bars, grades), some dark pixels."""
    colours = image.getcolors(maxcolors=1 << 20) or []
    darkest = min(sum(rgb) for _, rgb in colours) if colours else 765
    return len(colours) > 50 and darkest < 200


def test_search_quadrant_lead_timeline_and_screenshots(server: str, browser, tmp_path) -> None:
    """Search, a cell of the quadrant, a lead's timeline and full reasons; the list and a
    lead at 390 px (cards, nothing wider than the phone) and at 1366 px (a table)."""
    from selenium.webdriver.common.by import By

    driver = browser
    _log_in(driver, server)
    driver.find_element(By.ID, "q").send_keys("kowal")
    driver.find_element(By.ID, "apply").click()
    _wait_for(driver, "q=kowal")
    assert _rows(driver) == [("L-2", "A")]
    assert "of 1 matching" in driver.find_element(By.ID, "total").text

    # the quadrant: four named cells with their counts; a click filters the list
    driver.get(f"{server}/ui")
    assert driver.find_element(By.ID, "quadrant").is_displayed()
    assert driver.find_element(By.ID, "cell-call_now").text == "call now 2"
    driver.find_element(By.CSS_SELECTOR, "#cell-call_now text").click()
    _wait_for(driver, "cell=call_now")
    assert _rows(driver) == [("L-1", "A"), ("L-5", "D")]

    # a lead: the rules' breakdown next to the model's full reasons, sub-scores, timeline
    driver.get(f"{server}/ui")
    driver.find_element(By.LINK_TEXT, "Dana Kowalski").click()
    _wait_for(driver, "/ui/leads/L-2")
    reasons = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#reasons li")]
    assert reasons[1] == "+ " + LONG_REASON  # never cut
    rules = driver.find_elements(By.CSS_SELECTOR, "#rule-reasons rect.bar")
    assert len(rules) == 2 and rules[0].rect["width"] > rules[1].rect["width"] > 0
    assert driver.find_element(By.ID, "cell").text == "nurture"
    assert "70/100" in driver.find_element(By.ID, "fit-score").text
    assert driver.find_element(By.ID, "lead-point").is_displayed()
    timeline = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#timeline li")]
    assert timeline[1].startswith("pricing-page view (3) 2026-11-18") and len(timeline) == 3
    assert _csp_violations(driver) == []

    try:
        for path, name in ((f"{server}/ui", "list"), (f"{server}/ui/leads/L-2", "lead")):
            driver.get(path)
            phone = _screenshot(driver, 390, 844, tmp_path / f"{name}-phone.png")
            assert phone.size == (390, 844) and _busy(phone)
            wide = driver.execute_script("return document.documentElement.scrollWidth")
            assert wide <= 390  # no horizontal scrolling on a phone
            if name == "list":  # cards: no table header, the reasons inside the screen
                assert not driver.find_element(By.CSS_SELECTOR, "#leads thead").is_displayed()
                why = driver.find_element(By.CSS_SELECTOR, "#leads td.why span")
                assert why.is_displayed() and why.rect["x"] + why.rect["width"] <= 390
            desktop = _screenshot(driver, 1366, 900, tmp_path / f"{name}-desktop.png")
            assert desktop.size == (1366, 900) and _busy(desktop)
            if name == "list":
                assert driver.find_element(By.CSS_SELECTOR, "#leads thead").is_displayed()
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_past_grades_tab_from_the_nav_fits_a_phone(server: str, browser, tmp_path) -> None:
    """The nav's "How did past grades do" opens the month table (cards at 390 px, nothing
    wider than the phone) and its link jumps to the newest batch's drift."""
    from selenium.webdriver.common.by import By

    driver = browser
    _log_in(driver, server)
    driver.find_element(By.ID, "nav-monitor").click()
    _wait_for(driver, "/ui/monitor")
    months = driver.find_elements(By.CSS_SELECTOR, "#months tr.month")
    assert [m.get_attribute("id") for m in months] == [
        "month-2026-03",
        "month-2026-02",
        "month-2026-01",
    ]
    assert "still maturing (12 of 30 days)" in months[0].text
    try:
        phone = _screenshot(driver, 390, 844, tmp_path / "monitor-phone.png")
        assert phone.size == (390, 844) and _busy(phone)
        assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
        assert not driver.find_element(By.CSS_SELECTOR, "#months thead").is_displayed()
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    driver.find_element(By.ID, "drift-link").click()
    _wait_for(driver, "#drift")
    first = driver.find_element(By.CSS_SELECTOR, "#drift-table tr.drift-row")
    assert first.get_attribute("data-feature") == "lead_source"
    assert _csp_violations(driver) == []


def test_the_evaluation_report_opens_in_chromium(tmp_path: Path) -> None:
    """The report is one self-contained file: opened from disk in a real browser, every
    figure decodes and draws, and the headline and the model-vs-rules table are there."""
    from selenium.webdriver.common.by import By

    from leadscore.models.report import render_report
    from tests.models.test_report import small_window

    report = tmp_path / "report.html"
    report.write_text(render_report(small_window()), encoding="utf-8")
    for driver in _chromium():
        driver.get(report.as_uri())
        images = driver.find_elements(By.TAG_NAME, "img")
        assert len(images) >= 6
        drawn = driver.execute_script(
            "return Array.from(document.images).map(i => i.complete && i.naturalWidth > 100)"
        )
        assert all(drawn), drawn
        assert all(img.is_displayed() and img.size["width"] > 100 for img in images)
        body = driver.find_element(By.TAG_NAME, "body").text
        assert body.startswith("leadscore evaluation report")
        assert "Calling the top 10% by the model would have reached" in body
        assert "Model vs rules" in body and "ROC-AUC" in body
        external = driver.execute_script(
            "return Array.from(document.querySelectorAll('[src],link[href]'))"
            ".map(e => e.getAttribute('src') || e.getAttribute('href'))"
            ".filter(u => !u.startsWith('data:') && !u.startsWith('#'))"
        )
        assert external == []  # nothing fetched: it opens offline, from an e-mail, anywhere
        links = driver.execute_script(
            "return Array.from(document.querySelectorAll('a[href]'))"
            ".map(a => a.getAttribute('href')).filter(u => !u.startsWith('#'))"
        )
        assert links and all(u.startswith("http://127.0.0.1:5000/") for u in links), links


def test_api_docs_render_with_no_internet(server: str, browser) -> None:
    """Swagger UI comes from the installed package, not a CDN: in a real browser the docs
    draw the API's routes, and every script and stylesheet is the server's own."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": "Bearer api-token"}}
    )
    try:
        driver.get(f"{server}/docs")
        title = WebDriverWait(driver, 20).until(
            lambda d: d.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title")
        )
        assert title.text.startswith("leadscore API")
        WebDriverWait(driver, 20).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
        )
        paths = {e.text for e in driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
        assert {"/v1/scores", "/healthz"} <= {p.replace("\u200b", "") for p in paths}
        sources = driver.execute_script(
            "return Array.from(document.querySelectorAll('script[src], link[href]'))"
            ".map(e => e.getAttribute('src') || e.getAttribute('href'))"
        )
        assert sources and all(s.startswith("/docs-assets/") for s in sources), sources
    finally:
        driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})


def _csp_violations(driver) -> list[str]:
    """Console messages of the pages loaded since the last call that report a blocked
    script, style or image (Content Security Policy)."""
    return [
        e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]
    ]


def test_docs_open_for_an_api_token_session_only(server: str, browser) -> None:
    """A browser cannot send a bearer header: logged in with an API token, /docs draws
    (under its CSP, nothing blocked); with a page token's session, or after log-out, 401."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    driver.delete_all_cookies()
    driver.get(f"{server}/docs")
    assert "missing or invalid bearer token" in driver.page_source
    for token, opens_docs in ((PAGE_TOKEN, False), ("api-token", True)):
        driver.get(f"{server}/ui/login")
        driver.find_element(By.ID, "token").send_keys(token)
        driver.find_element(By.ID, "login").click()
        WebDriverWait(driver, 15).until(lambda d: d.current_url.endswith("/ui"))
        assert _csp_violations(driver) == []  # the log-in and list pages: nothing blocked
        driver.get(f"{server}/docs")
        if not opens_docs:
            assert "missing or invalid bearer token" in driver.page_source
            driver.get(f"{server}/ui")
            driver.find_element(By.ID, "logout").click()
            WebDriverWait(driver, 15).until(lambda d: "/ui/login" in d.current_url)
            continue
        title = WebDriverWait(driver, 20, ignored_exceptions=(WebDriverException,)).until(
            lambda d: d.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title")
        )
        assert title.text.startswith("leadscore API")
        WebDriverWait(driver, 20).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
        )
        assert _csp_violations(driver) == []
    # log out: the session is gone, /docs closes again
    driver.get(f"{server}/ui")
    driver.find_element(By.ID, "logout").click()
    WebDriverWait(driver, 15).until(lambda d: "/ui/login" in d.current_url)
    driver.get(f"{server}/docs")
    assert "missing or invalid bearer token" in driver.page_source
