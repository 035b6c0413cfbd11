"""Worst-case cost of clusters, from the admin-maintained price table (``VmPrice``).

Worst case means every node of every cluster up all the time: ``max nodes x price per node-hour``,
and a month of 730 hours. For dedicated clusters the summary also says what the same cluster would
cost on low-priority nodes, i.e. what switching would save.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from provisioning.models import Priority, VmPrice

HOURS_PER_MONTH = 730
CENTS = Decimal("0.01")


class ClusterLike(Protocol):
    """A ``ClusterSpec`` or a ``Cluster`` row: what pricing needs to know."""

    @property
    def name(self) -> str: ...

    @property
    def vm_size(self) -> str: ...

    @property
    def priority(self) -> str: ...

    @property
    def max_nodes(self) -> int: ...


@dataclass(frozen=True)
class ClusterCost:
    name: str
    vm_size: str
    priority: str
    max_nodes: int
    hourly: Decimal | None
    low_priority_hourly: Decimal | None
    estimate: bool

    @property
    def monthly(self) -> Decimal | None:
        return None if self.hourly is None else (self.hourly * HOURS_PER_MONTH).quantize(CENTS)

    @property
    def monthly_saving(self) -> Decimal:
        """What low-priority nodes would save a month (0 for a low-priority cluster)."""
        if self.hourly is None or self.low_priority_hourly is None:
            return Decimal(0)
        return ((self.hourly - self.low_priority_hourly) * HOURS_PER_MONTH).quantize(CENTS)


@dataclass
class CostSummary:
    clusters: list[ClusterCost] = field(default_factory=list)

    @property
    def priced(self) -> list[ClusterCost]:
        return [c for c in self.clusters if c.hourly is not None]

    @property
    def unpriced(self) -> list[ClusterCost]:
        return [c for c in self.clusters if c.hourly is None]

    @property
    def hourly(self) -> Decimal:
        return sum((c.hourly for c in self.priced if c.hourly is not None), Decimal(0))

    @property
    def monthly(self) -> Decimal:
        return (self.hourly * HOURS_PER_MONTH).quantize(CENTS)

    @property
    def monthly_saving(self) -> Decimal:
        return sum((c.monthly_saving for c in self.clusters), Decimal(0))

    @property
    def estimate(self) -> bool:
        return any(c.estimate for c in self.priced)


Prices = dict[tuple[str, str], VmPrice]


def price_table(clusters: Iterable[ClusterLike]) -> Prices:
    """The prices of the clusters' sizes, by (size, priority), in one query."""
    sizes = {c.vm_size.upper() for c in clusters}
    return {(p.vm_size, p.priority): p for p in VmPrice.objects.filter(vm_size__in=sizes)}


def clusters_cost(clusters: Iterable[ClusterLike], prices: Prices | None = None) -> CostSummary:
    """The worst-case cost of clusters (specs or ``Cluster`` rows), priced from the table (read unless given)."""
    clusters = list(clusters)
    prices = price_table(clusters) if prices is None else prices
    summary = CostSummary()
    for c in clusters:
        size = c.vm_size.upper()
        own = prices.get((size, c.priority))
        low = prices.get((size, Priority.LOW_PRIORITY)) if c.priority == Priority.DEDICATED else None
        summary.clusters.append(
            ClusterCost(
                name=c.name,
                vm_size=size,
                priority=c.priority,
                max_nodes=c.max_nodes,
                hourly=None if own is None else own.hourly_usd * c.max_nodes,
                low_priority_hourly=None if low is None else low.hourly_usd * c.max_nodes,
                estimate=own is not None and own.is_estimate,
            )
        )
    return summary
