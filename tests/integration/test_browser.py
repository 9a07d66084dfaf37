"""A real browser (Debian's headless Chromium through selenium) signs in end to
end: app page -> redirect to the test IdP on another site (localhost vs
127.0.0.1) -> its form -> the IdP's auto-submitting cross-site POST to the ACS
-> the original page.  This is what proves the cookies' SameSite choices work,
which no HTTP client emulation does."""
import os
import shutil

import pytest

from conftest import ROOT, wait_until


def chrome(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--user-data-dir=%s" % (tmp_path / "chrome")):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def test_a_real_browser_signs_in_and_out(idp_gate, tmp_path):
    assert os.path.exists("/usr/bin/chromium") and os.path.exists("/usr/bin/chromedriver"), \
        "chromium and chromium-driver are installed by scripts/install-deps"
    from selenium.webdriver.common.by import By

    gate, idp = idp_gate
    driver = chrome(tmp_path)
    try:
        driver.set_page_load_timeout(20)
        driver.get(gate.url + "/dashboard?x=1")
        wait_until(lambda: driver.current_url.startswith(idp.base + "/sso"), what="the IdP's login form")
        driver.find_element(By.NAME, "email").send_keys("alice@example.com")
        driver.find_element(By.TAG_NAME, "button").click()
        # The IdP's page posts the response cross-site; ssogate sends us back.
        wait_until(lambda: "Hello, alice@example.com" in driver.page_source, timeout=15,
                   what="the app's greeting (see ssogate.err for 'sign-in refused')")
        assert driver.current_url == gate.url + "/dashboard?x=1"
        driver.refresh()
        assert "Hello, alice@example.com" in driver.page_source  # the session is kept
        driver.save_screenshot(str(tmp_path / "browser-signed-in.png"))
        driver.get(gate.url + "/ssogate/logout")
        wait_until(lambda: "signed out" in driver.page_source, what="the signed-out page")
        driver.get(gate.url + "/")
        wait_until(lambda: driver.current_url.startswith(idp.base + "/sso"), what="sign-in again")
        driver.save_screenshot(str(tmp_path / "browser-signed-out.png"))
        for name in ("browser-signed-in.png", "browser-signed-out.png"):
            artifact = os.path.join(ROOT, "build", name)
            if os.path.isdir(os.path.dirname(artifact)):
                shutil.copy(tmp_path / name, artifact)
            print("screenshot:", artifact if os.path.exists(artifact) else tmp_path / name)
    finally:
        driver.quit()


def sign_in_at_idp(driver, idp, email="alice@example.com"):
    from selenium.webdriver.common.by import By

    wait_until(lambda: driver.current_url.startswith(idp.base + "/sso"), timeout=15, what="the IdP's login form")
    driver.find_element(By.NAME, "email").send_keys(email)
    driver.find_element(By.TAG_NAME, "button").click()


def test_redash_session_restore_popup_after_the_session_expired(idp_gate, tmp_path):
    """Redash's web client (client/app/services/axios.js and restoreSession.jsx) on an
    expired session: its XHR gets 401 (not a redirect to the IdP, which the browser would
    follow cross-site and report as a network error), "Your session has expired" offers a
    Login popup on /login, the SPA in the popup posts {type: "redash_session_restored"} to
    its opener once api/session answers, and the call is retried.  The client page is
    tests/upstream/app.py's REDASH_CLIENT."""
    from selenium.webdriver.common.by import By

    gate, idp = idp_gate
    driver = chrome(tmp_path)
    text = lambda i: driver.find_element(By.ID, i).text  # noqa: E731
    try:
        driver.set_page_load_timeout(20)
        driver.get(gate.url + "/redash-client")
        sign_in_at_idp(driver, idp)
        wait_until(lambda: text("who") == "alice@example.com", timeout=15, what="the client, signed in")
        driver.find_element(By.ID, "load").click()
        wait_until(lambda: "secret rows" in text("result"), what="the first call")

        driver.delete_cookie("ssogate")  # the session is gone (expired, or removed)
        driver.execute_script("document.getElementById('result').textContent = ''")
        driver.find_element(By.ID, "load").click()
        wait_until(lambda: text("result") == "status 401", what="the call answered 401")
        assert "Your session has expired" in text("prompt")

        main = driver.current_window_handle
        driver.find_element(By.ID, "login").click()
        wait_until(lambda: len(driver.window_handles) == 2, what="the Login popup")
        driver.switch_to.window([h for h in driver.window_handles if h != main][0])
        sign_in_at_idp(driver, idp)
        driver.switch_to.window(main)
        # The popup's page told its opener; the opener closed it and retried the call.
        wait_until(lambda: "secret rows" in text("result"), timeout=20, what="the retried call")
        wait_until(lambda: len(driver.window_handles) == 1, what="the popup closed")
        assert not driver.find_element(By.ID, "prompt").is_displayed()
        driver.save_screenshot(str(tmp_path / "browser-session-restored.png"))
    finally:
        driver.quit()
