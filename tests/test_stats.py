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


def test_difference_and_the_smallest_detectable_one():
  x, y = X[:, 0], Y[:, 0]
  estimate, low, high = stats.difference(x, y, reps=500, seed=1)
  assert estimate == pytest.approx(x.mean() - y.mean())
  random = np.random.RandomState(1)
  draws = (x[random.randint(5, size=(500, 5))].mean(1) -
           y[random.randint(4, size=(500, 4))].mean(1))
  np.testing.assert_allclose([low, high], percentiles(draws))
  # Welch's standard error and degrees of freedom, by hand.
  vx, vy = x.var(ddof=1) / 5, y.var(ddof=1) / 4
  dof = (vx + vy) ** 2 / (vx ** 2 / 4 + vy ** 2 / 3)
  expected = (scipy.stats.t.ppf(0.975, dof) + scipy.stats.t.ppf(0.8, dof)
              ) * np.sqrt(vx + vy)
  assert stats.detectable(x, y) == pytest.approx(expected)
  assert stats.detectable(x[:1], y) is None
  # Welch's p-value, by hand from the same standard error and freedom.
  t = (x.mean() - y.mean()) / np.sqrt(vx + vy)
  assert stats.welch(x, y) == pytest.approx(
      2 * scipy.stats.t.sf(abs(t), dof))
  assert stats.welch(x[:1], y) is None
  assert stats.welch([1, 1], [1, 1]) == 1.0
  assert stats.welch([2, 2], [1, 1]) == 0.0
  # At that difference, Welch's test rejects about 80% of the time.
  random = np.random.RandomState(0)
  a = random.normal(0, 1, (4000, 5))
  b = random.normal(0, 1, (4000, 5))
  shift = stats.detectable(a[0] * 0 + [0, 1, 0, 1, 0.5],
                           b[0] * 0 + [0, 1, 0, 1, 0.5])
  sd = np.std([0, 1, 0, 1, 0.5], ddof=1)
  a, b = a * sd + shift, b * sd
  p = scipy.stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue
  assert abs((p < 0.05).mean() - 0.8) < 0.04


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
  # Per task, the IQM over seeds.
  entry = numbers['walker_run']['new']
  assert entry['final_iqm'][0] == pytest.approx(100 * trimmed(X[:, 0]))
  assert entry['end_iqm'][0] == pytest.approx(100 * trimmed(X[:, 0]))
  table = output.with_suffix('.md').read_text()
  assert 'Over 3 tasks, normalized (return / 1000)' in table
  assert '| new | old |' in table and '| old | new |' not in table
  assert "Difference from old" in table
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
