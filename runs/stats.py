"""Aggregate statistics of runs with bootstrap confidence intervals.

The measures of Agarwal et al., "Deep Reinforcement Learning at the Edge of
the Statistical Precipice" (NeurIPS 2021), computed by their library rliable:
a method's scores form a matrix of runs x tasks; the interquartile mean (IQM,
the mean of the middle 50% of all its entries) and the mean, each with a
95% percentile interval from the stratified bootstrap (runs resampled
within each task); the probability of improvement P(X > Y) of one method
over another (Mann-Whitney's, averaged over tasks); performance profiles
(the share of runs above each score). Added here: the difference of two
methods' means with its bootstrap interval, and the smallest difference a
comparison of these seeds could detect.

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


def difference(x, y, reps=REPS, seed=0):
  """mean(x) - mean(y) of two methods' run scores on one task, with the
  percentile interval of resampling each method's runs independently:
  (estimate, low, high)."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  random = np.random.RandomState(seed)
  draws = (
      x[random.randint(len(x), size=(reps, len(x)))].mean(1) -
      y[random.randint(len(y), size=(reps, len(y)))].mean(1))
  low, high = np.percentile(draws, [50 * (1 - SIZE), 50 * (1 + SIZE)])
  return float(x.mean() - y.mean()), float(low), float(high)


def welch(x, y):
  """The p-value of Welch's two-sided t-test of equal means; None with fewer
  than 2 runs of either method."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  if len(x) < 2 or len(y) < 2:
    return None
  if x.var() == y.var() == 0:  # The test's statistic is undefined.
    return 1.0 if x.mean() == y.mean() else 0.0
  return float(scipy.stats.ttest_ind(x, y, equal_var=False).pvalue)


def detectable(x, y, alpha=0.05, power=0.8):
  """The smallest true difference of means that Welch's two-sided t-test
  at level `alpha` would detect with probability `power`, given these runs'
  spreads and numbers: (t_{1-alpha/2} + t_{power}) * standard error, with
  Welch-Satterthwaite's degrees of freedom. None with fewer than 2 runs of
  either method."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  if len(x) < 2 or len(y) < 2:
    return None
  vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
  error = np.sqrt(vx + vy)
  if error == 0:
    return 0.0
  dof = (vx + vy) ** 2 / (
      vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
  t = scipy.stats.t.ppf
  return float((t(1 - alpha / 2, dof) + t(power, dof)) * error)
