"""The server's limits and settings: :class:`ServeConfig`, one field per ``rnnkit serve`` flag.

Every input a client controls is bounded, each bound with a safe default: the body's bytes
(413), the inputs of a request, an input's characters and tokens, the decode length (422, the
message naming the limit and its flag), the time a request may take (504) and the requests in
flight (503 with ``Retry-After``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ServeConfig"]


class ServeConfig(BaseModel):
    """Settings of one server (frozen; every field is a flag of ``rnnkit serve``).

    Attributes:
        max_body_bytes: the most bytes a request body may have (``--max-body-bytes``; 413).
        max_inputs: inputs per request (``--max-inputs``).
        max_chars: characters per text input (``--max-chars``).
        max_tokens: tokens per text input, as the run's tokeniser counts them (``--max-tokens``).
        max_steps: values per series input (``--max-steps``).
        max_decode_len: the longest output a request may ask for: ``max_len_a * S + max_len_b``
            of a decoder, ``max_tokens`` of generation (``--max-decode-len``).
        timeout_s: seconds a request may take before a 504 (``--timeout``).
        max_in_flight: requests being answered at once; more get 503 (``--max-in-flight``).
        batch_wait_ms: how long the first request of a batch waits for others to the same run
            with the same options (``--batch-wait-ms``; 0 turns dynamic batching off).
        max_batch: the most inputs decoded as one batch (``--max-batch``).
        threads: torch's intra-op threads (None: the auto policy of :func:`rnnkit.api.set_threads`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1)
    max_inputs: int = Field(64, ge=1)
    max_chars: int = Field(2000, ge=1)
    max_tokens: int = Field(256, ge=1)
    max_steps: int = Field(100_000, ge=1)
    max_decode_len: int = Field(512, ge=1)
    timeout_s: float = Field(30.0, gt=0)
    max_in_flight: int = Field(64, ge=1)
    batch_wait_ms: float = Field(5.0, ge=0)
    max_batch: int = Field(64, ge=1)
    threads: int | None = Field(None, ge=1)
