"""Trading costs: commission and slippage, each in two spellings kept side by side.

``Decimal`` for the event-driven engine and float64 arrays for the vectorised simulator
(``tinywindow.backtest.simulator``), in one class per rule so they cannot drift apart; a unit
test holds them equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

import numpy as np

from tinywindow.core.money import BPS, ONE, ZERO, to_decimal

__all__ = ["Commission", "Slippage"]


@dataclass(frozen=True)
class Commission:
    """Commission per fill: ``max(minimum, rate * notional + per_share * qty)``.

    ``rate`` is a fraction of notional (10 bps = 0.001).  The minimum applies to every fill
    with a positive quantity.
    """

    rate: float = 0.0
    per_share: float = 0.0
    minimum: float = 0.0

    @classmethod
    def from_bps(cls, bps: float, per_share: float = 0.0, minimum: float = 0.0) -> Commission:
        return cls(rate=bps / 10_000.0, per_share=per_share, minimum=minimum)

    @cached_property
    def _decimals(self) -> tuple[Decimal, Decimal, Decimal]:
        """rate, per_share and minimum as Decimals (converted once, not per fill)."""
        return to_decimal(self.rate), to_decimal(self.per_share), to_decimal(self.minimum)

    def fee(self, qty: Decimal, price: Decimal) -> Decimal:
        """Exact fee for a fill of ``qty`` (> 0) at ``price``."""
        rate, per_share, minimum = self._decimals
        raw = abs(qty) * price * rate + abs(qty) * per_share
        return max(raw, minimum) if qty != 0 else ZERO

    def fee_array(self, qty: np.ndarray, price: np.ndarray) -> np.ndarray:
        """The same rule on float64 arrays (zero where ``qty`` is zero)."""
        aq = np.abs(qty)
        raw = aq * price * self.rate + aq * self.per_share
        if self.minimum:
            raw = np.maximum(raw, self.minimum)
        return np.where(aq > 0, raw, 0.0)


@dataclass(frozen=True)
class Slippage:
    """Fills move against the trader by ``bps`` of the price: buys pay more, sells get less."""

    bps: float = 0.0

    @cached_property
    def _factors(self) -> dict[int, Decimal]:
        """The price factor per side, computed once (the same Decimal operations as below)."""
        return {side: ONE + side * to_decimal(self.bps) / BPS for side in (1, -1)}

    def price(self, side: int, price: Decimal) -> Decimal:
        factor = self._factors.get(side)
        if factor is None:
            factor = ONE + side * to_decimal(self.bps) / BPS
        return price * factor

    def price_array(self, side: np.ndarray, price: np.ndarray) -> np.ndarray:
        return price * (1.0 + side * (self.bps / 10_000.0))
