"""``rnnkit serve RUN [RUN ...]``: trained runs over HTTP, with the page that shows attention.

The verb parses its flags into a :class:`~rnnkit.serve.ServeConfig` and calls
:func:`rnnkit.serve.serve`; it binds to loopback unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
from typing import Any

_LIMITS: tuple[tuple[str, str, type, str], ...] = (
    ("max_body_bytes", "--max-body-bytes", int, "largest request body in bytes (413 above)"),
    ("max_inputs", "--max-inputs", int, "inputs per request"),
    ("max_chars", "--max-chars", int, "characters per text input"),
    ("max_tokens", "--max-tokens", int, "tokens per text input"),
    ("max_steps", "--max-steps", int, "values per series input"),
    ("max_decode_len", "--max-decode-len", int, "longest output (max_len_a * S + b, max_tokens)"),
    ("timeout_s", "--timeout", float, "seconds a request may take (504 after)"),
    ("max_in_flight", "--max-in-flight", int, "requests answered at once (503 above)"),
    ("batch_wait_ms", "--batch-wait-ms", float, "ms a request waits for others (0: no batching)"),
    ("max_batch", "--max-batch", int, "most inputs decoded as one batch"),
)


def add_parser(verbs: Any) -> None:
    """Add ``serve`` to the ``rnnkit`` command's sub-parsers."""
    from rnnkit.cli.main import add_threads_option

    parser = verbs.add_parser(
        "serve",
        help="serve trained runs over HTTP, with a page that shows the attention",
        description=(
            "Serve run folders over HTTP: POST /v1/NAME/predict, GET /v1/runs, /health, "
            "/metrics, the OpenAPI schema at /docs, and the page at /. A run is named after its "
            "folder, or NAME=FOLDER. Needs the serve extra (pip install 'rnnkit[serve]')."
        ),
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders (or NAME=FOLDER)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    from rnnkit.serve.config import ServeConfig

    defaults = ServeConfig()
    limits = parser.add_argument_group("limits")
    for name, flag, kind, text in _LIMITS:
        default = getattr(defaults, name)
        limits.add_argument(
            flag, dest=name, type=kind, default=default, metavar="N", help=f"{text} ({default:g})"
        )
    add_threads_option(parser)
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    import logging

    from pydantic import ValidationError

    from rnnkit.serve import ServeConfig, serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    values = {name: getattr(args, name) for name, *_ in _LIMITS}
    try:
        config = ServeConfig(threads=args.threads, **values)
    except ValidationError as err:
        first = err.errors()[0]
        flag = next((f for n, f, *_ in _LIMITS if n == first["loc"][0]), "--threads")
        raise ValueError(f"{flag}: {first['msg']}") from None
    serve(args.runs, host=args.host, port=args.port, config=config)
    return 0
