"""The page in real headless Chromium (Debian's chromium + chromedriver), against gunicorn."""

import pytest

from predicciones.tests.conftest import chromium_paths, draw_digit_image, require

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


@pytest.fixture(scope="module")
def browser():
    chromium, chromedriver = chromium_paths()
    require(bool(chromium and chromedriver), "chromium and chromedriver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=420,900",  # a phone-sized window: the page must fit it
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait_for_prediction(browser, timeout=20):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, timeout).until(ec.presence_of_element_located((By.ID, "prediction")))
    return browser.find_element(By.ID, "prediction").text


def test_upload_shows_the_digit_and_what_the_model_saw(browser, server, tmp_path):
    from selenium.webdriver.common.by import By

    image = tmp_path / "seven.png"
    image.write_bytes(draw_digit_image("7", size=240))
    browser.get(server.url("/"))
    assert "Predicción de Dígitos" in browser.title
    browser.find_element(By.ID, "file").send_keys(str(image))
    assert wait_for_prediction(browser) == "7"
    assert browser.find_element(By.ID, "confidence").text.endswith("%")
    assert browser.find_element(By.ID, "execution-time").text.endswith(" seg")
    assert len(browser.find_element(By.ID, "query-id").text) == 36
    assert len(browser.find_elements(By.CSS_SELECTOR, "#seen td")) == 64
    # Nothing overflows a phone-width window.
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )


def test_drawing_a_one_on_the_canvas_gives_a_prediction(browser, server):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get(server.url("/"))
    pad = browser.find_element(By.ID, "pad")
    height = pad.size["height"]
    # A "1": a short up-stroke then a long vertical line, drawn with the mouse.
    actions = ActionChains(browser)
    actions.move_to_element_with_offset(pad, -20, int(-0.25 * height))
    actions.click_and_hold()
    actions.move_by_offset(20, int(-0.12 * height))
    for _ in range(16):
        actions.move_by_offset(0, int(0.045 * height))
    actions.release()
    actions.perform()
    button = browser.find_element(By.ID, "send-drawing")
    assert button.is_enabled()
    button.click()
    digit = wait_for_prediction(browser)
    assert digit.isdigit()
    seen = browser.find_elements(By.CSS_SELECTOR, "#seen td")
    assert any(int(td.get_attribute("title")) > 0 for td in seen)


def test_feedback_buttons_record_a_label(browser, server, tmp_path):
    from selenium.webdriver.common.by import By

    image = tmp_path / "zero.png"
    image.write_bytes(draw_digit_image("0", size=240))
    browser.get(server.url("/"))
    browser.find_element(By.ID, "file").send_keys(str(image))
    wait_for_prediction(browser)
    buttons = browser.find_elements(By.CSS_SELECTOR, ".feedback button")
    buttons[0].click()
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 10).until(lambda b: "recorded 0" in b.page_source)
