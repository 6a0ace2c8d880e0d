"""The page in real headless Chromium (Debian's chromium + chromedriver), against gunicorn."""

import pytest

from harness.rendering import draw_digit_image
from predicciones.ml.letterforms import LETTERFORMS
from predicciones.tests.conftest import chromium_paths, require

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


def large_photo_of(digit: str) -> bytes:
    """A 4000x3000 phone-style photo of ``digit`` on grainy paper, saved at quality 95: more
    bytes than the service accepts (``DIGITS_MAX_UPLOAD_BYTES``)."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(7)
    paper = rng.normal(205, 14, (3000, 4000)).clip(0, 255).astype(np.uint8)
    photo = Image.fromarray(paper).convert("RGB")
    ink = Image.open(io.BytesIO(draw_digit_image(digit, size=1400))).convert("L")
    photo.paste((40, 40, 60), (1300, 800), Image.eval(ink, lambda v: 255 - v))
    out = io.BytesIO()
    photo.save(out, format="JPEG", quality=95)
    return out.getvalue()


def test_a_photo_above_the_upload_limit_is_sent_smaller(browser, server, tmp_path):
    """The page redraws a photo the service would refuse as too large (413) and sends that."""
    from django.conf import settings
    from selenium.webdriver.common.by import By

    data = large_photo_of("7")
    assert len(data) > settings.DIGITS_MAX_UPLOAD_BYTES
    image = tmp_path / "photo.jpg"
    image.write_bytes(data)
    browser.get(server.url("/"))
    main = browser.find_element(By.TAG_NAME, "main")
    assert main.get_attribute("data-max-upload") == str(settings.DIGITS_MAX_UPLOAD_BYTES)
    browser.find_element(By.ID, "file").send_keys(str(image))
    assert wait_for_prediction(browser, timeout=40) == "7"


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


def draw_on_the_pad(browser, pad, strokes) -> None:
    """Draw strokes (unit box, y down) with the mouse, each stroke a press, moves, release."""
    from selenium.webdriver.common.action_chains import ActionChains

    side = pad.size["height"]
    scale, left, top = 0.62 * side, -0.22 * side, -0.31 * side  # offsets from the centre
    for stroke in strokes:
        points = [(left + x * scale, top + y * scale) for x, y in stroke]
        actions = ActionChains(browser, duration=10)
        actions.move_to_element_with_offset(pad, round(points[0][0]), round(points[0][1]))
        actions.click_and_hold()
        at = (round(points[0][0]), round(points[0][1]))
        for x, y in points[1:]:
            step = (round(x) - at[0], round(y) - at[1])
            if step != (0, 0):
                actions.move_by_offset(*step)
                at = (at[0] + step[0], at[1] + step[1])
        actions.release()
        actions.perform()


@pytest.mark.parametrize("name", list(LETTERFORMS))
def test_a_letterform_drawn_on_the_pad_is_read_or_offered(browser, server, name):
    from selenium.webdriver.common.by import By

    digit, strokes = LETTERFORMS[name]
    browser.get(server.url("/"))
    pad = browser.find_element(By.ID, "pad")
    draw_on_the_pad(browser, pad, strokes)
    browser.find_element(By.ID, "send-drawing").click()
    read = wait_for_prediction(browser)
    confidence = float(browser.find_element(By.ID, "confidence").text.rstrip(" %")) / 100
    offered = [b.text for b in browser.find_elements(By.CSS_SELECTOR, "#alternatives button")]
    # Read right, or (unsure) the right digit is one tap away among the alternatives.
    assert read == str(digit) or (confidence < 0.8 and str(digit) in offered), (
        name,
        read,
        confidence,
        offered,
    )


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


def _blend(first: str, second: str, share: float, size: int = 240) -> bytes:
    """A drawing halfway between two digits: ``share`` of ``second``'s ink over ``first``."""
    import io

    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(draw_digit_image(first, size))).convert("L"), float)
    b = np.asarray(Image.open(io.BytesIO(draw_digit_image(second, size))).convert("L"), float)
    mixed = np.minimum(a, 240 - share * (240 - b))
    buffer = io.BytesIO()
    Image.fromarray(mixed.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_unsure_answer_offers_alternatives_and_a_tap_labels_it(browser, server, tmp_path):
    import requests
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    # Find a drawing the model is unsure about (between a 1, a 7 and a 0), through the API.
    unsure = None
    for first, second in (("1", "7"), ("7", "1"), ("0", "7"), ("7", "0"), ("1", "0")):
        for share in (0.3, 0.4, 0.5, 0.6, 0.7):
            image = _blend(first, second, share)
            body = requests.post(
                server.url("/predict/"), files={"image": ("x.png", image)}, timeout=30
            ).json()
            if body["confidence"] < 0.8:
                unsure = image, body
                break
        if unsure:
            break
    assert unsure, "no blended drawing gave a confidence below 0.8"
    image, body = unsure
    path = tmp_path / "unsure.png"
    path.write_bytes(image)
    browser.get(server.url("/"))
    browser.find_element(By.ID, "file").send_keys(str(path))
    assert wait_for_prediction(browser) == str(body["prediction"])
    offered = browser.find_elements(By.CSS_SELECTOR, "#alternatives button.alternative")
    assert [b.text for b in offered] == [str(a["digit"]) for a in body["alternatives"]]
    assert "Or maybe" in browser.find_element(By.ID, "alternatives").text
    offered[0].click()
    label = body["alternatives"][0]["digit"]
    WebDriverWait(browser, 10).until(lambda b: f"recorded {label}" in b.page_source)


def test_a_sure_answer_offers_no_alternatives(browser, server, tmp_path):
    import requests
    from selenium.webdriver.common.by import By

    image = draw_digit_image("7", size=240)
    body = requests.post(server.url("/predict/"), files={"image": ("7.png", image)}, timeout=30)
    assert body.json()["confidence"] >= 0.8
    path = tmp_path / "seven.png"
    path.write_bytes(image)
    browser.get(server.url("/"))
    browser.find_element(By.ID, "file").send_keys(str(path))
    assert wait_for_prediction(browser) == "7"
    assert not browser.find_elements(By.ID, "alternatives")
