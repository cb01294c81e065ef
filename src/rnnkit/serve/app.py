"""The HTTP server of trained runs: :func:`create_app` (FastAPI) and :func:`serve` (uvicorn).

Endpoints:

- ``POST /v1/{run}/predict``: ``{"inputs": [...], <option>: value, ...}`` -> ``{"run": name,
  "outputs": [...]}``, one output per input, each what ``rnnkit predict RUN --json`` prints for
  it (the predictor's ``to_json``). Each run has its own request model (its task's options), so
  the OpenAPI schema (``/openapi.json``, ``/docs``) documents every run.
- ``POST /v1/{run}/upload``: the same with the inputs as uploaded files (``multipart/form-data``:
  ``files``, and the options as JSON text in ``options``): images, CSV files, text files.
- ``GET /v1/runs``: the loaded runs, their task, input kind, options and config.
- ``GET /health``; ``GET /metrics`` (Prometheus text, :mod:`rnnkit.serve.metrics`).
- ``GET /``: the page that shows the attention (``rnnkit/serve/static``).

Runs load from their folders with safetensors only (:func:`rnnkit.api.load_predictor`). Model
work runs on a worker thread per run, never on the event loop, and concurrent requests are
decoded together (:mod:`rnnkit.serve.batching`). Every input is bounded
(:class:`~rnnkit.serve.config.ServeConfig`); errors are ``{"detail": "one line"}``: 404 for an
unknown run, 413 for a body over the limit, 422 for a bad request (the message names the input,
option or limit), 503 with ``Retry-After`` when too many requests are in flight, 504 past the
timeout, and 500 only for a fault of the server itself.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rnnkit import api
from rnnkit.serve.batching import Batcher
from rnnkit.serve.config import ServeConfig
from rnnkit.serve.metrics import CONTENT_TYPE, ServerMetrics
from rnnkit.serve.schemas import (
    ErrorResponse,
    Health,
    RunInfo,
    RunsResponse,
    option_fields,
    option_info,
    request_model,
    response_model,
)
from rnnkit.tasks.base import Predictor, TaskError, TextGenerator, to_json
from rnnkit.tasks.decoding_options import sampling_config

__all__ = ["ServedRun", "create_app", "load_runs", "serve"]

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_UNBOUNDED_INTS = frozenset({"seed"})  # an integer option that sizes no work
_BEAM_OPTIONS = frozenset({"beam_size", "n_best"})
MAX_BEAM = 16
"""The largest beam (and n-best list) a request may ask for."""


class RequestError(Exception):
    """A request the server refuses: its HTTP status and one line, plus metrics' kind."""

    def __init__(self, status: int, detail: str, kind: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.kind, self.headers = status, detail, kind, headers


@dataclass
class ServedRun:
    """One loaded run: its name in URLs, folder, predictor, request model and batcher."""

    name: str
    path: Path
    predictor: Predictor[Any, Any]
    model: type[BaseModel]
    batcher: Batcher

    def info(self) -> RunInfo:
        """What ``GET /v1/runs`` says of the run."""
        return RunInfo(
            name=self.name,
            task=self.predictor.task.name,
            input=self.predictor.input_kind,
            options=[option_info(o) for o in option_fields(self.predictor)],
            generate=isinstance(self.predictor, TextGenerator),
            config=self.predictor.task.config.to_dict(),
        )

    def work(self, inputs: Sequence[Any], options: Mapping[str, Any]) -> list[Any]:
        """The JSON outputs of ``inputs`` (on the run's worker thread): the predictor's
        ``to_json``, or ``{"input", "text"}`` per prompt when ``max_tokens`` asks for text."""
        predictor = self.predictor
        options = dict(options)
        if isinstance(predictor, TextGenerator) and options.get("max_tokens") is not None:
            sampling = sampling_config(options)
            return [
                {"input": p, "text": predictor.generate(p, int(options["max_tokens"]), sampling)}
                for p in inputs
            ]
        outputs = predictor.predict(inputs, options)
        # to_json once more: plain JSON data, non-finite floats as null (JSON has no NaN)
        return [to_json(predictor.to_json(i, o)) for i, o in zip(inputs, outputs, strict=True)]


def load_runs(runs: Sequence[Path | str], config: ServeConfig) -> list[ServedRun]:
    """Load each run folder (``NAME=FOLDER`` names it; else the folder's name).

    Raises:
        TaskError: a name that is not URL-safe, or two runs of one name.
    """
    served: list[ServedRun] = []
    for given in runs:
        text = str(given)
        name, _, folder = text.rpartition("=") if "=" in text else ("", "", text)
        path = Path(folder)
        name = name or path.resolve().name
        if not _NAME.match(name):
            raise TaskError(
                f"{text}: '{name}' cannot name a run in a URL (letters, digits, '.', '_', '-'; "
                "64 at most); name it with NAME=FOLDER"
            )
        if any(s.name == name for s in served):
            raise TaskError(f"two runs are named '{name}'; name them with NAME=FOLDER")
        predictor = api.load_predictor(path, threads=config.threads)
        entry = ServedRun(name, path, predictor, request_model(name, predictor), None)  # type: ignore[arg-type]
        entry.batcher = Batcher(entry.work, config.batch_wait_ms / 1000, config.max_batch)
        served.append(entry)
    if not served:
        raise TaskError("nothing to serve: give at least one run folder")
    return served


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets 413 before the app reads it
    (its declared ``Content-Length``, or the bytes as they stream in)."""

    def __init__(self, app: ASGIApp, limit: int, on_refuse: Any = None) -> None:
        self.app, self.limit, self.on_refuse = app, limit, on_refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        try:
            too_big = declared is not None and int(declared) > self.limit
        except ValueError:
            too_big = False
        if too_big:
            await self._refuse(scope, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._refuse(scope, send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        if self.on_refuse is not None:
            self.on_refuse(scope.get("path", ""))
        detail = f"request body over {self.limit} bytes (--max-body-bytes)"
        response = JSONResponse({"detail": detail}, status_code=413)
        await response(scope, _drain, send)


async def _drain() -> Message:
    return {"type": "http.disconnect"}


def _static() -> Path:
    return Path(str(resources.files("rnnkit.serve") / "static"))


def create_app(runs: Sequence[Path | str], config: ServeConfig | None = None) -> FastAPI:
    """The FastAPI app serving ``runs`` (folders, or ``NAME=FOLDER``) under ``config``'s limits.

    Raises:
        TaskError: a run that cannot be served (see :func:`load_runs`).
    """
    config = config or ServeConfig()
    served = {r.name: r for r in load_runs(runs, config)}
    metrics = ServerMetrics()
    in_flight = 0

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        for run in served.values():
            await run.batcher.close()

    app = FastAPI(
        title="rnnkit",
        summary="Trained recurrent networks, with what they attend to.",
        version="1",
        lifespan=lifespan,
        responses={413: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
    )
    app.state.runs = served  # name -> ServedRun, for tools and tests
    for run in served.values():
        run.batcher.on_batch = metrics.batch.labels(run.name).observe

    def too_large(path: str) -> None:
        name = path.split("/")[2] if path.startswith("/v1/") and path.count("/") >= 3 else ""
        metrics.errors.labels(name, "too_large").inc()

    app.add_middleware(BodyLimit, limit=config.max_body_bytes, on_refuse=too_large)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {"loc": (), "msg": "invalid request"}
        loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        name = request.url.path.split("/")[2] if request.url.path.startswith("/v1/") else ""
        if name in served:
            metrics.errors.labels(name, "invalid").inc()
            metrics.requests.labels(name, "422").inc()
        return JSONResponse({"detail": f"{loc}: {message}"}, status_code=422)

    @app.get("/health", response_model=Health)
    async def health() -> Health:
        return Health(status="ok", runs=len(served))

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> Response:
        return Response(metrics.text(), media_type=CONTENT_TYPE)

    @app.get("/v1/runs", response_model=RunsResponse)
    async def list_runs() -> RunsResponse:
        return RunsResponse(runs=[r.info() for r in served.values()])

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        index = _static() / "index.html"
        if not index.is_file():
            return PlainTextResponse("rnnkit: the page is not installed; see /docs", 404)
        return FileResponse(index, media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        folder = _static()
        path = folder / name
        if "/" in name or name.startswith(".") or not path.is_file():
            return JSONResponse({"detail": f"no static file '{name}'"}, status_code=404)
        return FileResponse(path)

    async def answer(
        run: ServedRun, body: BaseModel, names: Sequence[str] | None = None
    ) -> Response:
        nonlocal in_flight
        started = time.perf_counter()
        status = "200"
        if in_flight >= config.max_in_flight:
            metrics.errors.labels(run.name, "busy").inc()
            metrics.requests.labels(run.name, "503").inc()
            raise RequestError(
                503,
                f"{config.max_in_flight} requests are in flight already (--max-in-flight); "
                "retry shortly",
                "busy",
                {"Retry-After": "1"},
            )
        in_flight += 1
        metrics.in_flight.inc()
        try:
            inputs, options = _check(run, body, config, names)
            try:
                outputs = await asyncio.wait_for(
                    run.batcher.submit(inputs, options), config.timeout_s
                )
            except TimeoutError:
                raise RequestError(
                    504,
                    f"the request took more than {config.timeout_s:g} s (--timeout)",
                    "timeout",
                ) from None
            except (TaskError, ValueError) as err:
                raise RequestError(422, str(err).splitlines()[0], "invalid") from None
            # the answer is not validated against the response model again: outputs are the
            # predictor's to_json, which the tests check against its json_output model
            return JSONResponse({"run": run.name, "outputs": outputs})
        except RequestError as err:
            status = str(err.status)
            metrics.errors.labels(run.name, err.kind).inc()
            raise
        except Exception:
            status = "500"
            metrics.errors.labels(run.name, "internal").inc()
            logger.exception("%s: prediction failed", run.name)
            raise RequestError(
                500, "internal error: the server failed on this request", "internal"
            ) from None
        finally:
            in_flight -= 1
            metrics.in_flight.dec()
            metrics.requests.labels(run.name, status).inc()
            metrics.latency.labels(run.name).observe(time.perf_counter() - started)

    @app.exception_handler(RequestError)
    async def refused(request: Request, err: RequestError) -> JSONResponse:
        return JSONResponse({"detail": err.detail}, status_code=err.status, headers=err.headers)

    for run in served.values():
        answers = response_model(run.name, run.predictor)
        task = run.predictor.task.name
        routes = (
            ("predict", _endpoint(run, answer), f"{task}: {run.name}"),
            ("upload", _upload(run, answer), f"{task}: {run.name}, inputs as uploaded files"),
        )
        for verb, endpoint, summary in routes:
            app.add_api_route(
                f"/v1/{run.name}/{verb}",
                endpoint,
                methods=["POST"],
                response_model=answers,
                name=f"{verb}-{run.name}",
                summary=summary,
                tags=[task],
            )

    @app.post("/v1/{name}/predict", include_in_schema=False)
    async def unknown(name: str) -> JSONResponse:
        loaded = ", ".join(served)
        return JSONResponse(
            {"detail": f"no run named '{name[:64]}'; loaded: {loaded}"}, status_code=404
        )

    return app


def _endpoint(run: ServedRun, answer: Any) -> Any:
    """The route function of ``run``, its body annotated with the run's request model (FastAPI
    reads the annotation, so it is set on the function rather than written in the source)."""

    async def predict(body: Any) -> Response:
        result: Response = await answer(run, body)
        return result

    predict.__annotations__ = {"body": run.model, "return": Response}
    return predict


def _upload(run: ServedRun, answer: Any) -> Any:
    """The upload route of ``run``: ``multipart/form-data`` with the inputs as ``files`` (an
    image file each for a captioning run, a CSV file each for a series, a text file of one input
    for text runs) and the options as JSON text in the form field ``options``."""

    async def upload(
        files: list[UploadFile] = File(..., description="one input per file"),  # noqa: B008
        options: str = Form("{}", description='the options as JSON, e.g. {"beam_size": 3}'),
    ) -> Response:
        inputs, names = [], []
        for k, file in enumerate(files):
            data = await file.read()
            names.append(file.filename or f"files[{k}]")
            if run.predictor.input_kind == "image":
                inputs.append(base64.b64encode(data).decode("ascii"))
                continue
            try:
                inputs.append(data.decode("utf-8"))
            except UnicodeDecodeError:
                raise RequestError(422, f"{names[-1]}: not UTF-8 text", "invalid") from None
        try:
            given = json.loads(options)
        except json.JSONDecodeError as err:
            raise RequestError(422, f"options: not JSON ({err.msg})", "invalid") from None
        if not isinstance(given, dict):
            raise RequestError(422, "options: expected a JSON object", "invalid")
        try:
            body = run.model.model_validate({**given, "inputs": inputs})
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "options"
            raise RequestError(422, f"{loc}: {first['msg']}", "invalid") from None
        result: Response = await answer(run, body, names)
        return result

    return upload


def _check(
    run: ServedRun, body: BaseModel, config: ServeConfig, names: Sequence[str] | None = None
) -> tuple[list[Any], dict[str, Any]]:
    """The request's inputs (read by the predictor) and options, or a 422 naming the limit;
    ``names``: what to call each input (an upload's file names; default ``inputs[i]``)."""
    values = body.model_dump()
    raw = values.pop("inputs")
    options = {k: v for k, v in values.items() if v is not None}
    if not raw:
        raise RequestError(422, "inputs: empty; give at least one input", "invalid")
    if len(raw) > config.max_inputs:
        raise RequestError(
            422,
            f"inputs: {len(raw)} inputs, more than the {config.max_inputs} a request may have "
            "(--max-inputs)",
            "invalid",
        )
    for name, value in options.items():
        if isinstance(value, bool) or not isinstance(value, int) or name in _UNBOUNDED_INTS:
            continue
        bound, flag = (
            (MAX_BEAM, "the server's beam limit")
            if name in _BEAM_OPTIONS
            else (config.max_decode_len, "--max-decode-len")
        )
        if value > bound:
            raise RequestError(
                422, f"{name}: {value} is more than the {bound} allowed ({flag})", "invalid"
            )
    predictor = run.predictor
    inputs, longest = [], 0
    for i, value in enumerate(raw):
        name = names[i] if names is not None and i < len(names) else f"inputs[{i}]"
        text = predictor.input_kind == "text" and isinstance(value, str)
        if text and len(value) > config.max_chars:
            raise RequestError(
                422,
                f"{name}: {len(value)} characters, more than the {config.max_chars} an "
                "input may have (--max-chars)",
                "invalid",
            )
        try:
            inp = predictor.from_json(value, name)
            tokens = predictor.input_tokens(inp)
        except (TaskError, ValueError) as err:
            raise RequestError(422, str(err).splitlines()[0], "invalid") from None
        if tokens is not None:
            if tokens > config.max_tokens:
                raise RequestError(
                    422,
                    f"{name}: {tokens} tokens, more than the {config.max_tokens} an input may "
                    "have (--max-tokens)",
                    "invalid",
                )
            longest = max(longest, tokens)
        steps = len(inp) if predictor.input_kind == "series" else 0
        if steps > config.max_steps:
            raise RequestError(
                422,
                f"{name}: {steps} steps, more than the {config.max_steps} a series may have "
                "(--max-steps)",
                "invalid",
            )
        inputs.append(inp)
    if "max_len_a" in options or "max_len_b" in options:
        a = float(options.get("max_len_a", 0.0))
        b = int(options.get("max_len_b", 0))
        if a * longest + b > config.max_decode_len:
            raise RequestError(
                422,
                f"max_len_a * S + max_len_b = {a:g} * {longest} + {b} is more than the "
                f"{config.max_decode_len} tokens an output may have (--max-decode-len)",
                "invalid",
            )
    if options.get("max_tokens") is not None and options["max_tokens"] < 1:
        raise RequestError(422, "max_tokens: must be at least 1", "invalid")
    return inputs, options


def serve(
    runs: Sequence[Path | str],
    host: str = "127.0.0.1",
    port: int = 8000,
    config: ServeConfig | None = None,
) -> None:
    """Serve ``runs`` with uvicorn until interrupted (loopback unless ``host`` says otherwise)."""
    import uvicorn

    uvicorn.run(create_app(runs, config), host=host, port=port, log_level="info")
