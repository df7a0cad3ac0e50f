"""What ``python -m transferlib try`` hands over, opened as a user opens it, offline.

Runs ``try`` on 3 classes of the course's photos, starts the ``app.py`` it wrote on 127.0.0.1,
uploads a photo in headless Chromium and reads the prediction and the prediction set from the
page; they must be what ``tl.load_predictor`` and the saved threshold give for that photo. Then
opens ``report.html`` from disk and checks that each of its figures loads. The same for a CSV of
the course's tweets: a text typed into the page. Every request to another host is refused and
recorded: the page and the report must need none. Screenshots go to ``build/test-artifacts/``.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from urllib.parse import urlparse

import numpy as np
import pytest
from browser import ARTIFACTS, CHROMIUM, FLAGS, ROOT, browser_or_skip, free_port

import transferlib as tl

PHOTOS = ROOT / "datasets" / "tuxpaint_photos"
CLASSES = ("bird", "flower", "fruit")


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (Playwright's sync API runs one at a time in a process)."""
    sync_playwright = browser_or_skip()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def handed_over(browser, tmp_path_factory):
    data = tmp_path_factory.mktemp("my_photos")
    for c in CLASSES:
        (data / c).mkdir()
        for path in sorted((PHOTOS / c).glob("*.png"))[:6]:
            shutil.copy(path, data / c / path.name)
    for url, out in _served(data, tmp_path_factory):
        yield browser, url, out


@pytest.fixture(scope="module")
def texts_handed_over(browser, tmp_path_factory):
    """12 tweets of each sentiment in a CSV; one split into folds, to keep the test short."""
    tweets = tl.load_dataset("tweet_sentiment", "train")
    path = tmp_path_factory.mktemp("my_texts") / "tweets.csv"
    rows = [(tweets.texts[i], tweets.classes[tweets.targets[i]])     # the file is in label order: a sample
            for i in np.random.default_rng(0).choice(len(tweets), 400, replace=False)]
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("text", "label")] + [r for c in tweets.classes for r in
                                                       [x for x in rows if x[1] == c][:12]])
    for url, out in _served(path, tmp_path_factory, "--splits", "1"):
        yield browser, url, out


def _served(data, tmp_path_factory, *options):
    """``try`` on ``data``, then its app.py served on 127.0.0.1: (the app's address, the folder written)."""
    out = tmp_path_factory.mktemp("my_model")
    run = subprocess.run([sys.executable, "-m", "transferlib", "try", str(data), "--minutes", "3", "--out", str(out),
                          *options], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    port = free_port()
    app = subprocess.Popen([sys.executable, str(out / "app.py"), "--port", str(port)], cwd=out,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, app)
        yield url, out
    finally:
        app.terminate()
        app.wait(timeout=30)


def _wait_for(url: str, app: subprocess.Popen, seconds: float = 120) -> None:
    """Until the app answers, or it exits (its output then says why)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if app.poll() is not None:
            pytest.fail(f"app.py exited with {app.returncode}:\n{app.stdout.read()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"app.py did not answer on {url} within {seconds:.0f} s")


def _offline_page(browser):
    """A page that refuses, and records, every request to another host (file:// stays allowed)."""
    page, outside = browser.new_page(), []

    def route(r):
        url = urlparse(r.request.url)
        if url.scheme in ("file", "data", "blob") or url.hostname == "127.0.0.1":
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()
    page.route("**/*", route)
    return page, outside


def test_the_app_classifies_an_uploaded_photo_offline(handed_over):
    browser, url, out = handed_over
    photo = sorted((PHOTOS / "flower").glob("*.png"))[-1]     # not among the 6 it was trained on
    predictor = tl.load_predictor(out / "model.safetensors")
    expected = predictor.predict(photo)
    sets = json.loads((out / "prediction_sets.json").read_text())
    members = [c for c, p in expected.probabilities.items() if 1 - p <= sets["threshold"]]
    page, outside = _offline_page(browser)
    page.goto(url, wait_until="networkidle")
    page.get_by_text("What is in this photo?").first.wait_for()
    page.locator("input[type=file]").first.set_input_files(str(photo))
    said = page.locator("#prediction-set")
    said.get_by_text("Prediction set:").wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "app_prediction.png"), full_page=True)
    text = said.inner_text()
    shown = text.split("Prediction set:")[1].split(".")[0].strip()
    assert shown.split(" (")[0] == (", ".join(members) or "empty"), f"the page's set {shown!r}, the saved " \
        f"threshold's {members}"
    panel = page.locator("#top-classes").inner_text()
    top = page.locator("#top-classes [data-testid=label-output-value]").inner_text().strip()
    assert top == expected.label, f"the page puts {top!r} first; load_predictor says {expected.label!r}\n{panel}"
    shown = {c: float(p) / 100 for c, p in re.findall(r"^(\w+)\s+(\d+)%$", panel, re.M)}
    assert shown.keys() == expected.probabilities.keys(), panel
    assert all(abs(shown[c] - p) <= 0.006 for c, p in expected.probabilities.items()), (shown, expected)
    assert not outside, f"the app asked for files off this machine: {outside[:5]}"


def test_the_app_classifies_a_typed_text_offline(texts_handed_over):
    browser, url, out = texts_handed_over
    text = "What a wonderful morning, the best coffee in town!"
    expected = tl.load_predictor(out / "model.safetensors").predict(text)
    sets = json.loads((out / "prediction_sets.json").read_text())
    members = [c for c, p in expected.probabilities.items() if 1 - p <= sets["threshold"]]
    page, outside = _offline_page(browser)
    page.goto(url, wait_until="networkidle")
    page.get_by_text("What is this text?").first.wait_for()
    page.locator("#your-text textarea").fill(text)
    page.locator("#classify").click()
    said = page.locator("#prediction-set")
    said.get_by_text("Prediction set:").wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "app_text_prediction.png"), full_page=True)
    shown = said.inner_text().split("Prediction set:")[1].split(".")[0].strip()
    assert shown.split(" (")[0] == (", ".join(members) or "empty"), f"the page's set {shown!r}, the saved " \
        f"threshold's {members}"
    top = page.locator("#top-classes [data-testid=label-output-value]").inner_text().strip()
    assert top == expected.label, f"the page puts {top!r} first; load_predictor says {expected.label!r}"
    assert not outside, f"the app asked for files off this machine: {outside[:5]}"


def test_the_report_opens_offline_with_every_figure(handed_over):
    browser, _, out = handed_over
    page, outside = _offline_page(browser)
    page.goto((out / "report.html").as_uri(), wait_until="load")
    sizes = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.alt])")
    assert len(sizes) >= 4, f"{len(sizes)} figures in report.html"
    broken = [alt for complete, width, alt in sizes if not complete or width == 0]
    assert not broken, f"figures that do not load: {broken}"
    assert page.locator("table").count() >= 3 and "95% interval" in page.inner_text("body")
    page.screenshot(path=str(ARTIFACTS / "try_report.png"), full_page=True)
    assert not outside, f"the report asked for files off this machine: {outside[:5]}"
