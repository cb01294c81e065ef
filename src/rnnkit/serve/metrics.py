"""The server's Prometheus metrics (``GET /metrics``, the text exposition format).

Each app has its own registry (``prometheus_client``), so two servers in one process (tests) do
not share counts:

- ``rnnkit_requests_total{run, status}``: answered prediction requests by HTTP status;
- ``rnnkit_errors_total{run, kind}``: refused or failed ones (``invalid``, ``too_large``,
  ``timeout``, ``busy``, ``internal``);
- ``rnnkit_request_seconds{run}``: latency histogram of prediction requests;
- ``rnnkit_batch_inputs{run}``: inputs per batch the model computed (dynamic batching);
- ``rnnkit_requests_in_flight``: prediction requests being answered now.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "ServerMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass
class ServerMetrics:
    """The metrics of one app (see the module docstring)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "rnnkit_requests", "prediction requests answered", ["run", "status"], registry=r
        )
        self.errors = Counter(
            "rnnkit_errors", "prediction requests refused or failed", ["run", "kind"], registry=r
        )
        self.latency = Histogram(
            "rnnkit_request_seconds",
            "latency of prediction requests",
            ["run"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch = Histogram(
            "rnnkit_batch_inputs",
            "inputs per batch the model computed",
            ["run"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "rnnkit_requests_in_flight", "prediction requests being answered", registry=r
        )

    def text(self) -> bytes:
        """The exposition text of every metric."""
        return generate_latest(self.registry)
