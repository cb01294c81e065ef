"""The page of ``rnnkit serve`` in a real browser: Playwright drives Chromium against a live
server of tiny trained runs (``tests/serve/conftest.py``), performs each interaction and checks
what is on the page against the API's answer for the same input.

Each test saves a screenshot into its ``tmp_path``; with ``RNNKIT_DOCS_SCREENSHOTS=docs/figures``
the views are also written as ``serving-<view>.png`` for ``docs/serving.md``.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - CI installs it
    pytest.skip("playwright is not installed (pip install playwright)", allow_module_level=True)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():  # pragma: no cover - CI installs it with apt
    pytest.skip("no chromium binary (apt-get install chromium)", allow_module_level=True)

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SENTENCE = "man in motorized wheelchair medium skin tone"  # one the translation run trained on


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium, one per module."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def runs(live_server: str) -> dict[str, dict[str, Any]]:
    """``GET /v1/runs`` by task name."""
    answer = httpx.get(f"{live_server}/v1/runs", timeout=30).json()
    return {run["task"]: run for run in answer["runs"]}


@pytest.fixture
def page(browser: Browser, live_server: str) -> Iterator[Page]:
    """A fresh page on the server's ``/``; fails the test on any script error or any request
    that leaves the server."""
    context = browser.new_context(viewport={"width": 960, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    errors: list[str] = []
    elsewhere: list[str] = []
    tab.on("pageerror", lambda err: errors.append(str(err)))
    tab.on(
        "request",
        lambda r: None if r.url.startswith((live_server, "data:")) else elsewhere.append(r.url),
    )
    tab.goto(f"{live_server}/")
    tab.wait_for_selector("#run option", state="attached")
    yield tab
    context.close()
    assert not errors, f"script errors on the page: {errors}"
    assert not elsewhere, f"the page asked for files outside the server: {elsewhere}"


def predict(server: str, run: dict[str, Any], body: dict[str, Any]) -> Any:
    """``POST /v1/{run}/predict``: the JSON answer (a 4xx answer too)."""
    return httpx.post(f"{server}/v1/{run['name']}/predict", json=body, timeout=60).json()


def submit(page: Page, run: dict[str, Any], text: str | None = None, **options: Any) -> None:
    """Pick ``run``, type ``text``, fill options by name, press Run and wait for the view."""
    page.select_option("#run", run["name"])
    if text is not None:
        page.fill("#text", text)
    if options and not page.eval_on_selector("#options-box", "box => box.open"):
        page.click("#options-box summary")
    for name, value in options.items():
        page.fill(f"#opt-{name}", str(value))
    page.click("#submit")
    page.wait_for_selector(f"#result[data-view='{run['task']}'] .view")
    page.wait_for_selector("#submit:enabled")


def screenshot(page: Page, tmp_path: Path, view: str) -> Path:
    """The page as ``tmp_path/<view>.png``, and as ``serving-<view>.png`` in the folder that
    ``RNNKIT_DOCS_SCREENSHOTS`` names (for the docs; palette PNGs, a few tens of KB)."""
    path = tmp_path / f"{view}.png"
    page.screenshot(path=str(path), full_page=True)
    folder = os.environ.get("RNNKIT_DOCS_SCREENSHOTS")
    if folder:
        from PIL import Image

        Path(folder).mkdir(parents=True, exist_ok=True)
        with Image.open(path) as image:
            small = image.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
            small.save(Path(folder) / f"serving-{view}.png", optimize=True)
    return path


# ------------------------------------------------------------------------------- the page


def test_the_page_lists_every_run_and_loads_nothing_but_its_own_files(
    page: Page, runs: dict[str, dict[str, Any]], live_server: str
) -> None:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(urlsplit(r.url).path))
    page.reload()
    page.wait_for_selector("#run option", state="attached")
    names = page.eval_on_selector_all("#run option", "options => options.map(o => o.value)")
    assert sorted(names) == sorted(run["name"] for run in runs.values())
    assert sorted(set(seen)) == ["/", "/static/app.js", "/static/style.css", "/v1/runs"]


def test_an_empty_input_shows_the_servers_error(
    page: Page, runs: dict[str, dict[str, Any]], live_server: str, tmp_path: Path
) -> None:
    run = runs["translation"]
    expected = predict(live_server, run, {"inputs": [""]})["detail"]
    page.select_option("#run", run["name"])
    page.fill("#text", "")
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error") == expected
    assert page.get_attribute("#error", "role") == "alert"
    screenshot(page, tmp_path, "error")


# ------------------------------------------------------------------------------- translation


def test_translation_shows_the_apis_translation_and_a_cell_per_token_pair(
    page: Page, runs: dict[str, dict[str, Any]], live_server: str, tmp_path: Path
) -> None:
    run = runs["translation"]
    best = predict(live_server, run, {"inputs": [SENTENCE]})["outputs"][0]["translations"][0]
    submit(page, run, SENTENCE)
    assert page.inner_text(".hypothesis[data-rank='0'] .translation-text") == best["translation"]
    rows, cols = len(best["output_tokens"]), len(best["source_tokens"])
    assert page.locator(".heatmap .cell").count() == rows * cols
    assert page.get_attribute(".heatmap", "data-rows") == str(rows)
    assert page.get_attribute(".heatmap", "data-cols") == str(cols)
    assert page.locator(".heatmap .source-token").all_inner_texts() == best["source_tokens"]
    assert page.locator(".heatmap .target-token").all_inner_texts() == best["output_tokens"]
    screenshot(page, tmp_path, "translation")


def test_hovering_a_heatmap_cell_shows_its_weight(
    page: Page, runs: dict[str, dict[str, Any]], live_server: str
) -> None:
    run = runs["translation"]
    best = predict(live_server, run, {"inputs": [SENTENCE]})["outputs"][0]["translations"][0]
    submit(page, run, SENTENCE)
    i, j = len(best["output_tokens"]) - 1, 1
    weight = best["attention"][i][j]
    cell = page.locator(f".heatmap .cell[data-row='{i}'][data-col='{j}']")
    cell.hover()
    text = f"{best['output_tokens'][i]} ← {best['source_tokens'][j]}: {weight:.4f}"
    assert page.inner_text(".translation .readout") == text
    assert cell.get_attribute("title") == text
    assert float(cell.get_attribute("data-weight") or "nan") == pytest.approx(weight)


def test_an_n_best_list_shows_each_hypothesis_and_its_heatmap(
    page: Page, runs: dict[str, dict[str, Any]], live_server: str
) -> None:
    run = runs["translation"]
    body = {"inputs": [SENTENCE], "beam_size": 3, "n_best": 3}
    found = predict(live_server, run, body)["outputs"][0]["translations"]
    submit(page, run, SENTENCE, beam_size=3, n_best=3)
    assert page.locator(".translation-text").all_inner_texts() == [t["translation"] for t in found]
    page.click(".hypothesis[data-rank='2']")
    last = found[2]
    assert page.get_attribute(".hypothesis[data-rank='2']", "aria-pressed") == "true"
    assert page.get_attribute(".hypothesis[data-rank='0']", "aria-pressed") == "false"
    assert page.locator(".heatmap .cell").count() == (
        len(last["output_tokens"]) * len(last["source_tokens"])
    )


# ------------------------------------------------------------------------------- captioning


def overlay_alpha(page: Page, row: float, col: float) -> int:
    """The overlay's alpha at the centre of grid cell (row, col)."""
    return int(
        page.eval_on_selector(
            ".overlay",
            """(canvas, [row, col]) => {
                const [gh, gw] = canvas.dataset.grid.split("x").map(Number);
                const x = Math.floor((col + 0.5) * canvas.width / gw);
                const y = Math.floor((row + 0.5) * canvas.height / gh);
                return canvas.getContext("2d").getImageData(x, y, 1, 1).data[3];
            }""",
            [row, col],
        )
    )


def test_each_caption_word_lays_its_attention_grid_over_the_image(
    page: Page,
    runs: dict[str, dict[str, Any]],
    live_server: str,
    sample_image: Path,
    tmp_path: Path,
) -> None:
    run = runs["captioning"]
    encoded = base64.b64encode(sample_image.read_bytes()).decode()
    answer = predict(live_server, run, {"inputs": [encoded]})["outputs"][0]
    best, (gh, gw) = answer["captions"][0], answer["grid"]
    page.select_option("#run", run["name"])
    page.set_input_files("#image", str(sample_image))
    size = sample_image.stat().st_size
    shown = f"{size} bytes" if size < 1024 else f"{int(size / 1024 + 0.5)} KB"
    expect(page.locator("#drop-hint")).to_have_text(f"{sample_image.name} ({shown})")
    page.click("#submit")
    page.wait_for_selector(".caption-word")
    assert page.inner_text(".caption-text") == best["caption"]
    words = page.locator(".caption-word[data-rank='0']")
    assert words.all_inner_texts() == best["tokens"]
    assert page.locator(".overlay").is_hidden()
    for k, token in enumerate(best["tokens"]):
        if k == len(best["tokens"]) - 1:  # the last by keyboard: focus and Enter
            words.nth(k).focus()
            page.keyboard.press("Enter")
        else:
            words.nth(k).click()
        assert page.locator(".overlay").is_visible()
        assert page.get_attribute(".overlay", "data-index") == str(k)
        assert page.get_attribute(".overlay", "data-word") == token
        assert page.get_attribute(".overlay", "data-grid") == f"{gh}x{gw}"
        assert words.nth(k).get_attribute("aria-pressed") == "true"
        # The darkening at each cell's centre is 200 * (1 - w / max) of that word's grid.
        grid = best["attention"][k]
        top = max(max(row) for row in grid)
        for r, c in [(0, 0), (gh - 1, gw - 1), (gh // 2, gw // 2)]:
            expected = round(200 * (1 - grid[r][c] / top))
            assert overlay_alpha(page, r, c) == pytest.approx(expected, abs=12)
    size = page.eval_on_selector(".overlay", "c => [c.width, c.height]")
    shown = page.eval_on_selector(".captioned", "i => [i.clientWidth, i.clientHeight]")
    assert size == shown
    peaked = max(range(len(best["tokens"])), key=lambda k: max(map(max, best["attention"][k])))
    words.nth(peaked).click()  # the screenshot shows the word that looks most at one place
    screenshot(page, tmp_path, "captioning")


def test_an_image_dropped_on_the_page_is_captioned(
    page: Page, runs: dict[str, dict[str, Any]], live_server: str, sample_image: Path
) -> None:
    run = runs["captioning"]
    encoded = base64.b64encode(sample_image.read_bytes()).decode()
    caption = predict(live_server, run, {"inputs": [encoded]})["outputs"][0]["captions"][0]
    page.select_option("#run", run["name"])
    page.eval_on_selector(
        "#drop-zone",
        """(zone, data) => {
            const bytes = Uint8Array.from(atob(data), (ch) => ch.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
            zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true }));
        }""",
        encoded,
    )
    expect(page.locator("#drop-hint")).to_contain_text("dropped.png (")
    page.click("#submit")
    page.wait_for_selector(".caption-text")
    assert page.inner_text(".caption-text") == caption["caption"]


# ------------------------------------------------------------------------------- forecasting


def history(run: dict[str, Any], served_runs: dict[str, Path]) -> str:
    """CSV text of the series the forecasting run trained on (its ``data.path``)."""
    path = Path(run["config"]["data"]["path"])
    if not path.is_absolute():
        path = served_runs["forecasting"] / path
    return path.read_text(encoding="utf-8")


def test_the_forecast_is_drawn_with_its_band_and_a_point_per_step(
    page: Page,
    runs: dict[str, dict[str, Any]],
    live_server: str,
    served_runs: dict[str, Path],
    tmp_path: Path,
) -> None:
    run = runs["forecasting"]
    series = history(run, served_runs)
    horizon = 5
    out = predict(live_server, run, {"inputs": [series], "horizon": horizon})["outputs"][0]
    out = out["output"]
    levels = sorted(int(k.removeprefix("lower_")) for k in out if k.startswith("lower_"))
    submit(page, run, series, horizon=horizon)
    points = page.locator(".chart .forecast-point")
    assert points.count() == horizon == len(out["forecast"])
    bands = page.locator(".chart polygon.band")
    assert sorted(int(b.get_attribute("data-level") or 0) for b in bands.all()) == levels
    assert levels, "the run gives no interval"
    for polygon in bands.all():  # H upper and H lower corners
        assert len((polygon.get_attribute("points") or "").split()) == 2 * horizon
    time = run["config"]["data"]["time_column"]
    titles = [points.nth(i).locator("title").inner_html() for i in range(horizon)]
    assert titles == [f"{t}: {v:.2f}" for t, v in zip(out[time], out["forecast"], strict=True)]
    shown = max(4 * horizon, run["config"]["data"]["lookback"])
    rows = len(series.strip().splitlines()) - 1
    drawn = page.get_attribute(".chart polyline.history", "points") or ""
    assert len(drawn.split()) == min(rows, shown)
    screenshot(page, tmp_path, "forecasting")


def test_numbers_pasted_without_dates_are_forecast_from_the_start_date(
    page: Page, runs: dict[str, dict[str, Any]], live_server: str, served_runs: dict[str, Path]
) -> None:
    run = runs["forecasting"]
    data = run["config"]["data"]
    lines = history(run, served_runs).strip().splitlines()
    column = lines[0].split(",").index(data["target"])
    values = [float(line.split(",")[column]) for line in lines[1:]]
    body = {"inputs": [{"start": "2001-01-01", data["target"]: values}], "horizon": 3}
    out = predict(live_server, run, body)["outputs"][0]["output"]
    page.select_option("#run", run["name"])
    page.fill("#series-start", "2001-01-01")
    submit(page, run, "\n".join(f"{v:.17g}" for v in values), horizon=3)
    titles = page.locator(".chart .forecast-point title").evaluate_all(
        "titles => titles.map(t => t.textContent)"
    )
    time = data["time_column"]
    assert titles == [f"{t}: {v:.2f}" for t, v in zip(out[time], out["forecast"], strict=True)]


# ------------------------------------------------------------------------------- classification


def test_the_class_is_shown_with_its_bars_and_words_shaded_by_attention(
    page: Page, runs: dict[str, dict[str, Any]], live_server: str, tmp_path: Path
) -> None:
    run = runs["classification"]
    text = "the plot of the film was great"
    answer = predict(live_server, run, {"inputs": [text]})["outputs"][0]
    submit(page, run, text)
    assert page.inner_text("#label") == answer["label"]
    words = page.locator(".classification .word.shaded")
    assert words.count() == len(answer["tokens"]) == len(answer["attention"])
    assert words.all_inner_texts() == [t.removeprefix("▁") or t for t in answer["tokens"]]
    weights = [float(w.get_attribute("data-weight") or "nan") for w in words.all()]
    assert weights == pytest.approx(answer["attention"])
    heaviest = max(range(len(weights)), key=weights.__getitem__)  # the darkest word
    colour = words.nth(heaviest).evaluate("w => getComputedStyle(w).backgroundColor")
    assert colour == "rgb(24, 92, 170)"  # hsl(212, 75%, 38%): the full weight
    bars = page.locator(".classification .bar-row")
    assert bars.count() == len(answer["probabilities"])
    assert page.locator(".classification .bar-name").nth(0).inner_text() == answer["label"]
    screenshot(page, tmp_path, "classification")


# ------------------------------------------------------------------------------- tagging


def test_each_token_is_a_chip_with_its_tag(
    page: Page, runs: dict[str, dict[str, Any]], live_server: str, tmp_path: Path
) -> None:
    run = runs["tagging"]
    sentence = "a c b e d"  # tagged with the next word: C B E D END
    answer = predict(live_server, run, {"inputs": [sentence]})["outputs"][0]
    submit(page, run, sentence)
    chips = page.locator(".tagging .chip")
    assert chips.count() == len(answer["tokens"])
    assert chips.locator("small").all_inner_texts() == answer["tags"]
    if "text" in answer:
        assert page.inner_text(".tagged-text") == answer["text"]
    screenshot(page, tmp_path, "tagging")


# ------------------------------------------------------------------------------- language model


def test_next_word_candidates_are_top_k_bars_and_a_click_appends_one(
    page: Page, runs: dict[str, dict[str, Any]], live_server: str, tmp_path: Path
) -> None:
    run = runs["language_model"]
    prompt, k = "And God said,", 4
    answer = predict(live_server, run, {"inputs": [prompt], "top_k": k})["outputs"][0]
    submit(page, run, prompt, top_k=k)
    bars = page.locator(".language_model .candidate")
    assert bars.count() == k == len(answer["candidates"])
    names = page.locator(".language_model .bar-name").all_inner_texts()
    assert names == [c["text"] for c in answer["candidates"]]
    widths = page.locator(".language_model .bar").evaluate_all(
        "bars => bars.map(b => parseFloat(b.style.width))"
    )
    percents = [100 * c["probability"] for c in answer["candidates"]]
    assert widths == pytest.approx(percents, abs=1e-3)  # CSS keeps 4 decimals
    screenshot(page, tmp_path, "language-model")
    first = answer["candidates"][0]
    bars.nth(0).click()
    page.wait_for_function(f"document.querySelector('#text').value.length > {len(prompt)}")
    page.wait_for_selector("#submit:enabled")
    assert first["text"] in page.input_value("#text")[len(prompt) :]


def test_generate_mode_shows_the_apis_continuation(
    page: Page, runs: dict[str, dict[str, Any]], live_server: str, tmp_path: Path
) -> None:
    run = runs["language_model"]
    prompt = "And God said,"
    body = {"inputs": [prompt], "max_tokens": 6, "seed": 3}
    text = predict(live_server, run, body)["outputs"][0]["text"]
    page.select_option("#run", run["name"])
    page.check("input[name=mode][value=generate]")
    page.fill("#max-tokens", "6")
    page.click("#options-box summary")
    page.fill("#opt-seed", "3")
    page.fill("#text", prompt)
    page.click("#submit")
    page.wait_for_selector(".generated")
    assert page.inner_text(".generated") == text
    assert page.inner_text(".generated strong") == prompt
    screenshot(page, tmp_path, "generate")
