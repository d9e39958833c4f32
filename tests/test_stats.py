"""runs/stats.py against direct numpy computations on small fixed score
matrices, and plot.py's statistics tables."""

import json
import pathlib
import sys

import numpy as np
import pytest
import scipy.stats

from helpers import ROOT, run_script

sys.path.insert(0, str(ROOT / 'runs'))
import stats  # noqa: E402

# 5 runs x 3 tasks, with ties, and a second method of 4 runs.
X = np.array([
    [1., 5., 3.], [2., 8., 4.], [9., 1., 5.], [4., 4., 4.], [7., 2., 6.]])
Y = np.array([[3., 5., 1.], [2., 6., 2.], [8., 3., 7.], [5., 4., 3.]])


def trimmed(values):
  """The mean of the middle 50%: a quarter of the entries (rounded down)
  cut from each end."""
  values = np.sort(np.ravel(values))
  cut = len(values) // 4
  return values[cut:len(values) - cut].mean()


def stratified(matrix, reps, seed):
  """Resamples of runs within each task, drawn as rliable draws them."""
  random = np.random.RandomState(seed)
  tasks = np.arange(matrix.shape[1])
  return [
      matrix[random.choice(len(matrix), matrix.shape), tasks]
      for _ in range(reps)]


def percentiles(values):
  return np.percentile(values, [2.5, 97.5])


def test_iqm_and_mean_with_their_intervals():
  assert trimmed(X) == pytest.approx(4.111111, abs=1e-6)  # 9 of 15 values.
  assert stats.iqm(X) == pytest.approx(trimmed(X))
  for statistic, function in (('iqm', trimmed), ('mean', np.mean)):
    result = stats.intervals({'x': X}, statistic, reps=300, seed=7)['x']
    resamples = [function(m) for m in stratified(X, 300, 7)]
    assert result[0] == pytest.approx(function(X))
    np.testing.assert_allclose(result[1:], percentiles(resamples))
    assert result[1] < result[0] < result[2]


def test_probability_of_improvement():
  # Per task: the share of pairs (x, y) with x > y, ties counting half.
  direct = np.mean([
      np.mean([(x > y) + 0.5 * (x == y) for x in X[:, t] for y in Y[:, t]])
      for t in range(3)])
  estimate, low, high = stats.improvement(X, Y, reps=300, seed=3)
  assert estimate == pytest.approx(direct)
  # The interval: each method's runs resampled independently, in rliable's
  # order (X, then Y, per resample) ...
  random = np.random.RandomState(3)
  tasks = np.arange(3)
  values = []
  for _ in range(300):
    x = X[random.choice(5, X.shape), tasks]
    y = Y[random.choice(4, Y.shape), tasks]
    values.append(np.mean([
        scipy.stats.mannwhitneyu(x[:, t], y[:, t], alternative='greater')[0]
        / 20 if not np.array_equal(x[:, t], y[:, t]) else 0.5
        for t in range(3)]))
  np.testing.assert_allclose([low, high], percentiles(values))
  # ... and equal to rliable's own (slow) bootstrap of the same draws.
  from rliable import library, metrics
  with stats.seeded(3):
    _, bounds = library.get_interval_estimates(
        {'p': [X, Y]}, metrics.probability_of_improvement, reps=300)
  np.testing.assert_allclose([low, high], np.ravel(bounds['p']))
  # P(Y > X) is the complement.
  assert stats.improvement(Y, X, reps=10)[0] == pytest.approx(1 - direct)


def test_performance_profiles():
  thresholds = np.array([0., 2.5, 4., 8.5])
  shares, lows, highs = stats.profiles({'x': X}, thresholds, reps=300)['x']
  np.testing.assert_allclose(
      shares, [(X > t).mean() for t in thresholds])
  resamples = [[(m > t).mean() for t in thresholds]
               for m in stratified(X, 300, 0)]
  bounds = np.percentile(resamples, [2.5, 97.5], axis=0)
  np.testing.assert_allclose(lows, bounds[0])
  np.testing.assert_allclose(highs, bounds[1])


def test_difference_is_welchs_t_interval():
  from statsmodels.stats.weightstats import CompareMeans, DescrStatsW
  x, y = X[:, 0], Y[:, 0]
  estimate, low, high = stats.difference(x, y)
  assert estimate == pytest.approx(x.mean() - y.mean())
  reference = CompareMeans(DescrStatsW(x), DescrStatsW(y)).tconfint_diff(
      alpha=0.05, usevar='unequal')
  np.testing.assert_allclose([low, high], reference, rtol=1e-10)
  assert stats.difference(x[:1], y) == (x[0] - y.mean(), None, None)
  assert stats.difference([2, 2], [1, 1]) == (1.0, 1.0, 1.0)


def test_welchs_interval_covers_where_the_bootstrap_did_not():
  # 3 against 3 normal runs of unequal spreads, true difference 10.
  random = np.random.RandomState(2)
  a = random.normal(10, 20, (2000, 3))
  b = random.normal(0, 40, (2000, 3))
  welch = np.array([stats.difference(x, y)[1:] for x, y in zip(a, b)])
  covered = (welch[:, 0] <= 10) & (10 <= welch[:, 1])
  assert abs(covered.mean() - 0.95) < 0.015
  # The percentile bootstrap of each sample's runs, as stats.difference
  # computed it before: far below its claimed 95%.
  pick = lambda n: random.randint(3, size=(2000, 500, n))
  rows = np.arange(2000)[:, None, None]
  draws = a[rows, pick(3)].mean(-1) - b[rows, pick(3)].mean(-1)
  low, high = np.percentile(draws, [2.5, 97.5], axis=1)
  assert ((low <= 10) & (10 <= high)).mean() < 0.85


@pytest.mark.parametrize('runs,spreads', [
    ((3, 3), (1.0, 1.0)), ((3, 3), (1.0, 3.0)), ((5, 3), (2.0, 1.0))])
def test_detectable_gives_welchs_test_80_percent_power(runs, spreads):
  base = [np.linspace(-1, 1, n) for n in runs]
  x, y = [s * b / b.std(ddof=1) for s, b in zip(spreads, base)]
  shift = stats.detectable(x, y)
  # Scipy's Welch test on fresh normal samples of those spreads.
  random = np.random.RandomState(7)
  a = random.normal(shift, spreads[0], (40000, runs[0]))
  b = random.normal(0, spreads[1], (40000, runs[1]))
  p = scipy.stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue
  assert abs((p < 0.05).mean() - 0.8) < 0.03
  if runs == (3, 3) and spreads == (1.0, 1.0):
    # The pooled test's closed form, which stats.detectable was: about 68%.
    error = np.sqrt(2 / 3)
    old = (scipy.stats.t.ppf(0.975, 4) + scipy.stats.t.ppf(0.8, 4)) * error
    p = scipy.stats.ttest_ind(
        a - shift + old, b, axis=1, equal_var=False).pvalue
    assert (p < 0.05).mean() < 0.72


def test_detectable_and_welch_in_the_degenerate_cases():
  x, y = X[:, 0], Y[:, 0]
  assert stats.detectable(x[:1], y) is None
  assert stats.detectable([1, 1], [2, 2]) == 0.0
  assert stats.detectable(x, y) == stats.detectable(x, y)  # Seeded.
  # Welch's p-value, by hand from its standard error and freedom.
  vx, vy = x.var(ddof=1) / 5, y.var(ddof=1) / 4
  dof = (vx + vy) ** 2 / (vx ** 2 / 4 + vy ** 2 / 3)
  t = (x.mean() - y.mean()) / np.sqrt(vx + vy)
  assert stats.welch(x, y) == pytest.approx(
      2 * scipy.stats.t.sf(abs(t), dof))
  assert stats.welch(x[:1], y) is None
  assert stats.welch([1, 1], [1, 1]) == 1.0
  assert stats.welch([2, 2], [1, 1]) == 0.0


def test_the_global_random_state_is_left_alone():
  np.random.seed(123)
  expected = np.random.rand()
  np.random.seed(123)
  stats.intervals({'x': X}, 'iqm', reps=20)
  stats.improvement(X, Y, reps=20)
  assert np.random.rand() == expected


def test_only_control_suite_returns_are_normalized():
  assert stats.normalizer('walker_run') == 1000
  assert stats.normalizer('atari_pong') is None


def write_runs(root, scores, finals=True):
  """Runs whose curves end at, and whose final episodes average, score."""
  for (task, method), values in scores.items():
    for seed, value in enumerate(values):
      logdir = pathlib.Path(root) / task / method / str(seed)
      logdir.mkdir(parents=True)
      lines = [{'step': s, 'test/return': value * s / 1000}
               for s in (0, 500, 1000)]
      (logdir / 'metrics.jsonl').write_text(
          ''.join(json.dumps(line) + '\n' for line in lines))
      if finals:
        lines = [{'step': 1000, 'episode': e, 'length': 500,
                  'return': value + d} for e, d in enumerate((-1, 1))]
        (logdir / 'final.jsonl').write_text(
            ''.join(json.dumps(line) + '\n' for line in lines))


@pytest.mark.slow
def test_plot_reports_the_statistics(tmp_path):
  scores = {}
  for t, task in enumerate(('walker_run', 'hopper_hop', 'cheetah_run')):
    scores[task, 'new'] = 100 * X[:, t]
    scores[task, 'old'] = 100 * Y[:, t]
  write_runs(tmp_path / 'runs', scores)
  output = tmp_path / 'figure'
  process = run_script(
      'runs/plot.py', str(tmp_path / 'runs'), '--output', str(output),
      '--versus', 'old', '--reps', '200', '--last', '1', timeout=300)
  assert process.returncode == 0, process.stderr[-2000:]
  numbers = json.loads(output.with_suffix('.json').read_text())
  result = numbers['statistics']
  assert result['score'] == 'final'  # Every run has a final evaluation.
  tasks = ['cheetah_run', 'hopper_hop', 'walker_run']
  assert result['tasks'] == tasks
  columns = [['walker_run', 'hopper_hop', 'cheetah_run'].index(t)
             for t in tasks]
  normalized = result['normalized']
  assert normalized['runs'] == {'new': [5, 3], 'old': [4, 3]}
  assert normalized['iqm']['new'] == pytest.approx(list(stats.intervals(
      {'n': X[:, columns] / 10}, 'iqm', reps=200)['n']))
  assert normalized['mean']['old'][0] == pytest.approx(Y.mean() / 10)
  assert result['improvement']['new > old'] == pytest.approx(list(
      stats.improvement(X[:, columns], Y[:, columns], reps=200)))
  for kind in ('final', 'end'):  # Curves end where final returns average.
    difference = result['versus'][kind]['walker_run']['new']
    assert difference['difference'][0] == pytest.approx(
        100 * (X[:, 0].mean() - Y[:, 0].mean()))
    assert difference['seeds'] == [5, 4]
    assert difference['p'] == pytest.approx(
        stats.welch(100 * X[:, 0], 100 * Y[:, 0]))
    assert difference['difference'] == pytest.approx(list(
        stats.difference(100 * X[:, 0], 100 * Y[:, 0])))
  # Per task, the IQM over seeds; standard deviations are ddof=1.
  entry = numbers['walker_run']['new']
  assert entry['final'][1] == pytest.approx(np.std(100 * X[:, 0], ddof=1))
  assert entry['final_iqm'][0] == pytest.approx(100 * trimmed(X[:, 0]))
  assert entry['end_iqm'][0] == pytest.approx(100 * trimmed(X[:, 0]))
  table = output.with_suffix('.md').read_text()
  assert 'Over 3 tasks, normalized (return / 1000)' in table
  assert '| new | old |' in table and '| old | new |' not in table
  assert "Difference from old" in table
  # The same runs from two roots, one method each, and a filter.
  for task in ('walker_run', 'hopper_hop', 'cheetah_run'):
    (tmp_path / 'other' / task).mkdir(parents=True)
    (tmp_path / 'runs' / task / 'old').rename(tmp_path / 'other' / task / 'old')
  process = run_script(
      'runs/plot.py', str(tmp_path / 'runs'), str(tmp_path / 'other'),
      '--output', str(tmp_path / 'split'), '--versus', 'old', '--reps', '200',
      '--last', '1', timeout=300)
  assert process.returncode == 0, process.stderr[-2000:]
  split = json.loads(tmp_path.joinpath('split.json').read_text())
  assert split['statistics']['versus'] == result['versus']
  process = run_script(
      'runs/plot.py', str(tmp_path / 'runs'), str(tmp_path / 'other'),
      '--output', str(tmp_path / 'one'), '--methods', 'old', '--reps', '20',
      timeout=300)
  assert process.returncode == 0, process.stderr[-2000:]
  one = json.loads(tmp_path.joinpath('one.json').read_text())
  assert {name for task in tasks for name in one[task]} == {'old'}
  process = run_script(
      'runs/plot.py', str(tmp_path / 'other'), str(tmp_path / 'other'),
      '--output', str(tmp_path / 'twice'), timeout=300)
  assert process.returncode == 1
  assert 'is under more than one of' in process.stderr
  # Without final evaluations the score is the curve's end.
  write_runs(tmp_path / 'curves', scores, finals=False)
  process = run_script(
      'runs/plot.py', str(tmp_path / 'curves'), '--output', str(output),
      '--reps', '50', timeout=300)
  assert process.returncode == 0, process.stderr[-2000:]
  numbers = json.loads(output.with_suffix('.json').read_text())
  assert numbers['statistics']['score'] == 'end'
  assert 'versus' not in numbers['statistics']
  process = run_script(
      'runs/plot.py', str(tmp_path / 'curves'), '--output', str(output),
      '--versus', 'upstream', timeout=300)
  assert process.returncode == 1
  assert process.stderr.strip().endswith(
      "plot.py: error: no runs of --versus 'upstream' under "
      f"{tmp_path / 'curves'}")
