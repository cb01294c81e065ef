"""The HTTP API: every task's answers equal its predictor's ``to_json``; runs, health, metrics and
the OpenAPI schema; every limit with its exact message; dynamic batching equal to one request at
a time."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from rnnkit import api
from rnnkit.serve import ServeConfig, create_app
from rnnkit.serve.app import ServedRun
from rnnkit.serve.schemas import response_model
from tests.serve.conftest import free_port

SENTENCES = ["a red circle", "the cat", "a blue square on white", "blue"]


def series_csv(served_runs: dict[str, Path]) -> str:
    return (served_runs["forecasting"].parent.parent / "sales.csv").read_text()


def image_b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def direct(run: Path, inputs: list[Any], options: dict[str, Any]) -> list[Any]:
    """What ``rnnkit predict RUN --json`` prints, through the predictor in this process."""
    predictor = api.load_predictor(run, threads=1)
    parsed = [predictor.from_json(x, f"inputs[{i}]") for i, x in enumerate(inputs)]
    outputs = predictor.predict(parsed, options)
    found = [predictor.to_json(i, o) for i, o in zip(parsed, outputs, strict=True)]
    return json.loads(json.dumps(found, default=str))


def assert_same(found: Any, expected: Any, where: str = "") -> None:
    """Equal JSON, floats within 1e-5 (a batch sums in another order than one input alone)."""
    if isinstance(expected, float) and isinstance(found, int | float):
        assert found == pytest.approx(expected, rel=1e-5, abs=1e-6), where
    elif isinstance(expected, dict):
        assert isinstance(found, dict) and found.keys() == expected.keys(), where
        for key in expected:
            assert_same(found[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(found, list) and len(found) == len(expected), where
        for i, (f, e) in enumerate(zip(found, expected, strict=True)):
            assert_same(f, e, f"{where}[{i}]")
    else:
        assert found == expected, where


# --------------------------------------------------------------------------- each task


def test_runs_health_and_schema_list_every_run(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "runs": 6}
    runs = {r["name"]: r for r in client.get("/v1/runs").json()["runs"]}
    assert {n: r["input"] for n, r in runs.items()} == {
        "translation": "text",
        "captioning": "image",
        "forecasting": "series",
        "classification": "text",
        "tagging": "text",
        "language_model": "text",
    }
    options = {n: [o["name"] for o in r["options"]] for n, r in runs.items()}
    assert "attention_plot" not in options["translation"]  # a server path: never offered
    assert options["forecasting"] == ["horizon"]
    assert options["language_model"] == ["top_k", "max_tokens", "temperature", "top_p", "seed"]
    assert [n for n, r in runs.items() if r["generate"]] == ["language_model"]
    assert runs["translation"]["config"]["task"] == "translation"
    schema = client.get("/openapi.json").json()
    for name in runs:
        assert f"/v1/{name}/predict" in schema["paths"]
    request = schema["components"]["schemas"]["TranslationRequest"]
    assert {"inputs", "beam_size", "n_best", "max_len_a"} <= set(request["properties"])
    assert request["additionalProperties"] is False


@pytest.mark.parametrize(
    ("task", "options"),
    [
        ("translation", {"beam_size": 3, "n_best": 2}),
        ("classification", {}),
        ("tagging", {}),
        ("language_model", {"top_k": 4}),
    ],
)
def test_text_tasks_answer_what_predict_json_prints(
    client: TestClient, served_runs: dict[str, Path], task: str, options: dict[str, Any]
) -> None:
    inputs = SENTENCES[:3]
    response = client.post(f"/v1/{task}/predict", json={"inputs": inputs, **options})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["run"] == task
    assert body["outputs"] == direct(served_runs[task], inputs, options)


def test_translation_attention_is_output_by_source_tokens(client: TestClient) -> None:
    out = client.post("/v1/translation/predict", json={"inputs": ["a red circle"]}).json()
    best = out["outputs"][0]["translations"][0]
    attention = best["attention"]
    assert len(attention) == len(best["output_tokens"])
    assert {len(row) for row in attention} == {len(best["source_tokens"])}
    assert all(abs(sum(row) - 1) < 1e-3 for row in attention)


def test_captioning_reads_base64_and_data_urls(
    client: TestClient, served_runs: dict[str, Path], sample_image: Path
) -> None:
    encoded = image_b64(sample_image)
    answers = []
    for value in (encoded, f"data:image/png;base64,{encoded}"):
        response = client.post("/v1/captioning/predict", json={"inputs": [value], "beam_size": 2})
        assert response.status_code == 200, response.text
        answers.append(response.json()["outputs"][0])
    assert (
        answers[0]
        == answers[1]
        == direct(served_runs["captioning"], [encoded], {"beam_size": 2})[0]
    )
    caption = answers[0]["captions"][0]
    assert caption["caption"] in ("a picture of a red circle", "a red circle on white")
    assert answers[0]["grid"] == [2, 2]
    assert len(caption["attention"]) == len(caption["tokens"])


def test_forecasting_reads_csv_text_and_columns_alike(
    client: TestClient, served_runs: dict[str, Path]
) -> None:
    text = series_csv(served_runs)
    rows = [line.split(",") for line in text.strip().splitlines()[1:]]
    months, sales = [r[0] for r in rows], [float(r[1]) for r in rows]
    bodies = [
        {"inputs": [text], "horizon": 4},
        {"inputs": [{"month": months, "sales": sales}], "horizon": 4},
        {"inputs": [{"start": months[0], "sales": sales}], "horizon": 4},
        {"inputs": [{"start": months[0], "values": sales}], "horizon": 4},
    ]
    found = []
    for body in bodies:
        response = client.post("/v1/forecasting/predict", json=body)
        assert response.status_code == 200, response.text
        found.append(response.json()["outputs"][0]["output"])
    assert found[0] == found[1] == found[2] == found[3]
    assert found[0]["month"] == ["2006-01-01", "2006-02-01", "2006-03-01", "2006-04-01"]
    assert all(
        lo <= f <= hi
        for lo, f, hi in zip(
            found[0]["lower_80"], found[0]["forecast"], found[0]["upper_80"], strict=True
        )
    )
    assert found[0] == direct(served_runs["forecasting"], [text], {"horizon": 4})[0]["output"]


def test_generation_writes_text_after_the_prompt(client: TestClient) -> None:
    body = {"inputs": ["And God"], "max_tokens": 6, "seed": 3, "temperature": 0.8}
    first = client.post("/v1/language_model/predict", json=body).json()["outputs"][0]
    again = client.post("/v1/language_model/predict", json=body).json()["outputs"][0]
    assert first == again  # seeded
    assert first["input"] == "And God" and first["text"].startswith("And God")
    assert len(first["text"]) > len("And God")


def test_uploads_answer_as_json_inputs_do(
    client: TestClient, served_runs: dict[str, Path], sample_image: Path
) -> None:
    files = [("files", ("circle.png", sample_image.read_bytes(), "image/png"))]
    response = client.post(
        "/v1/captioning/upload", files=files, data={"options": '{"beam_size": 2}'}
    )
    assert response.status_code == 200, response.text
    uploaded = response.json()["outputs"][0]
    posted = client.post(
        "/v1/captioning/predict", json={"inputs": [image_b64(sample_image)], "beam_size": 2}
    ).json()["outputs"][0]
    assert uploaded == {**posted, "image": "circle.png"}
    series = [("files", ("sales.csv", series_csv(served_runs).encode(), "text/csv"))]
    response = client.post(
        "/v1/forecasting/upload", files=series, data={"options": '{"horizon": 2}'}
    )
    assert response.json()["outputs"][0]["output"]["month"] == ["2006-01-01", "2006-02-01"]


@pytest.mark.parametrize(
    ("run", "content", "options", "detail"),
    [
        ("tagging", b"\xff\xfe", "{}", "t.txt: not UTF-8 text"),
        (
            "tagging",
            b"a b",
            "{",
            "options: not JSON (Expecting property name enclosed in double quotes)",
        ),
        ("tagging", b"a b", "[]", "options: expected a JSON object"),
        ("tagging", b"a b", '{"beam_size": 2}', "beam_size: Extra inputs are not permitted"),
        (
            "captioning",
            b"GIF89a",
            "{}",
            "input 1: t.txt: truncated or corrupt image (starts like a GIF file but its header cannot be read)",
        ),
    ],
)
def test_bad_uploads_get_one_line(
    client: TestClient, run: str, content: bytes, options: str, detail: str
) -> None:
    files = [("files", ("t.txt", content, "text/plain"))]
    response = client.post(f"/v1/{run}/upload", files=files, data={"options": options})
    assert (response.status_code, response.json()) == (422, {"detail": detail})


def test_every_answer_fits_its_runs_response_model(
    client: TestClient, served_runs: dict[str, Path], sample_image: Path
) -> None:
    bodies = {
        "translation": {"inputs": SENTENCES, "n_best": 2},
        "captioning": {"inputs": [image_b64(sample_image)], "n_best": 2},
        "forecasting": {"inputs": [series_csv(served_runs)]},
        "classification": {"inputs": SENTENCES},
        "tagging": {"inputs": ["a b c"]},
        "language_model": {"inputs": ["And God"]},
    }
    generation = {"inputs": ["And God"], "max_tokens": 3}
    schema = client.get("/openapi.json").json()
    runs = client.app.state.runs  # type: ignore[attr-defined]
    for name, body in [*bodies.items(), ("language_model", generation)]:
        answer = client.post(f"/v1/{name}/predict", json=body).json()
        model = response_model(name, runs[name].predictor)
        assert model.model_validate(answer).model_dump(exclude_none=True) == answer
        ref = schema["paths"][f"/v1/{name}/predict"]["post"]["responses"]["200"]
        assert ref["content"]["application/json"]["schema"]["$ref"].endswith(model.__name__)
    components = schema["components"]["schemas"]
    assert {"TranslationsJSON", "CaptionsJSON", "ForecastJSON", "PredictionJSON"} <= set(components)
    assert {"TaggedJSON", "NextTokensJSON", "GeneratedText"} <= set(components)


# ------------------------------------------------------------------------ bad requests


@pytest.mark.parametrize(
    ("path", "body", "status", "detail"),
    [
        (
            "/v1/nope/predict",
            {"inputs": ["x"]},
            404,
            "no run named 'nope'; loaded: translation, captioning, forecasting, classification, tagging, language_model",
        ),
        ("/v1/translation/predict", {"inputs": []}, 422, "inputs: empty; give at least one input"),
        (
            "/v1/translation/predict",
            {"inputs": ["x"], "beam": 3},
            422,
            "beam: Extra inputs are not permitted",
        ),
        (
            "/v1/translation/predict",
            {"inputs": [3]},
            422,
            "inputs.0: Input should be a valid string",
        ),
        ("/v1/translation/predict", {"inputs": "x"}, 422, "inputs: Input should be a valid list"),
        ("/v1/translation/predict", {}, 422, "inputs: Field required"),
        (
            "/v1/translation/predict",
            {"inputs": [""]},
            422,
            "input 1 is empty: nothing to translate",
        ),
        (
            "/v1/translation/predict",
            {"inputs": ["x"], "beam_size": 0},
            422,
            "--beam must be at least 1, got 0",
        ),
        (
            "/v1/captioning/predict",
            {"inputs": ["not base64!"]},
            422,
            "inputs[0]: not base64 (give the image file's bytes in base64)",
        ),
        (
            "/v1/captioning/predict",
            {"inputs": [base64.b64encode(b"\x89PNG\r\n\x1a\nxx").decode()]},
            422,
            "input 1: inputs[0]: truncated or corrupt image (starts like a PNG file but its header cannot be read)",
        ),
        (
            "/v1/captioning/predict",
            {"inputs": [{"image": "x"}]},
            422,
            "inputs.0: Input should be a valid string",
        ),
        (
            "/v1/forecasting/predict",
            {"inputs": [[1, 2]]},
            422,
            "inputs.0.str: Input should be a valid string",
        ),
        (
            "/v1/forecasting/predict",
            {"inputs": [{"start": "x", "sales": [1.0]}]},
            422,
            "inputs[0]: 'start' is not a date: 'x'",
        ),
        (
            "/v1/language_model/predict",
            {"inputs": ["x"], "max_tokens": 0},
            422,
            "max_tokens: must be at least 1",
        ),
    ],
)
def test_bad_requests_get_one_line_naming_the_problem(
    client: TestClient, path: str, body: Any, status: int, detail: str
) -> None:
    response = client.post(path, json=body)
    assert (response.status_code, response.json()) == (status, {"detail": detail})


def test_non_finite_numbers_are_refused(client: TestClient) -> None:
    body = '{"inputs": ["x"], "length_penalty": NaN}'
    response = client.post(
        "/v1/translation/predict", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("length_penalty: Input should be a finite number")


# ------------------------------------------------------------------------------ limits


@pytest.fixture(scope="module")
def strict(served_runs: dict[str, Path]) -> TestClient:
    """An app of translation and forecasting under small limits."""
    config = ServeConfig(
        max_body_bytes=2000,
        max_inputs=3,
        max_chars=40,
        max_tokens=5,
        max_steps=50,
        max_decode_len=30,
    )
    runs = [served_runs["translation"], served_runs["forecasting"], served_runs["language_model"]]
    return TestClient(create_app(runs, config))


@pytest.mark.parametrize(
    ("run", "body", "status", "detail"),
    [
        (
            "translation",
            {"inputs": ["x" * 3000]},
            413,
            "request body over 2000 bytes (--max-body-bytes)",
        ),
        (
            "translation",
            {"inputs": ["a"] * 4},
            422,
            "inputs: 4 inputs, more than the 3 a request may have (--max-inputs)",
        ),
        (
            "translation",
            {"inputs": ["a", "b " * 30]},
            422,
            "inputs[1]: 60 characters, more than the 40 an input may have (--max-chars)",
        ),
        (
            "translation",
            {"inputs": ["a b c d e f"]},
            422,
            "inputs[0]: 6 tokens, more than the 5 an input may have (--max-tokens)",
        ),
        (
            "translation",
            {"inputs": ["a b"], "max_len_a": 2.0, "max_len_b": 27},
            422,
            "max_len_a * S + max_len_b = 2 * 2 + 27 is more than the 30 tokens an output may have (--max-decode-len)",
        ),
        (
            "translation",
            {"inputs": ["a"], "beam_size": 17},
            422,
            "beam_size: 17 is more than the 16 allowed (the server's beam limit)",
        ),
        (
            "forecasting",
            {"inputs": ["x"], "horizon": 31},
            422,
            "horizon: 31 is more than the 30 allowed (--max-decode-len)",
        ),
        (
            "forecasting",
            {"inputs": [{"start": "2000-01-01", "sales": [1.0] * 60}]},
            422,
            "inputs[0]: 60 steps, more than the 50 a series may have (--max-steps)",
        ),
        (
            "language_model",
            {"inputs": ["And"], "max_tokens": 31},
            422,
            "max_tokens: 31 is more than the 30 allowed (--max-decode-len)",
        ),
    ],
)
def test_each_limit_has_its_status_and_message(
    strict: TestClient, run: str, body: Any, status: int, detail: str
) -> None:
    response = strict.post(f"/v1/{run}/predict", json=body)
    assert (response.status_code, response.json()) == (status, {"detail": detail})


def test_a_streamed_body_over_the_limit_is_refused(strict: TestClient) -> None:
    def chunks() -> Any:
        for _ in range(10):
            yield b'{"inputs": ["' + b"a" * 500

    response = strict.post("/v1/translation/predict", content=chunks())
    assert response.status_code == 413


def _blocking(
    app_runs: dict[str, ServedRun], release: threading.Event, entered: threading.Event
) -> None:
    run = app_runs["translation"]
    work = run.work

    def slow(inputs: Any, options: Any) -> Any:
        entered.set()
        release.wait(10)
        return work(inputs, options)

    run.batcher.work = slow


def test_a_slow_request_times_out_with_504(served_runs: dict[str, Path]) -> None:
    app = create_app([served_runs["translation"]], ServeConfig(timeout_s=0.2))
    release, entered = threading.Event(), threading.Event()
    _blocking(app.state.runs, release, entered)
    with TestClient(app) as client:
        started = time.monotonic()
        response = client.post("/v1/translation/predict", json={"inputs": ["a"]})
        release.set()
    assert time.monotonic() - started < 5
    assert (response.status_code, response.json()) == (
        504,
        {"detail": "the request took more than 0.2 s (--timeout)"},
    )


def test_requests_over_the_in_flight_bound_get_503_with_retry_after(
    served_runs: dict[str, Path],
) -> None:
    app = create_app([served_runs["translation"]], ServeConfig(max_in_flight=1))
    release, entered = threading.Event(), threading.Event()
    _blocking(app.state.runs, release, entered)
    with TestClient(app) as client:
        first: dict[str, Any] = {}
        thread = threading.Thread(
            target=lambda: first.update(
                r=client.post("/v1/translation/predict", json={"inputs": ["a"]})
            )
        )
        thread.start()
        assert entered.wait(10)
        second = client.post("/v1/translation/predict", json={"inputs": ["a"]})
        release.set()
        thread.join(10)
        metrics = client.get("/metrics").text
    assert second.status_code == 503
    assert second.headers["retry-after"] == "1"
    assert second.json() == {
        "detail": "1 requests are in flight already (--max-in-flight); retry shortly"
    }
    assert first["r"].status_code == 200
    assert 'rnnkit_errors_total{kind="busy",run="translation"} 1.0' in metrics


# --------------------------------------------------------------------- batching, metrics


def test_concurrent_requests_are_batched_and_answer_as_one_at_a_time(
    served_runs: dict[str, Path],
) -> None:
    app = create_app([served_runs["translation"]], ServeConfig(batch_wait_ms=200))
    bodies = [{"inputs": [s], "beam_size": 3} for s in SENTENCES * 2]

    async def together() -> list[Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            responses = await asyncio.gather(
                *(c.post("/v1/translation/predict", json=b) for b in bodies)
            )
            metrics = (await c.get("/metrics")).text
        return [r.json()["outputs"][0] for r in responses], metrics

    outputs, metrics = asyncio.run(together())
    alone = [direct(served_runs["translation"], b["inputs"], {"beam_size": 3})[0] for b in bodies]
    assert_same(outputs, alone)  # the same words, scores and attention
    count = float(re.search(r'rnnkit_batch_inputs_count\{run="translation"\} (\S+)', metrics)[1])  # type: ignore[index]
    total = float(re.search(r'rnnkit_batch_inputs_sum\{run="translation"\} (\S+)', metrics)[1])  # type: ignore[index]
    assert total == len(bodies)
    assert count < len(bodies)  # fewer model calls than requests


def test_options_are_never_mixed_in_a_batch(served_runs: dict[str, Path]) -> None:
    app = create_app([served_runs["translation"]], ServeConfig(batch_wait_ms=200))
    bodies = [{"inputs": ["a red circle"], "beam_size": k, "n_best": k} for k in (1, 2, 3)]

    async def together() -> list[Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return list(
                await asyncio.gather(*(c.post("/v1/translation/predict", json=b) for b in bodies))
            )

    responses = asyncio.run(together())
    assert [len(r.json()["outputs"][0]["translations"]) for r in responses] == [1, 2, 3]


def test_metrics_count_requests_errors_and_latency(served_runs: dict[str, Path]) -> None:
    with TestClient(create_app([served_runs["tagging"]])) as client:
        client.post("/v1/tagging/predict", json={"inputs": ["a b"]})
        client.post("/v1/tagging/predict", json={"inputs": []})
        text = client.get("/metrics").text
    assert 'rnnkit_requests_total{run="tagging",status="200"} 1.0' in text
    assert 'rnnkit_requests_total{run="tagging",status="422"} 1.0' in text
    assert 'rnnkit_errors_total{kind="invalid",run="tagging"} 1.0' in text
    assert 'rnnkit_request_seconds_count{run="tagging"} 2.0' in text
    assert "rnnkit_requests_in_flight 0.0" in text


# -------------------------------------------------------------------------- the command


def test_runs_need_url_names_and_distinct_names(served_runs: dict[str, Path]) -> None:
    run = served_runs["tagging"]
    with pytest.raises(
        ValueError, match=r"^two runs are named 'tagging'; name them with NAME=FOLDER$"
    ):
        create_app([run, run])
    with pytest.raises(ValueError, match="'a b' cannot name a run in a URL"):
        create_app([f"a b={run}"])
    app = create_app([f"tags={run}", run])
    assert {"/v1/tags/predict", "/v1/tagging/predict"} <= {
        getattr(r, "path", "") for r in app.routes
    }


def test_rnnkit_serve_binds_loopback_and_answers(served_runs: dict[str, Path]) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rnnkit",
            "serve",
            str(served_runs["tagging"]),
            "--port",
            str(port),
            "--threads",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert health.json() == {"status": "ok", "runs": 1}
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/tagging/predict", json={"inputs": ["a b"]})
        assert answer.json()["outputs"][0]["tokens"] == ["a", "b"]
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    assert f"Uvicorn running on http://127.0.0.1:{port}" in output


def test_rnnkit_serve_refuses_a_bad_limit(served_runs: dict[str, Path]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rnnkit", "serve", str(served_runs["tagging"]), "--max-inputs", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == "rnnkit: error: --max-inputs: Input should be greater than or equal to 1"
    )
