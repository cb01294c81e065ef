"""``rnnkit serve``: trained runs over HTTP (FastAPI), with a page that shows the attention.

See :mod:`rnnkit.serve.app` for the endpoints, :mod:`rnnkit.serve.config` for the limits and
:mod:`rnnkit.serve.batching` for dynamic batching. Needs the ``serve`` extra (FastAPI, uvicorn,
prometheus-client); the names below import it when first used, so ``rnnkit --help`` works
without it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServeConfig", "create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name == "ServeConfig":
        from rnnkit.serve.config import ServeConfig

        return ServeConfig
    if name in ("create_app", "serve"):
        try:
            from rnnkit.serve import app
        except ImportError as err:
            raise ImportError(
                f"rnnkit serve needs the serve extra: pip install 'rnnkit[serve]' ({err})"
            ) from None
        return getattr(app, name)
    raise AttributeError(f"module 'rnnkit.serve' has no attribute '{name}'")
