"""The virality forecaster and its peers: robustness to what APIs send, SEISMIC by hand, fitting.

tests/data/cascades_*.jsonl are small synthetic cascades (numpy, seed 5) in the two file
formats: heavy-tailed share times, random follower counts, one tree with a skewed clock.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import quad

from classifiers.risk import RiskScorer
from classifiers.virality import ViralityForecaster
from classifiers.virality.baselines import Naive, SzaboHuberman
from classifiers.virality.cascades import Cascade, CascadeFileError, load_cascades
from classifiers.virality.defaults import default_forecaster
from classifiers.virality.lognormal import TruncatedLogNormal
from classifiers.virality.observation import MAX_SHARES, from_events, from_snapshots
from classifiers.virality.seismic import (
    C,
    CUTOFF,
    THETA,
    Seismic,
    equal_degree_components,
    infectiousness,
    kernel_integral,
    memory_ccdf,
)
from monitor.models import Author, Classification, Metrics, RiskFeatures, Snapshot, StoredMention

DATA = Path(__file__).parent / "data"
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)


def snaps(*points: tuple[float, int]) -> list[Snapshot]:
    """Snapshots from (minutes after T0, reposts)."""
    return [Snapshot(T0 + timedelta(minutes=m), Metrics(reposts=r)) for m, r in points]


def broken_histories(seed: int, n: int):
    """Snapshot lists as a broken API might give them: 1-7 polls, before the post, negative counts."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        points = sorted(rng.uniform(-10, 120, rng.integers(1, 8)))
        yield snaps(*zip(points, rng.integers(-50, 5000, len(points)).tolist()))


def forecast(snapshots, minutes_now: float, followers: int | None = 500) -> float:
    """The shipped forecaster's, as the pipeline runs it."""
    return default_forecaster().forecast(snapshots, T0, T0 + timedelta(minutes=minutes_now), followers)


@pytest.fixture(scope="module")
def events():
    return load_cascades(DATA / "cascades_events.jsonl")


@pytest.fixture(scope="module")
def delays():
    return load_cascades(DATA / "cascades_delays.jsonl")


# --- snapshots as real APIs send them ---------------------------------------------------------

def test_no_snapshots_forecasts_nothing():
    assert forecast([], 30) == 0.0


def test_single_snapshot():
    value = forecast(snaps((10, 12)), 10)
    assert math.isfinite(value) and value >= 12


def test_growing_post_grows_and_stalled_post_stays():
    growing = forecast(snaps((2, 5), (5, 15), (10, 28), (15, 40)), 15)
    stalled = forecast(snaps((2, 38), (5, 40), (10, 40), (20, 40), (40, 40), (60, 40)), 60)
    assert growing > 2 * 40
    assert 40 <= stalled < 1.2 * 40


def test_forecast_scales_with_the_counts():
    # The unfitted forecaster has no notion of a typical size: ten times the shares, ten times the
    # forecast (up to where the shares fall between snapshots).
    base = snaps((2, 30), (5, 80), (10, 120), (20, 150))
    tenfold = snaps((2, 300), (5, 800), (10, 1200), (20, 1500))
    assert forecast(tenfold, 20) == pytest.approx(10 * forecast(base, 20), rel=0.01)


def test_out_of_order_snapshots_are_sorted():
    ordered = snaps((2, 5), (5, 15), (10, 28))
    assert forecast(list(reversed(ordered)), 10) == forecast(ordered, 10)


def test_snapshots_after_now_are_ignored():
    assert forecast(snaps((2, 5), (5, 15), (30, 900)), 5) == forecast(snaps((2, 5), (5, 15)), 5)


def test_clock_skew_snapshot_before_post():
    skewed = snaps((-3, 4), (5, 10), (10, 20))
    observation = from_snapshots(skewed, T0, T0 + timedelta(minutes=10))
    assert observation.times[0] == 0.0 and observation.count_at(0.0) == 4
    assert forecast(skewed, 10) >= 20


def test_all_snapshots_at_the_moment_of_posting():
    observation = from_snapshots(snaps((-5, 3), (-1, 7), (0, 9)), T0, T0 + timedelta(minutes=1))
    assert observation.age == 0.0 and observation.seen == 9
    assert default_forecaster().predict(observation) >= 9


def test_deleted_reposts_keep_the_highest_count():
    value = forecast(snaps((2, 10), (5, 30), (10, 25)), 10)
    assert value >= 30


def test_deleted_post_stops_growing():
    observation = from_snapshots(snaps((2, 10), (5, 30), (10, 0)), T0, T0 + timedelta(minutes=10))
    forecaster = default_forecaster()
    assert observation.removed
    assert forecaster.predict(observation) == 30
    assert not forecaster.will_double(observation)


def test_absurd_counts_are_clamped_and_logged(caplog):
    with caplog.at_level(logging.WARNING):
        value = forecast(snaps((2, 10), (5, 10**12)), 5)
    assert 10 <= value <= MAX_SHARES
    assert "broken API" in caplog.text


def test_negative_counts_never_give_a_negative_forecast():
    for history in broken_histories(seed=3, n=200):
        value = forecast(history, 120)
        assert 0 <= value <= MAX_SHARES and math.isfinite(value)


def test_share_times_from_snapshots_follow_the_curve():
    observation = from_snapshots(snaps((10, 4), (20, 4), (30, 8)), T0, T0 + timedelta(minutes=30))
    times, weights = observation.share_times()
    # 4 shares on the first 10 minutes' straight line, 4 on the last 10; none while the count stood still.
    assert times.tolist() == pytest.approx([75, 225, 375, 525, 1275, 1425, 1575, 1725])
    assert weights.tolist() == [1.0] * 8
    thinned, thin_weights = observation.share_times(limit=2)
    assert thin_weights.tolist() == [4.0, 4.0] and thinned.tolist() == pytest.approx([300, 1500])


def test_risk_score_reads_the_forecast():
    mention = StoredMention(1, "x", "1", "acme", Author("a1", "angry", 300), "Acme, my internet is down again",
                            T0, "en", None, None, None, False)
    classification = Classification(1, "lexicon", "1", "en", "negative",
                                    {"negative": 0.9, "neutral": 0.05, "positive": 0.05}, 0.8)

    def assess(snapshots, minutes):
        features = RiskFeatures(mention, classification, tuple(snapshots), 0, None, T0 + timedelta(minutes=minutes))
        return RiskScorer().assess(features, lambda probability: None)

    growing = assess(snaps((2, 5), (5, 15), (10, 28), (15, 40)), 15)
    stalled = assess(snaps((2, 38), (5, 40), (10, 40), (15, 40)), 15)
    assert growing.forecast_shares > stalled.forecast_shares >= 40
    assert growing.probability > stalled.probability
    assert f"40 reposts in 15 min, forecast {round(growing.forecast_shares)}" in growing.reason_line


# --- SEISMIC ---------------------------------------------------------------------------------------

def test_memory_kernel_is_a_distribution():
    assert memory_ccdf(np.array([0.0]))[0] == 1.0
    below, above = memory_ccdf(np.array([CUTOFF - 1e-9, CUTOFF + 1e-9]))
    assert below == pytest.approx(above)  # the constant and the power-law pieces meet
    assert memory_ccdf(np.array([1e12]))[0] < 1e-2
    # c and theta of the package make the kernel integrate to 1.
    assert C * CUTOFF * (1 + 1 / THETA) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("share", [590.0, 250.0, 50.0, -2000.0])
def test_kernel_integral_matches_numerical_integration(share):
    # Each share falls in a different case: near p, in the window, at its edge, before it.
    p, window = 600.0, 400.0
    slope = 1 / window

    def integrand(u):
        phi = C if u - share <= CUTOFF else C * ((u - share) / CUTOFF) ** -(1 + THETA)
        return phi * (slope * (u - p) + 1)

    lower = share if p - share <= CUTOFF or p - share <= window else p - window
    points = [x for x in (share + CUTOFF,) if lower < x < p]
    expected = quad(integrand, lower, p, points=points or None)[0]
    assert kernel_integral(p, np.array([share]), slope, window)[0] == pytest.approx(expected, rel=1e-7)


def test_seismic_tiny_case_by_hand():
    """A post (10,000 followers) and 4 retweets (1,000 each) at 50, 100, 150 and 190 s, seen at 200 s.

    The window is 300 s (p/2 = 100 s raised to the minimum), slope 1/300, and holds all 5 shares,
    all within s0 = 300 s of p: each share's kernel integral is c * ((p - s) - (p - s)^2 / 600).
    """
    c, p = C, 200.0
    lags = [200, 150, 100, 50, 10]  # p - s for the post and the four retweets
    degrees = [10_000, 1_000, 1_000, 1_000, 1_000]
    exposure = sum(n * c * (d - d * d / 600) for n, d in zip(degrees, lags))
    weighted = sum(1 - d / 300 for d in lags[1:])  # 0.5 + 0.667 + 0.833 + 0.967
    p_t = weighted / exposure
    direct = p_t * sum(n * (1 - c * d) for n, d in zip(degrees, lags))
    expected = 4 + direct / (1 - 100 * p_t)
    assert p_t == pytest.approx(2.966667 / 993.0, rel=1e-3)
    assert expected == pytest.approx(57.5, abs=0.1)

    cascade = Cascade("tiny", np.array([50.0, 100, 150, 190]), 80, np.full(4, 1_000.0), 10_000.0)
    observation = cascade.observe(p)
    assert infectiousness(np.array([0.0, 50, 100, 150, 190]), np.array(degrees, dtype=float), p) == pytest.approx(p_t)
    assert Seismic().predict(observation) == pytest.approx(expected)


def test_seismic_window_stretches_to_min_count_shares():
    # Only the post and one retweet before p: the window reaches back to the post (slope 1/p).
    times, degrees, p = np.array([0.0, 60.0]), np.array([100.0, 50.0]), 600.0
    weighted = 1 - (p - 60) / p
    exposure = float(np.sum(degrees * kernel_integral(p, times, 1 / p, p)))
    assert infectiousness(times, degrees, p) == pytest.approx(weighted / exposure)


def test_seismic_supercritical_is_infinite():
    # A tiny audience that reshared fast: p_t * n_star far above 1.
    cascade = Cascade("hot", np.arange(10, 200, 10.0), 500, np.full(19, 5.0), 5.0)
    assert Seismic().predict(cascade.observe(200.0)) == math.inf


def test_seismic_needs_followers(delays):
    assert not Seismic.applies(delays[0].observe(600))


def test_equal_degree_components_from_events_and_from_snapshots_agree():
    # The same shares, one at each minute, seen as events and as per-minute snapshots.
    cascade = Cascade("steady", np.arange(60, 1260, 60.0), 40)
    from_counts = from_snapshots(snaps(*[(m, m) for m in range(1, 21)]), T0, T0 + timedelta(minutes=20))
    exact, approx = equal_degree_components(cascade.observe(1200)), equal_degree_components(from_counts)
    assert approx[0] == pytest.approx(exact[0], rel=0.15)


def test_seismic_fit_scale_improves_its_log_error(events):
    def male(model):
        return np.mean([abs(math.log(model.predict(c.observe(1800)) / c.final)) for c in events])

    fitted = Seismic().fit(events, [1800])
    assert fitted.alpha_by_age_(1800) != 1.0
    assert male(fitted) <= male(Seismic())


# --- the peers without followers ------------------------------------------------------------------

def test_naive_and_szabo_huberman(events):
    observation = events[0].observe(600)
    assert Naive().predict(observation) == observation.seen
    sh = SzaboHuberman().fit(events, [600])
    growth = np.mean([math.log(c.final) - math.log(max(c.observe(600).seen, 1)) for c in events])
    assert sh.predict(observation) == pytest.approx(max(observation.seen, 1) * math.exp(growth))


# --- cascade files ------------------------------------------------------------------------------------

def test_load_both_formats(events, delays):
    assert len(events) == 12 and len(delays) == 12
    first = events[0]
    assert first.final == first.times.size and first.followers.size == first.times.size
    assert first.author_followers == 70419
    tree = delays[0]
    assert tree.followers is None and tree.final == tree.times.size and tree.times[0] == 0.0


def test_delays_before_the_root_count_from_the_post(delays):
    skewed = delays[3]
    assert skewed.times.min() < 0
    assert skewed.observe(0.0).seen == np.count_nonzero(skewed.times <= 0)
    assert from_events(skewed.times, 0.0).times.min() == 0.0


@pytest.mark.parametrize("line, message", [
    ("{not json", "line 2: not JSON"),
    ('{"id": "x", "events": [[0, 5]]}', "line 2: missing field 'final_retweets'"),
    ('{"id": "x", "final_retweets": 0, "events": [[0, 5], [3, 1]]}', "below the 1 retweets"),
    ('{"id": "x", "delays_min": [0, "soon"]}', "a delay must be a number"),
    ('{"id": "x"}', "expected an 'events' or a 'delays_min' field"),
    ("[1, 2]", "must be a JSON object"),
])
def test_bad_cascade_lines(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "ok", "delays_min": [0, 1]}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(CascadeFileError, match=message):
        load_cascades(path)


def test_missing_and_empty_cascade_files(tmp_path):
    with pytest.raises(CascadeFileError, match="cannot read"):
        load_cascades(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(CascadeFileError, match="no cascades"):
        load_cascades(tmp_path / "empty.jsonl")


# --- the fitted forecaster ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fitted(events):
    return ViralityForecaster(n_estimators=20, max_rounds=20, min_samples_leaf=5).fit(events, [600])


def test_fitted_forecaster_is_bounded_and_uses_what_it_has(events, delays, fitted):
    assert set(fitted.models_) == {"counts", "author", "followers"}
    assert all(0 <= rounds <= 20 for rounds in fitted.rounds_.values())
    for cascade in events + delays:
        observation = cascade.observe(600)
        value = fitted.predict(observation)
        assert observation.seen <= value <= MAX_SHARES
        assert isinstance(fitted.will_double(observation), bool)
    # Snapshots with the author's followers use the model fitted without the sharers' followers.
    assert fitted.forecast(snaps((2, 3), (10, 9)), T0, T0 + timedelta(minutes=10), 800) >= 9


def test_fitted_forecaster_on_snapshots_as_apis_send_them(fitted):
    def fitted_forecast(snapshots, minutes_now, followers=500):
        return fitted.forecast(snapshots, T0, T0 + timedelta(minutes=minutes_now), followers)

    assert fitted_forecast([], 30) == 0.0
    assert 12 <= fitted_forecast(snaps((10, 12)), 10) < MAX_SHARES
    ordered = snaps((2, 5), (5, 15), (10, 28))
    assert fitted_forecast(list(reversed(ordered)), 10) == fitted_forecast(ordered, 10) >= 28
    assert fitted_forecast(snaps((-3, 4), (5, 10), (10, 20)), 10) >= 20
    assert fitted_forecast(snaps((2, 10), (5, 30), (10, 0)), 10) == 30
    assert fitted_forecast(snaps((2, 10), (5, 10**12)), 5) == MAX_SHARES
    assert fitted_forecast(snaps((2, 10), (5, 30)), 5, followers=None) >= 30
    for history in broken_histories(seed=4, n=50):
        value = fitted_forecast(history, 120)
        assert 0 <= value <= MAX_SHARES and math.isfinite(value)


def test_fitted_forecaster_trusts_the_parametric_model_on_too_few_cascades(events):
    forecaster = ViralityForecaster(n_estimators=5, inner_folds=3).fit(events[:5], [600])
    assert set(forecaster.rounds_.values()) == {0}
    assert all(model.correction is None for model in forecaster.models_.values())


def test_forecaster_fitted_without_followers_still_forecasts_events(events, delays):
    forecaster = ViralityForecaster(n_estimators=20, max_rounds=20, min_samples_leaf=5).fit(delays)
    assert set(forecaster.models_) == {"counts"}
    assert forecaster.predict(events[0].observe(600)) >= events[0].observe(600).seen


def _risers_and_finished():
    """Early risers end at 10x what is seen at 10 min; late ones are already done. Their counts so
    far look alike to the parametric model (age, self-exciting growth); only the trees tell them apart."""
    rising = [Cascade(f"r{i}", np.concatenate([np.arange(60, 600, 60.0), np.linspace(3600, 7200, 81)]), 90)
              for i in range(10)]
    done = [Cascade(f"d{i}", np.arange(30, 600, 30.0), 19) for i in range(10)]
    return rising, done


def test_forecaster_learns_doubling_from_its_training_cascades():
    rising, done = _risers_and_finished()
    forecaster = ViralityForecaster(n_estimators=30, min_samples_leaf=2, train_ages=[300, 600]).fit(rising + done)
    assert forecaster.will_double(rising[0].observe(600))
    assert not forecaster.will_double(done[0].observe(600))


def test_trees_correct_what_the_parametric_model_misses():
    rising, done = _risers_and_finished()
    settings = dict(n_estimators=30, min_samples_leaf=2, train_ages=[300, 600])
    parametric = ViralityForecaster(max_rounds=0, **settings).fit(rising + done)
    assert parametric.predict(rising[0].observe(600)) == pytest.approx(parametric.predict(done[0].observe(600)), rel=0.05)
    corrected = ViralityForecaster(**settings).fit(rising + done)
    assert corrected.rounds_["counts"] > 0
    assert corrected.predict(rising[0].observe(600)) > 60 and corrected.predict(done[0].observe(600)) < 25


def test_fit_without_any_share_is_an_error():
    with pytest.raises(ValueError, match="nothing to fit"):
        ViralityForecaster().fit([Cascade("late", np.array([90_000.0]), 1)], [600])


# --- the truncated log-normal -------------------------------------------------------------------------

def _truncated_sample(n=4000, floor=150.0, seed=1):
    """ln final = ln seen + 1 + 0.5 x + normal(0, 0.4), kept only where final >= floor."""
    rng = np.random.default_rng(seed)
    seen = np.exp(rng.uniform(0, 5, n))
    x = rng.normal(size=n)
    final = seen * np.exp(1 + 0.5 * x + rng.normal(0, 0.4, n))
    keep = final >= floor
    return x[keep, None], seen[keep], np.full(keep.sum(), 3600.0), final[keep]


def test_truncated_log_normal_recovers_the_model_behind_a_floor():
    X, seen, age, final = _truncated_sample()
    model = TruncatedLogNormal(ridge=0).fit(X, seen, age, final)
    assert model.log_floor_ == pytest.approx(math.log(final.min()))
    slope = model.coef_[1] / model.scale_[0]
    intercept = model.coef_[0] - slope * model.mean_[0]
    assert (intercept, slope, math.exp(model.spread_[0])) == pytest.approx((1, 0.5, 0.4), abs=0.05)
    # Least squares on the same rows is biased by the floor: growth too high, too flat.
    ols_slope, ols_intercept = np.polyfit(X[:, 0], np.log(final / seen), 1)
    assert ols_intercept > 1.1 and ols_slope < 0.47


def test_truncated_log_normal_quantiles():
    X, seen, age, final = _truncated_sample()
    model = TruncatedLogNormal().fit(X, seen, age, final)
    grid = np.array([[-3.0], [0.0], [3.0]])
    small = np.array([1.0, 1.0, 1.0])
    low, median, high = (model.quantile(grid, small, np.full(3, 3600.0), q) for q in (0.1, 0.5, 0.9))
    assert np.all(low <= median) and np.all(median <= high)
    # Far below the floor, every quantile sits just above it; nothing overflows.
    assert np.all(low >= model.log_floor_) and np.all(np.isfinite(high))
    far = model.quantile(np.array([[-40.0]]), np.array([1.0]), np.array([3600.0]), 0.5)
    assert far[0] == pytest.approx(model.log_floor_)
    # Seen above the floor: never below what is seen.
    assert model.quantile(np.array([[-3.0]]), np.array([1e6]), np.array([3600.0]), 0.01)[0] >= math.log(1e6)
