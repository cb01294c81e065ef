"""The request and response models of a served run, built from what its task declares.

A run's request is ``{"inputs": [...], <option>: value, ...}``: the inputs are JSON forms of the
predictor's inputs (:attr:`~rnnkit.tasks.base.Predictor.json_input`), the options are the task's
:attr:`~rnnkit.tasks.base.Task.predict_options` that make sense over HTTP (no file paths), and,
for a predictor that writes text (:class:`~rnnkit.tasks.base.TextGenerator`), the generation
options ``max_tokens``, ``temperature``, ``top_k``, ``top_p`` and ``seed``. Unknown keys, wrong
types and non-finite numbers are refused (422) before any work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from rnnkit.tasks.base import Option, Predictor, TextGenerator

__all__ = [
    "GENERATION_OPTIONS",
    "ErrorResponse",
    "GeneratedText",
    "Health",
    "OptionInfo",
    "RunInfo",
    "RunsResponse",
    "option_fields",
    "request_model",
    "response_model",
]

GENERATION_OPTIONS: tuple[Option, ...] = (
    Option("max_tokens", "--max-tokens", int, "generate this many tokens after each prompt"),
    Option("temperature", "--temperature", float, "sampling temperature (default 1.0)"),
    Option("top_k", "--top-k", int, "sample among the k most likely tokens"),
    Option("top_p", "--top-p", float, "sample within the top-p probability mass"),
    Option("seed", "--seed", int, "random seed of the sampling (default 0)"),
)
"""What a :class:`TextGenerator`'s request adds: with ``max_tokens`` the run writes text."""

_JSON_TYPES: dict[type, str] = {int: "integer", float: "number", str: "string", bool: "boolean"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class OptionInfo(_Strict):
    """One option a run's request may carry."""

    name: str
    type: Literal["integer", "number", "string", "boolean"]
    help: str
    choices: list[Any] | None = None


class RunInfo(_Strict):
    """A loaded run, as ``GET /v1/runs`` lists it."""

    name: str
    task: str
    input: Literal["text", "image", "series"]
    options: list[OptionInfo]
    generate: bool = Field(description="the run writes text after a prompt (max_tokens)")
    config: dict[str, Any]


class RunsResponse(_Strict):
    """``GET /v1/runs``."""

    runs: list[RunInfo]


class GeneratedText(_Strict):
    """A prompt and the text a language model wrote after it (``max_tokens`` given)."""

    input: str
    text: str = Field(description="the prompt and its continuation")


class ErrorResponse(_Strict):
    """Every error: one line that names the input, option or limit at fault."""

    detail: str


class Health(_Strict):
    """``GET /health``."""

    status: Literal["ok"]
    runs: int


def option_fields(predictor: Predictor[Any, Any]) -> list[Option]:
    """The options a request to ``predictor``'s run may carry: the task's predict options
    less file paths and the command line's input option, and the generation options of a
    :class:`TextGenerator`."""
    task = type(predictor.task)
    found = [
        o
        for o in task.predict_options
        if o.type is not Path
        and not o.files_only
        and o.name != task.input_option
        and o.type in _JSON_TYPES
    ]
    if isinstance(predictor, TextGenerator):
        names = {o.name for o in found}
        found += [o for o in GENERATION_OPTIONS if o.name not in names]
    return found


def option_info(option: Option) -> OptionInfo:
    """How ``GET /v1/runs`` describes ``option``."""
    choices = None if option.choices is None else list(option.choices)
    return OptionInfo(
        name=option.name, type=_JSON_TYPES[option.type], help=option.help, choices=choices
    )


def _title(run: str) -> str:
    return "".join(p.capitalize() for p in run.replace(".", "-").replace("_", "-").split("-") if p)


def response_model(run: str, predictor: Predictor[Any, Any]) -> type[BaseModel]:
    """The pydantic model of ``run``'s answers: ``{"run", "outputs": [the predictor's
    json_output, or GeneratedText for a TextGenerator asked for text]}``."""
    output: Any = predictor.json_output
    if isinstance(predictor, TextGenerator):
        output = output | GeneratedText
    fields: dict[str, Any] = {
        "run": (str, Field(description="the run's name")),
        "outputs": (list[output], Field(description="one output per input, in order")),
    }
    return create_model(f"{_title(run) or 'Run'}Response", __base__=_Strict, **fields)


def request_model(run: str, predictor: Predictor[Any, Any]) -> type[BaseModel]:
    """The pydantic model of a request to ``run``: ``inputs`` and the run's options (each
    optional: absent or null takes the task's default)."""
    fields: dict[str, Any] = {
        "inputs": (
            list[predictor.json_input],  # type: ignore[name-defined]
            Field(description=f"the inputs: {predictor.input_kind} each"),
        )
    }
    for option in option_fields(predictor):
        kind: Any = option.type
        if option.choices is not None:
            kind = Literal[tuple(option.choices)]
        fields[option.name] = (kind | None, Field(None, description=option.help))
    return create_model(f"{_title(run) or 'Run'}Request", __base__=_Strict, **fields)
