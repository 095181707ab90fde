"""The Calls tab in a real headless Chromium (as tests/serving/test_page_browser.py: Debian's
chromium through its chromedriver, the app under uvicorn on 127.0.0.1): a rep logs in
with a page token, opens Calls from the nav, then their own list, which at a phone's
390 px is cards inside the screen, reasons and the assignment reason shown.

Without the browser the test fails under CI=true and is skipped locally, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from leadscore.serving.api import ApiConfig, create_app
from leadscore.serving.store import ScoreStore, StoreConfig
from tests.serving.live import uvicorn_serving
from tests.serving.test_calls_api import TEAM, publish_with_calls
from tests.serving.test_page_browser import (
    PAGE_TOKEN,
    _busy,
    _chromium,
    _csp_violations,
    _log_in,
    _require_browser,
    _screenshot,
    _wait_for,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    _require_browser()
    folder = tmp_path_factory.mktemp("calls-page")
    store = ScoreStore(StoreConfig(url=f"sqlite:///{folder}/s.db"))
    store.create()
    publish_with_calls(store)
    app = create_app(
        store.config, ApiConfig(tokens=["api"], page_tokens=[PAGE_TOKEN]), store=store, team=TEAM
    )
    with uvicorn_serving(app) as port:
        yield f"http://127.0.0.1:{port}"
    store.close()


def test_a_rep_opens_their_call_list_on_a_phone(server: str, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    for driver in _chromium():
        _log_in(driver, server)
        driver.find_element(By.ID, "nav-calls").click()
        _wait_for(driver, "/ui/calls")
        reps = driver.find_elements(By.CSS_SELECTOR, "#reps tr.rep")
        assert [r.get_attribute("data-rep") for r in reps] == ["alice", "bashir", "chen"]
        driver.find_element(By.LINK_TEXT, "Alice Moreau").click()
        _wait_for(driver, "/ui/calls/alice")
        calls = driver.find_elements(By.CSS_SELECTOR, "#calls tr.call")
        assert [c.get_attribute("data-lead") for c in calls] == ["00042", "L-00-0002", "L-00-0003"]
        assert "owner: Alice Moreau" in calls[0].text
        assert _csp_violations(driver) == []
        try:
            phone = _screenshot(driver, 390, 844, tmp_path / "calls-phone.png")
            assert phone.size == (390, 844) and _busy(phone)
            assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
            assert not driver.find_element(By.CSS_SELECTOR, "#calls thead").is_displayed()
            for cell in ("td.why span", "td.assign"):
                shown = driver.find_element(By.CSS_SELECTOR, f"#calls {cell}")
                assert shown.is_displayed() and shown.rect["x"] + shown.rect["width"] <= 390
        finally:
            driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
