"""The promotion rule at its boundaries: equal losses, exactly at the tolerance, non-finite losses."""
import math

import pytest

from model import Losses, decide_promotion

CURRENT = Losses(base=1.5, server=2.0)  # values exact in binary, so "exactly at" is exact


def test_equal_losses_promote():
    verdict = decide_promotion(CURRENT, Losses(1.5, 2.0), tolerance=0.0)
    assert verdict.promote and verdict.reason.startswith("Promoted")


def test_base_exactly_at_the_tolerance_promotes_and_just_past_it_does_not():
    assert decide_promotion(CURRENT, Losses(1.625, 1.0), tolerance=0.125).promote
    refused = decide_promotion(CURRENT, Losses(1.625 + 1e-6, 1.0), tolerance=0.125)
    assert not refused.promote and "base names" in refused.reason and "0.125" in refused.reason


def test_decimal_tolerances_are_not_decided_by_float_rounding():
    # 1.51 + 0.05 is 1.5600000000000001 in floats, a hair above 1.56: still "exactly at".
    assert decide_promotion(Losses(1.51, 2.0), Losses(1.56, 1.9), tolerance=0.05).promote
    assert not decide_promotion(Losses(1.51, 2.0), Losses(1.5601, 1.9), tolerance=0.05).promote


def test_a_worse_server_loss_never_promotes_even_if_the_base_improves():
    verdict = decide_promotion(CURRENT, Losses(base=1.0, server=2.001), tolerance=1.0)
    assert not verdict.promote and "held-out" in verdict.reason and "2.000 → 2.001" in verdict.reason


def test_better_on_both_promotes_and_says_both_changes():
    verdict = decide_promotion(CURRENT, Losses(base=1.49, server=1.2), tolerance=0.05)
    assert verdict.promote and "2.000 → 1.200" in verdict.reason and "1.500 → 1.490" in verdict.reason


def test_a_negative_tolerance_demands_an_improvement():
    assert not decide_promotion(CURRENT, Losses(1.5, 1.0), tolerance=-0.125).promote
    assert decide_promotion(CURRENT, Losses(1.375, 1.0), tolerance=-0.125).promote


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("where", ["current.base", "current.server", "new.base", "new.server"])
def test_a_non_finite_loss_anywhere_never_promotes(bad, where):
    who, field = where.split(".")
    losses = {"current": {"base": 1.5, "server": 2.0}, "new": {"base": 1.4, "server": 1.0}}
    losses[who][field] = bad
    verdict = decide_promotion(Losses(**losses["current"]), Losses(**losses["new"]), tolerance=10.0)
    assert not verdict.promote and f"{who} model" in verdict.reason and str(bad) in verdict.reason


@pytest.mark.parametrize("tolerance", [math.nan, math.inf])
def test_a_non_finite_tolerance_is_refused_rather_than_promoting_everything(tolerance):
    with pytest.raises(ValueError, match="finite"):
        decide_promotion(CURRENT, Losses(9.0, 1.0), tolerance)
