"""Aggregate statistics of runs with bootstrap confidence intervals.

The measures of Agarwal et al., "Deep Reinforcement Learning at the Edge of
the Statistical Precipice" (NeurIPS 2021), computed by their library rliable:
a method's scores form a matrix of runs x tasks; the interquartile mean (IQM,
the mean of the middle 50% of all its entries) and the mean, each with a
95% percentile interval from the stratified bootstrap (runs resampled
within each task); the probability of improvement P(X > Y) of one method
over another (Mann-Whitney's, averaged over tasks); performance profiles
(the share of runs above each score). Added here: the difference of two
methods' means with Welch's t interval, Welch's p-value, and the smallest
difference a comparison of these seeds could detect.

Every interval is seeded (`seed`), so a table is the same each time it is
made. rliable resamples with NumPy's global generator: its state is set for
the computation and restored after.
"""

import contextlib

import numpy as np
import scipy.stats

REPS = 2000  # Bootstrap resamples: intervals stable to about 1% of width.
SIZE = 0.95  # Interval coverage.

# Returns divided by these are normalized scores, comparable over tasks:
# every Control Suite task's return lies in [0, 1000] (1000 steps, rewards
# in [0, 1]). Other suites have no normalization here.
NORMALIZATION = {'dmc': 1000.0}


def normalizer(task):
  """The divisor of a task's returns, or None if it has none. Tasks are
  named as plot.py names them: Control Suite tasks without their prefix."""
  if task.startswith('atari_') or task.startswith('gym_'):
    return None
  return NORMALIZATION['dmc']


@contextlib.contextmanager
def seeded(seed):
  state = np.random.get_state()
  np.random.seed(seed)
  try:
    yield
  finally:
    np.random.set_state(state)


def _library():
  from rliable import library, metrics  # Imports pandas: slow, so late.
  return library, metrics


def iqm(scores):
  """The interquartile mean of every entry of a runs x tasks matrix."""
  return float(_library()[1].aggregate_iqm(np.asarray(scores, float)))


def intervals(scores, statistic='iqm', reps=REPS, seed=0):
  """{name: (estimate, low, high)} of each method's runs x tasks matrix;
  `statistic` is 'iqm' or 'mean'."""
  library, metrics = _library()
  function = dict(iqm=metrics.aggregate_iqm, mean=metrics.aggregate_mean)[
      statistic]
  result = {}
  for name, matrix in scores.items():
    matrix = np.asarray(matrix, float)
    with seeded(seed):
      points, bounds = library.get_interval_estimates(
          {name: matrix}, lambda x: np.array([function(x)]), reps=reps,
          confidence_interval_size=SIZE)
    result[name] = (
        float(points[name][0]), float(bounds[name][0, 0]),
        float(bounds[name][1, 0]))
  return result


def improvement(x, y, reps=REPS, seed=0):
  """P(X > Y) of two runs x tasks matrices (equal tasks, any runs), with
  its interval: (estimate, low, high).

  The estimate is rliable's; the interval resamples as rliable's
  StratifiedIndependentBootstrap does, the same draws in the same order,
  but scores all resamples at once: rliable's own loop calls SciPy's
  Mann-Whitney test once per task and resample, 90 s for one pair of
  10 runs x 16 tasks (Intel Xeon, 2 cores), minutes for a figure's pairs.
  tests/test_stats.py checks both intervals equal."""
  _, metrics = _library()
  x, y = np.asarray(x, float), np.asarray(y, float)
  estimate = float(metrics.probability_of_improvement(x, y))
  columns = np.arange(x.shape[1])
  with seeded(seed):
    draws = [
        (np.random.choice(len(x), x.shape), np.random.choice(len(y), y.shape))
        for _ in range(reps)]
  xs = np.stack([x[i, columns] for i, _ in draws])
  ys = np.stack([y[j, columns] for _, j in draws])
  values = pairwise_improvement(xs, ys)
  low, high = np.percentile(values, [50 * (1 - SIZE), 50 * (1 + SIZE)])
  return estimate, float(low), float(high)


def pairwise_improvement(xs, ys):
  """P(X > Y) + P(X = Y) / 2 over all pairs of runs of each task, averaged
  over tasks, for resamples xs (R, Nx, T) and ys (R, Ny, T): Mann-Whitney's
  U / (Nx Ny), as rliable computes it per resample."""
  x, y = xs[:, :, None, :], ys[:, None, :, :]
  wins = (x > y).mean((1, 2)) + 0.5 * (x == y).mean((1, 2))
  return wins.mean(-1)


def profiles(scores, thresholds, reps=REPS, seed=0):
  """{name: (shares, lows, highs)}: the share of each method's runs x tasks
  entries above each threshold, with intervals."""
  library, _ = _library()
  result = {}
  for name, matrix in scores.items():
    with seeded(seed):
      points, bounds = library.create_performance_profile(
          {name: np.asarray(matrix, float)}, thresholds, reps=reps,
          confidence_interval_size=SIZE)
    result[name] = (points[name], bounds[name][0], bounds[name][1])
  return result


def difference(x, y, size=SIZE):
  """mean(x) - mean(y) of two methods' run scores on one task, with Welch's
  t interval: (estimate, low, high); low and high are None with fewer than 2
  runs of either method.

  Welch's interval, not a bootstrap: resampling two independent samples of
  3 runs each covers about 80% where it claims 95% (a resample's spread
  underestimates the spread of a mean of so few runs), while Welch's
  covers 95% for normal scores (tests/test_stats.py simulates both)."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  estimate = float(x.mean() - y.mean())
  if len(x) < 2 or len(y) < 2:
    return estimate, None, None
  error, dof = _welch_error(x, y)
  if error == 0:
    return estimate, estimate, estimate
  half = float(scipy.stats.t.ppf(0.5 + size / 2, dof)) * error
  return estimate, estimate - half, estimate + half


def _welch_error(x, y):
  """Welch's standard error of mean(x) - mean(y) and its
  Welch-Satterthwaite degrees of freedom (sample variances, ddof=1)."""
  vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
  if vx + vy == 0:
    return 0.0, np.inf
  dof = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
  return float(np.sqrt(vx + vy)), float(dof)


def welch(x, y):
  """The p-value of Welch's two-sided t-test of equal means; None with fewer
  than 2 runs of either method."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  if len(x) < 2 or len(y) < 2:
    return None
  if x.var() == y.var() == 0:  # The test's statistic is undefined.
    return 1.0 if x.mean() == y.mean() else 0.0
  return float(scipy.stats.ttest_ind(x, y, equal_var=False).pvalue)


def detectable(x, y, alpha=0.05, power=0.8, sims=20000, seed=0):
  """The smallest true difference of means that Welch's two-sided t-test
  at level `alpha` detects with probability `power`, for normal scores with
  these runs' standard deviations (ddof=1) and numbers; None with fewer
  than 2 runs of either method.

  Welch's power is simulated: `sims` draws of both samples at equal means
  (seeded), each of which rejects at a difference d when its t statistic
  shifted by d over its own standard error leaves the critical value of its
  own degrees of freedom; d is bisected until the share rejecting reaches
  `power`. The closed form (t_{1-alpha/2} + t_power) * standard error is the
  pooled test's approximation: at 3 against 3 runs it gives Welch's test
  about 68% power, not 80%."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  if len(x) < 2 or len(y) < 2:
    return None
  sx, sy = x.std(ddof=1), y.std(ddof=1)
  if sx == sy == 0:
    return 0.0
  random = np.random.RandomState(seed)
  a = random.standard_normal((sims, len(x))) * sx
  b = random.standard_normal((sims, len(y))) * sy
  va, vb = a.var(1, ddof=1) / len(x), b.var(1, ddof=1) / len(y)
  error = np.sqrt(va + vb)
  dof = (va + vb) ** 2 / (va ** 2 / (len(x) - 1) + vb ** 2 / (len(y) - 1))
  critical = scipy.stats.t.ppf(1 - alpha / 2, dof)
  null = (a.mean(1) - b.mean(1)) / error
  rejects = lambda d: np.mean(np.abs(null + d / error) > critical)
  low, high = 0.0, np.sqrt(sx ** 2 / len(x) + sy ** 2 / len(y))
  while rejects(high) < power:
    low, high = high, 2 * high
  while high - low > 1e-6 * high:
    middle = (low + high) / 2
    low, high = (middle, high) if rejects(middle) < power else (low, middle)
  return float(high)
