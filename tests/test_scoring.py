import math

import pytest

from mlsbench_env.scoring import Score, combine_settings, metric_score
from mlsbench_env.spec import Metric

LOWER_LOG = Metric(name="f", direction="lower", log=True, log_eps=1e-8, bound=0.0)
HIGHER_BOUNDED = Metric(name="acc", direction="higher", bound=100.0)
HIGHER_FREE = Metric(name="ret", direction="higher")


@pytest.mark.parametrize(
    "m,floor,ref,bound",
    [
        (LOWER_LOG, 100.0, 1e-2, 0.0),
        (HIGHER_BOUNDED, 60.0, 80.0, 100.0),
    ],
)
def test_bounded_curve_passes_through_the_three_anchor_points(m, floor, ref, bound):
    assert metric_score(floor, m, floor, ref) == 0.0
    assert metric_score(ref, m, floor, ref) == pytest.approx(50.0)
    assert metric_score(bound, m, floor, ref) == 100.0


def test_bounded_curve_is_monotone_and_zero_below_floor():
    m = HIGHER_BOUNDED
    xs = [50, 60, 65, 70, 80, 90, 99, 100]
    s = [metric_score(x, m, 60.0, 80.0) for x in xs]
    assert s[0] == 0.0 and s == sorted(s) and 50 < s[5] < 100


def test_unbounded_sigmoid_maps_floor_to_0_and_reference_to_50():
    m = HIGHER_FREE
    assert metric_score(-200.0, m, -200.0, -100.0) == 0.0
    assert metric_score(-100.0, m, -200.0, -100.0) == pytest.approx(50.0)
    above = metric_score(0.0, m, -200.0, -100.0)
    assert 50 < above < 100


def test_lower_is_better_log_metric_rewards_orders_of_magnitude():
    a = metric_score(1e-1, LOWER_LOG, 100.0, 1e-2)
    b = metric_score(1e-4, LOWER_LOG, 100.0, 1e-2)
    assert 0 < a < 50 < b < 100


def test_geometric_mean_over_settings_sinks_on_a_collapsed_setting():
    even = combine_settings({"a": Score(50.0), "b": Score(50.0), "c": Score(50.0)})
    collapsed = combine_settings({"a": Score(75.0), "b": Score(75.0), "c": Score(0.0)})
    assert even.value == pytest.approx(50.0)
    assert collapsed.value < 20.0  # arithmetic mean would be 50
    assert math.isclose(collapsed.value, (76 * 76 * 1) ** (1 / 3) - 1)


def test_failed_setting_scores_zero_and_uncalibrated_is_invalid_not_zero():
    s = combine_settings({"a": Score(0.0, "crashed"), "b": Score(None, "uncalibrated: x")})
    assert s.value is None and "uncalibrated" in s.reason
