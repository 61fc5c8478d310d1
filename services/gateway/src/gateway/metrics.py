"""Prometheus metrics of the gateway, in a registry of its own (one per app, no globals)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass
class GatewayMetrics:
    """Requests, latencies and upstream errors, labelled by route template (bounded)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "gateway_requests_total",
            "Requests answered by the gateway.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gateway_request_duration_seconds",
            "Time from request to response start, by route.",
            ["route", "method"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors_total",
            "Calls to a service that failed (unreachable or timed out).",
            ["upstream", "kind"],
            registry=self.registry,
        )
        self.portfolio_cache = Counter(
            "gateway_portfolio_cache_total",
            "Residents' portfolio reads by what the cache did: hit, miss, joined (waited for a"
            " composition under way), refresh (composed early in the background), bypass.",
            ["outcome"],
            registry=self.registry,
        )
