"""The promotion rule at its boundaries: when a fine-tune replaces a server's model.

``judge(before, after, tolerance)`` promotes a finite ``after`` that is at most ``tolerance``
worse than ``before`` (nats per letter, lower is better). These tests pin every edge: equal
losses, exactly at the tolerance and one float step past it, a negative tolerance (must
improve), and non-finite losses on either side.
"""
from __future__ import annotations

import math

import pytest

from bot.services.training.fine_tune import judge
from bot.services.training.settings import TrainingSettings

DEFAULT = TrainingSettings().tolerance  # 0.05, what DINOBOT_PROMOTE_TOLERANCE defaults to
BEFORE = 1.5


def test_the_default_tolerance_is_the_documented_one():
    assert DEFAULT == 0.05


@pytest.mark.parametrize("tolerance", [DEFAULT, 0.0, 0.25, -0.1])
def test_equal_losses_are_promoted_unless_improvement_is_required(tolerance):
    promoted, reason = judge(BEFORE, BEFORE, tolerance)
    assert promoted is (tolerance >= 0), reason


@pytest.mark.parametrize("tolerance", [DEFAULT, 0.0, 0.25, -0.1])
def test_exactly_at_the_tolerance_is_promoted_and_one_step_past_is_not(tolerance):
    limit = BEFORE + tolerance
    assert judge(BEFORE, limit, tolerance)[0] is True
    worse, reason = judge(BEFORE, math.nextafter(limit, math.inf), tolerance)
    assert worse is False and "got worse" in reason


def test_better_is_promoted_and_worse_beyond_the_tolerance_is_discarded():
    assert judge(BEFORE, BEFORE - 0.3, DEFAULT) == (True, "promoted: validation loss 1.500 → 1.200")
    promoted, reason = judge(BEFORE, BEFORE + 0.2, DEFAULT)
    assert not promoted and reason == ("discarded: validation loss got worse (1.500 → 1.700, "
                                       "more than the 0.05 allowed)")


@pytest.mark.parametrize("after", [math.nan, math.inf, -math.inf])
def test_a_non_finite_result_is_never_promoted(after):
    for before in (BEFORE, math.nan, math.inf):
        promoted, reason = judge(before, after, DEFAULT)
        assert not promoted and "discarded" in reason, (before, after)


@pytest.mark.parametrize("before", [math.nan, math.inf])
def test_a_current_model_that_cannot_be_scored_gives_way_to_a_finite_result(before):
    promoted, reason = judge(before, 9.0, DEFAULT)  # even a poor but finite model beats a broken one
    assert promoted and "promoted" in reason


@pytest.mark.parametrize("tolerance", [math.nan, math.inf, -math.inf])
def test_a_non_finite_tolerance_is_refused_rather_than_promoting_everything(tolerance):
    with pytest.raises(ValueError, match="tolerance"):
        judge(BEFORE, BEFORE + 5, tolerance)
    with pytest.raises(ValueError, match="finite"):
        TrainingSettings(tolerance=tolerance)
