"""Each metric on hand-built histories whose answers are known."""

import math

import pytest

from kernel.telemetry import metrics


def test_gini_of_equal_balances_is_zero_and_of_all_to_one_is_n_minus_one_over_n() -> None:
    assert metrics.gini([10, 10, 10, 10]) == 0.0
    assert metrics.gini([0, 0, 0, 100]) == pytest.approx(3 / 4)
    assert metrics.gini([0] * 9 + [5]) == pytest.approx(9 / 10)
    assert metrics.gini([]) is None
    assert metrics.gini([0, 0]) == 0.0


def test_gini_matches_the_pairwise_definition() -> None:
    xs = [1, 4, 4, 9, 30, 2]
    n, mu = len(xs), sum(xs) / len(xs)
    pairwise = sum(abs(a - b) for a in xs for b in xs) / (2 * n * n * mu)
    assert metrics.gini(xs) == pytest.approx(pairwise)


def test_top_ten_percent_share() -> None:
    assert metrics.top_share([10] * 10) == pytest.approx(0.1)  # one of ten holds a tenth
    assert metrics.top_share([1] * 19 + [81]) == pytest.approx((81 + 1) / 100)  # two of twenty
    assert metrics.top_share([5, 0, 0]) == 1.0  # at least one holder
    assert metrics.top_share([]) is None


def test_velocity_and_efficiency() -> None:
    assert metrics.velocity(50, 200) == 0.25
    assert metrics.velocity(50, 0) is None
    assert metrics.efficiency(3, 150) == pytest.approx(2.0)
    assert metrics.efficiency(3, 0) is None
    assert metrics.per_cpu_second(4, 2.0) == 2.0 and metrics.per_cpu_second(4, 0.0) is None


def test_a_chain_of_three_artifacts_has_depth_three() -> None:
    depths: dict[str, int] = {}
    depths["a"] = metrics.depth_of([], depths)
    depths["b"] = metrics.depth_of(["a"], depths)
    depths["c"] = metrics.depth_of(["b"], depths)
    assert depths == {"a": 1, "b": 2, "c": 3}
    assert metrics.depth_of(["a", "c"], depths) == 4  # the longest path counts


def test_depth_without_genesis_removes_the_genesis_links() -> None:
    ng: dict[str, int] = {}
    ng["lib"] = metrics.depth_non_genesis([], ng, genesis=True)
    ng["b"] = metrics.depth_non_genesis(["lib"], ng, genesis=False)
    ng["c"] = metrics.depth_non_genesis(["b"], ng, genesis=False)
    assert ng == {"lib": 0, "b": 1, "c": 2}


def test_compound_value_is_building_on_another_owner() -> None:
    owners = {"a": "ann", "b": "bob"}
    assert metrics.compounds("bob", ["a"], owners) is True
    assert metrics.compounds("bob", ["b"], owners) is False  # its own work
    assert metrics.compounds("bob", [], owners) is False
    assert metrics.share(1, 4) == 0.25 and metrics.share(0, 0) is None


def test_control_entropy() -> None:
    assert metrics.control(10, 0) == (1.0, 0.0)  # all autonomous: no uncertainty
    assert metrics.control(0, 10) == (0.0, 0.0)
    autonomy, h = metrics.control(5, 5)
    assert autonomy == 0.5 and h == pytest.approx(1.0)
    autonomy, h = metrics.control(3, 1)
    assert autonomy == 0.75 and h == pytest.approx(-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))
    assert metrics.control(0, 0) == (None, None)


def test_specialization_is_one_for_one_kind_and_zero_for_all_kinds_equally() -> None:
    assert metrics.specialization({"building": 7}) == 1.0
    assert metrics.specialization({c: 3 for c in metrics.CATEGORIES}) == pytest.approx(0.0)
    two = metrics.specialization({"building": 1, "testing": 1})
    assert two == pytest.approx(1 - math.log(2) / math.log(len(metrics.CATEGORIES)))
    assert metrics.specialization({}) is None


def test_action_categories() -> None:
    assert metrics.category("submit", "tests") == "testing"
    assert metrics.category("submit", "code") == "building"
    assert metrics.category("open_escrow") == "buying"
    assert metrics.category("deliver") == "selling"
    assert metrics.category("balance") is None  # reading one's balance is not an action


def test_an_artifact_dies_when_unused_for_the_window() -> None:
    assert metrics.lifetime(metrics.Life(born=0, last_use=None), now=10, window=5) == (5, True)
    assert metrics.lifetime(metrics.Life(born=0, last_use=8), now=10, window=5) == (10, False)  # censored
    assert metrics.lifetime(metrics.Life(born=2, last_use=4), now=20, window=5) == (7, True)


def test_kaplan_meier_on_a_known_history() -> None:
    # four artifacts born at 0: two die at 5 (never used), one at 9 (last used 4), one still alive at 20
    lives = [metrics.Life(0, None), metrics.Life(0, None), metrics.Life(0, 4), metrics.Life(0, 19)]
    s = metrics.survival(lives, now=20, window=5)
    curve = dict(zip(s["ticks"], s["survival"], strict=True))
    assert curve[0.0] == 1.0
    assert curve[5.0] == pytest.approx(0.5)  # 2 of 4 die at 5
    assert curve[9.0] == pytest.approx(0.25)  # 1 of the 2 left dies at 9
    assert s["deaths"] == 3 and s["artifacts"] == 4
    assert all(lo <= v <= hi for lo, v, hi in zip(s["low"], s["survival"], s["high"], strict=True))
    assert metrics.survival([], 0, 5)["ticks"] == []


def test_lindy_heatmap_bins() -> None:
    h = metrics.heatmap([(0, 0), (9, 3), (9, 3), (20, 0)], bins=2)
    assert h["age_edges"] == [0, 11, 22] and h["reuse_edges"] == [0, 2, 4]
    assert h["counts"] == [[1, 1], [2, 0]]  # rows: reuse bins; columns: age bins
    assert sum(map(sum, h["counts"])) == 4
    assert metrics.heatmap([])["counts"] == [[0]]


def test_two_firms_are_found_with_positive_modularity() -> None:
    ties = [("m1", "w1", 3.0), ("m1", "w2", 3.0), ("w1", "w2", 1.0),
            ("m2", "x1", 3.0), ("m2", "x2", 3.0), ("x1", "x2", 1.0), ("w1", "x1", 0.2)]  # fmt: skip
    parts, q = metrics.firms(ties, seed=0)
    assert [sorted(p) for p in parts] == [["m1", "w1", "w2"], ["m2", "x1", "x2"]]
    assert q is not None and q > 0.3
    assert metrics.firms(ties, seed=0) == (parts, q)  # a fixed seed: the same answer
    assert metrics.firms([], seed=0) == ([], None)
    owners = {"w1": "m1", "w2": "m1", "m1": "m1"}
    assert metrics.manager({"m1", "w1", "w2"}, owners) == "m1"
    assert metrics.manager({"x1", "x2"}, owners) is None
