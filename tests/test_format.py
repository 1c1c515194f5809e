"""The one number format (scaling_ladder.format): the spelling every table and note uses."""

import math

import numpy as np
import pytest

from scaling_ladder.compare.scales import fmt_count
from scaling_ladder.format import count, duration, sci


@pytest.mark.parametrize(("x", "text"), [
    (4.116e8, "412M"), (6.89e9, "6.89B"), (1.4e12, "1.4T"), (4.12e5, "412k"), (950, "950"),
    (np.int64(70_000_000_000), "70B"), (-2.5e6, "-2.5M"), (0, "0"),
])
def test_count_uses_k_m_b_t_with_three_digits(x, text):
    assert count(x) == text


@pytest.mark.parametrize("x", [None, math.nan, math.inf, np.float64("nan")])
def test_count_of_a_missing_number_is_a_dash(x):
    assert count(x) == "—"


def test_compare_keeps_its_name_for_the_same_function():
    assert fmt_count is count


def test_sci_and_duration():
    assert sci(1.234e21) == "1.23e21" and sci(0.5) == "0.5"
    assert [duration(s) for s in (45, 720, 3.2 * 3600, 4.1 * 86400, 30 * 86400)] == [
        "45 s", "12 min", "3.2 h", "4.1 d", "30 d"]
