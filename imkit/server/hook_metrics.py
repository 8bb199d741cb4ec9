"""The outgoing webhooks' metrics (docs/metrics.md), for :mod:`imkit.server.metrics`
(imported only with ``--metrics``, like prometheus_client): one family a metric, one
sample a hook that had a message on this node, labelled by the hook's name."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from imkit.server.outgoing_hooks import HookCounts


def hook_families(hooks: Iterable[HookCounts]) -> Iterator[Metric]:
    """``imkit_hook_deliveries_total{hook,result}``, ``imkit_hook_retries_total{hook}``
    and ``imkit_hook_queued{hook}``."""
    deliveries = CounterMetricFamily(
        "imkit_hook_deliveries_total",
        "Outgoing webhook messages by what came of them: delivered (a 2xx), failed (given "
        "up after every retry, or refused with a 4xx), dropped (the hook's queue was full).",
        labels=["hook", "result"],
    )
    retries = CounterMetricFamily(
        "imkit_hook_retries_total",
        "Outgoing webhook POSTs tried again after a connection error, a timeout, 5xx or 429.",
        labels=["hook"],
    )
    queued = GaugeMetricFamily(
        "imkit_hook_queued",
        "Outgoing webhook messages waiting for their POST, the one being sent included.",
        labels=["hook"],
    )
    for hook in hooks:
        deliveries.add_metric([hook.name, "delivered"], hook.delivered)
        deliveries.add_metric([hook.name, "failed"], hook.failed)
        deliveries.add_metric([hook.name, "dropped"], hook.dropped)
        retries.add_metric([hook.name], hook.retries)
        queued.add_metric([hook.name], hook.queued)
    yield deliveries
    yield retries
    yield queued
