"""The shared per-member budget (no Discord needed: it is plain bookkeeping)."""
from __future__ import annotations

import pytest
from discord import app_commands

from bot.ui.checks import MemberBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_budget_refuses_past_its_rate_and_refills_after_its_window():
    clock = Clock()
    budget = MemberBudget(2, 30.0, clock=clock)
    budget.spend(1)
    budget.spend(1)
    with pytest.raises(app_commands.CommandOnCooldown) as refused:
        budget.spend(1)
    assert 0 < refused.value.retry_after <= 30
    budget.spend(2)  # per member
    clock.now += 30.5
    budget.spend(1)


def test_idle_members_buckets_are_dropped():
    clock = Clock()
    budget = MemberBudget(5, 30.0, clock=clock)
    budget.PRUNE_EVERY = 10
    for user in range(9):
        budget.spend(user)
    assert len(budget) == 9
    clock.now += 31
    budget.spend(100)  # the 10th spend sweeps the nine idle buckets
    assert len(budget) == 1
