"""A property-based fuzz of every endpoint (hypothesis): whatever a client sends, the server
answers with a status below 500 and a JSON ``detail`` for every refusal, and keeps serving.

Bodies are arbitrary JSON (nested, astral and control characters, huge numbers), requests shaped
like the real ones with wrong types and values in every field, truncated and random images,
series of the wrong shape, and raw bytes that are not JSON at all.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit.serve import ServeConfig, create_app

RUNS = ("translation", "captioning", "forecasting", "classification", "tagging", "language_model")
OPTIONS = (
    "beam_size",
    "n_best",
    "length_penalty",
    "max_len_a",
    "max_len_b",
    "sample",
    "temperature",
    "top_k",
    "top_p",
    "seed",
    "horizon",
    "max_tokens",
)

text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60
)  # astral, control and combining characters included
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
small_ints = st.integers(min_value=-3, max_value=40)
option_values = small_ints | st.floats(-2, 5, allow_nan=False) | st.booleans() | st.none() | text


@st.composite
def image_inputs(draw: Any, png: bytes) -> str:
    """A real PNG cut short, or random bytes, or the real one, in base64."""
    kind = draw(st.sampled_from(["cut", "random", "whole", "garbage"]))
    if kind == "cut":
        data = png[: draw(st.integers(0, len(png) - 1))]
    elif kind == "random":
        data = draw(st.binary(max_size=200))
    elif kind == "whole":
        data = png
    else:
        return draw(text)
    encoded = base64.b64encode(data).decode()
    return draw(st.sampled_from([encoded, f"data:image/png;base64,{encoded}"]))


@st.composite
def requests(draw: Any, png: bytes, series: str) -> tuple[str, Any]:
    """(run, body) of a request shaped like a real one, any field wrong."""
    run = draw(st.sampled_from(RUNS))
    if run == "captioning":
        one = image_inputs(png)
    elif run == "forecasting":
        lines = series.splitlines()
        cut = st.integers(0, len(lines)).map(lambda n: "\n".join(lines[:n]))
        columns = st.dictionaries(
            st.sampled_from(["month", "sales", "start", "other"]),
            st.lists(st.floats(allow_nan=False, allow_infinity=False) | text, max_size=30) | text,
            max_size=3,
        )
        one = cut | columns | text
    else:
        one = text
    inputs = draw(st.lists(one | json_values, max_size=4) | json_values)
    body: dict[str, Any] = {"inputs": inputs}
    for name in draw(st.lists(st.sampled_from(OPTIONS), max_size=4, unique=True)):
        body[name] = draw(option_values)
    if draw(st.booleans()):
        body[draw(text)] = draw(json_values)
    return run, draw(st.sampled_from([body, draw(json_values)]))


@pytest.fixture(scope="module")
def fuzzed(served_runs: dict[str, Path], sample_image: Path) -> tuple[TestClient, bytes, str]:
    config = ServeConfig(max_body_bytes=100_000, timeout_s=20)
    client = TestClient(create_app([served_runs[r] for r in RUNS], config))
    series = (served_runs["forecasting"].parent.parent / "sales.csv").read_text()
    return client, sample_image.read_bytes(), series


def _check(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        detail = response.json()["detail"]
        assert isinstance(detail, str) and detail and "\n" not in detail


def test_shaped_requests_never_fail_the_server(fuzzed: tuple[TestClient, bytes, str]) -> None:
    client, png, series = fuzzed

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=True,
    )
    @given(requests(png, series))
    def check(request: tuple[str, Any]) -> None:
        run, body = request
        _check(client.post(f"/v1/{run}/predict", json=body))

    check()
    assert client.get("/health").status_code == 200


def test_raw_bytes_and_odd_paths_never_fail_the_server(
    fuzzed: tuple[TestClient, bytes, str],
) -> None:
    client, _, _ = fuzzed

    @settings(max_examples=80, deadline=None, derandomize=True)
    @given(
        st.sampled_from([*RUNS, "nope", "", "../x", "%00"]),
        st.binary(max_size=300) | text.map(str.encode),
        st.sampled_from(["application/json", "text/plain", "multipart/form-data", ""]),
    )
    def check(run: str, body: bytes, kind: str) -> None:
        _check(client.post(f"/v1/{run}/predict", content=body, headers={"content-type": kind}))

    check()

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(
        st.sampled_from(RUNS),
        st.lists(st.binary(max_size=300), max_size=3),
        text | json_values.map(json.dumps),
    )
    def upload(run: str, contents: list[bytes], options: str) -> None:
        files = [
            ("files", (f"f{k}", c, "application/octet-stream")) for k, c in enumerate(contents)
        ]
        _check(client.post(f"/v1/{run}/upload", files=files, data={"options": options}))

    upload()
    for path in ("/", "/v1/runs", "/health", "/metrics", "/openapi.json", "/static/../x"):
        assert client.get(path).status_code < 500


def test_huge_bodies_are_refused_before_reading(fuzzed: tuple[TestClient, bytes, str]) -> None:
    client, _, _ = fuzzed
    huge = json.dumps({"inputs": ["a" * 200_000]})
    response = client.post("/v1/translation/predict", content=huge)
    assert response.status_code == 413
    deep = "[" * 50_000 + "]" * 50_000  # nesting a JSON parser could choke on, under the limit
    response = client.post(
        "/v1/translation/predict",
        content=deep.encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code in (400, 413, 422)
