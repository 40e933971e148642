"""Prometheus metrics (`prometheus-client`): requests by route template, method and status,
their latency, and at each scrape the outbox's depth and lag, the cases waiting in queues, and
the exchange's calls by consumer and resource and its subscriptions' lag.

Routes are labelled by their template (`/services/applications/{application_id}`), never by the
path a request typed, so the number of series stays bounded whatever is requested. Each web
process counts its own requests; with several processes (`qilu serve --workers N`) set
PROMETHEUS_MULTIPROC_DIR to an empty folder and they are added up at scrape time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from qilu.data import monitoring
from qilu.operations.system import case_queues, outbox_figures, sweepers

REQUESTS = Counter(
    "qilu_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
    registry=None,  # registered per scrape below, not in the library's global registry
)
LATENCY = Histogram(
    "qilu_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=None,
)
UNMATCHED = "(unmatched)"  # a path no route serves (a 404): one series, not one per path
CONTENT_TYPE = CONTENT_TYPE_LATEST


def observe(route: str | None, method: str, status: int, seconds: float) -> None:
    template = route or UNMATCHED
    REQUESTS.labels(template, method, str(status)).inc()
    LATENCY.labels(template, method).observe(seconds)


class StoreCollector(Collector):
    """Read at each scrape from the store (so every process reports the same figures)."""

    def __init__(self, session: Session):
        self.session = session

    def collect(self) -> Iterator[GaugeMetricFamily]:
        outbox = outbox_figures(self.session)
        queues = case_queues(self.session)
        yield GaugeMetricFamily(
            "qilu_outbox_pending", "Effects waiting to run after their commit.", outbox.pending
        )
        yield GaugeMetricFamily(
            "qilu_outbox_retrying", "Effects that failed at least once.", outbox.retrying
        )
        yield GaugeMetricFamily(
            "qilu_outbox_lag_seconds",
            "How long the oldest due effect has waited for a sweeper.",
            outbox.lag_seconds,
        )
        yield GaugeMetricFamily(
            "qilu_outbox_sweepers_alive",
            "Processes that finished an outbox sweep within the last minute.",
            sum(1 for s in sweepers(self.session) if s.alive),
        )
        cases = GaugeMetricFamily(
            "qilu_cases_open", "Cases waiting in a queue, by state.", labels=["state"]
        )
        for state, _name, count in queues:
            cases.add_metric([state], count)
        yield cases
        yield from exchange_metrics(self.session)


def exchange_metrics(session: Session) -> Iterator[GaugeMetricFamily]:
    """The exchange's last day by consumer and resource, and each subscription's lag."""
    labels = ["consumer", "resource"]
    calls = GaugeMetricFamily(
        "qilu_exchange_calls_24h", "Shared calls answered in the last 24 h.", labels=labels
    )
    failures = GaugeMetricFamily(
        "qilu_exchange_failures_24h",
        "Shared calls answered 4xx/5xx in the last 24 h.",
        labels=labels,
    )
    size = GaugeMetricFamily(
        "qilu_exchange_bytes_24h", "Bytes answered to shared calls in the last 24 h.", labels=labels
    )
    for row in monitoring.usage(session, None):
        key = [row.consumer_code, row.resource_code]
        calls.add_metric(key, row.calls)
        failures.add_metric(key, row.failures)
        size.add_metric(key, row.bytes)
    lag = GaugeMetricFamily(
        "qilu_feed_lag",
        "Changes a subscription has not yet acknowledged.",
        labels=["subscription", "consumer", "resource"],
    )
    for subscription in monitoring.subscriptions_touching(session, None):
        lag.add_metric(
            [str(subscription.id), subscription.department.code, subscription.resource.code],
            subscription.resource.change_seq - subscription.cursor,
        )
    yield from (calls, failures, size, lag)


def exposition(session: Session) -> bytes:
    """The text a scrape gets: this process's (or all processes') requests, and the store's."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(REQUESTS)
        registry.register(LATENCY)
    registry.register(StoreCollector(session))
    exposed: bytes = generate_latest(registry)
    return exposed
