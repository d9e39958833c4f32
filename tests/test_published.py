"""runs/published_check.py: the fork's runs binned as upstream's published
curves and set beside them.

Two tests read upstream's own files from a checkout named by UPSTREAM (see
tests/test_upstream.py); the others need none.
"""

import importlib.util
import json
import os
import pathlib
import sys

import numpy as np
import pytest

from helpers import ROOT, run_script

sys.path.insert(0, str(ROOT / 'runs'))
import published_check  # noqa: E402

UPSTREAM = os.environ.get('UPSTREAM')
needs_upstream = pytest.mark.skipif(
    not UPSTREAM, reason='UPSTREAM is not set: needs a checkout of '
    'danijar/dreamer at 56d4d44')
# Upstream's cartpole_balance_sparse seeds at 5k and (5k, 105k], and one
# made-up seed that reached only 5k.
SEEDS = {0: {5000: 9.0, 105000: 638.4}, 1: {5000: 12.0, 105000: 557.3},
         2: {5000: 13.0}}


def write_run(logdir, curve, finals=None, final_step=105000):
  logdir.mkdir(parents=True)
  lines = []
  for step, value in curve:
    lines += [{'step': step, 'test/return': value},
              {'step': step + 500, 'model_loss': 1.0}]
  (logdir / 'metrics.jsonl').write_text(
      ''.join(json.dumps(line) + '\n' for line in lines))
  if finals:
    (logdir / 'final.jsonl').write_text(''.join(
        json.dumps({'step': final_step, 'episode': i, 'return': r}) + '\n'
        for i, r in enumerate(finals)))


def test_bins_as_upstreams_plotting():
  # Evaluations at 5k, 15k, ..., 95k, unordered; edges from the first.
  steps = list(range(95000, 4999, -10000))
  edges, values = published_check.binning(steps, [s / 1000 for s in steps])
  assert edges == [5000]  # 95k is below the next edge, 105k.
  assert values == [5.0]
  steps.append(105000)
  edges, values = published_check.binning(steps, [s / 1000 for s in steps])
  assert edges == [5000, 105000]
  # (5k, 105k]: 15, 25, ..., 105, whose mean is 60.
  assert values == [5.0, pytest.approx(60.0)]
  # An empty bin has no value; a step on an edge belongs to its left bin.
  edges, values = published_check.binning([0, 250000], [1.0, 3.0])
  assert edges == [0, 100000, 200000] and values == [1.0, None, None]
  edges, values = published_check.binning([0, 100000, 100001], [1, 2, 4])
  assert values == [1.0, 2.0]


def test_the_final_evaluation_stands_in_for_the_last_test(tmp_path):
  logdir = tmp_path / 'cartpole_balance_sparse' / 'dreamer' / '0'
  curve = [(5000 + 10000 * i, 100.0 * i) for i in range(10)]
  write_run(logdir, curve, finals=[600.0, 700.0, 800.0])
  run = published_check.check_run(logdir, 'cartpole_balance_sparse', SEEDS)
  assert run['stand_in'] == 105000
  assert run['edges'] == [5000, 105000]
  # 100..900, then the final evaluation's first episode, 600: 510.
  assert run['values'] == [0.0, pytest.approx(510.0)]
  assert run['values_with_final_mean'] == [0.0, pytest.approx(520.0)]
  at5k, at105k = run['upstream']
  assert at5k['seeds'] == [9.0, 12.0, 13.0] and not at5k['inside']
  assert at105k['seeds'] == [638.4, 557.3]
  assert (at105k['low'], at105k['high']) == (557.3, 638.4)
  assert at105k['std'] == pytest.approx(np.std([638.4, 557.3], ddof=1))
  assert not at105k['inside']
  text = published_check.table('cartpole_balance_sparse', {'r': run}, SEEDS)
  assert '| r | 0.0 | 510.0 | 700.0 ± 100.0 (3 episodes at 105000) |' in text
  assert "- r, (5k, 105k]: 510.0, OUTSIDE upstream's range 557 to 638." in text
  assert '| published range | 9 to 13 | 557 to 638 | |' in text
  # A run whose curve holds the test at its last checkpoint needs none.
  other = tmp_path / 'other' / 'dreamer' / '0'
  write_run(other, curve + [(105000, 600.0)], finals=[0.0, 1.0])
  run = published_check.check_run(other, 'cartpole_balance_sparse', SEEDS)
  assert run['stand_in'] is None and run['values'][1] == pytest.approx(510)
  assert 'values_with_final_mean' not in run
  assert run['upstream'][1]['inside'] is False


def test_tests_at_the_start_of_a_resume_are_left_out(tmp_path):
  logdir = tmp_path / 'cartpole_balance_sparse' / 'dreamer' / '0'
  # Resumed at 6000 by a loop that tested at every start; a test late by
  # part of an episode (25500) stays on the grid.
  curve = [(5000, 57.0), (6000, 57.0)] + [
      (15000 + 10000 * i + 500 * (i == 1), 10.0 * (i + 1)) for i in range(10)]
  write_run(logdir, curve)
  run = published_check.check_run(logdir, 'cartpole_balance_sparse', SEEDS)
  assert run['left_out'] == [6000]
  assert run['values'] == [57.0, pytest.approx(55.0)]  # (10+...+100) / 10.
  assert run['curve'] == curve  # The figure shows every test.
  text = published_check.table('cartpole_balance_sparse', {'r': run}, SEEDS)
  assert ("- r: left out, the tests at the start of a resume (off the run's "
          "grid): 6000.") in text
  # The grid is the run's own: its eval_every from config.json.
  record = {'config': {'eval_every': 1000}}
  (logdir / 'config.json').write_text(json.dumps(record))
  run = published_check.check_run(logdir, 'cartpole_balance_sparse', SEEDS)
  assert run['left_out'] == []


def test_a_run_in_progress_gets_the_range_its_bin_can_still_reach(tmp_path):
  logdir = tmp_path / 'cartpole_balance_sparse' / 'dreamer' / '0'
  # Tests at 5k, then 15k to 45k at the floor: 4 of the 10 of (5k, 105k].
  write_run(logdir, [(5000, 57.0)] + [
      (15000 + 10000 * i, 12.0) for i in range(4)])
  run = published_check.check_run(logdir, 'cartpole_balance_sparse', SEEDS)
  reach = run['reachable']
  assert (reach['edge'], reach['tests'], reach['of']) == (105000, 4, 10)
  assert reach['low'] == pytest.approx(4.8)  # 48 / 10, the rest at 0.
  assert reach['high'] == pytest.approx(604.8)  # (48 + 6 * 1000) / 10.
  assert reach['can_reach_range']  # 557.3 to 638.4.
  text = published_check.table('cartpole_balance_sparse', {'r': run}, SEEDS)
  assert ("- r: 4 of the 10 tests of (5k, 105k] so far; its value can still "
          "be 4.8 to 604.8 (each test to come at 0 to 1000): it can still "
          "land in upstream's range.") in text
  # A fifth at the floor: at most 506.0, below the lowest seed's 557.3.
  logdir = tmp_path / 'five' / 'dreamer' / '0'
  write_run(logdir, [(5000, 57.0)] + [
      (15000 + 10000 * i, 12.0) for i in range(5)])
  run = published_check.check_run(logdir, 'cartpole_balance_sparse', SEEDS)
  assert run['reachable']['high'] == pytest.approx(506.0)
  assert not run['reachable']['can_reach_range']
  text = published_check.table('cartpole_balance_sparse', {'r': run}, SEEDS)
  assert "it can no longer land in upstream's range." in text
  # --floor: seed 0's 638.4 over 10 tests allows 3 at 13 or less (4 would
  # leave 6 tests 6384 - 52 to make, above 6 x 1000); seed 1's 557.3, 4.
  text = published_check.table(
      'cartpole_balance_sparse', {'r': run}, SEEDS, floor=13)
  assert ('can have scored 13 or less (the others at most 1000): seed 0 '
          '(638): 3, seed 1 (557): 4.') in text
  for value, tests in ((638.4, 3), (557.3, 4), (1000.0, 0), (13.0, 10)):
    total = value * 10
    assert tests * 13 + (10 - tests) * 1000 >= total
    assert tests == 10 or (tests + 1) * 13 + (9 - tests) * 1000 < total
    assert published_check.most_at_floor(value, 10, 13, 1000) == tests
  # A complete bin has nothing left to reach.
  logdir = tmp_path / 'done' / 'dreamer' / '0'
  write_run(logdir, [(5000 + 10000 * i, 12.0) for i in range(11)])
  run = published_check.check_run(logdir, 'cartpole_balance_sparse', SEEDS)
  assert run['reachable'] is None


def test_refuses_a_missing_or_changed_scores_file(tmp_path):
  root = tmp_path / 'root'
  write_run(root / 'cartpole_balance_sparse' / 'dreamer' / '0', [(5000, 1.0)])
  def refused(checkout):
    with pytest.raises(SystemExit) as exit:
      published_check.main([
          str(root), '--output', str(tmp_path / 'o'), '--upstream',
          str(checkout)])
    return str(exit.value.code)  # sys.exit's message: exit code 1.
  missing = refused(tmp_path / 'none')
  assert missing.startswith('published_check.py: error: ')
  assert 'git clone https://github.com/danijar/dreamer' in missing
  checkout = tmp_path / 'checkout'
  (checkout / 'scores').mkdir(parents=True)
  (checkout / 'scores' / 'dreamer.json').write_text('[]')
  assert refused(checkout) == (
      f"published_check.py: error: {checkout / 'scores' / 'dreamer.json'} "
      "is not upstream's at 56d4d44 (changed, or another commit): "
      f'git -C {checkout} checkout 56d4d44')
  assert not (tmp_path / 'o.md').exists()


@needs_upstream
def test_binning_equals_upstreams_own_function():
  spec = importlib.util.spec_from_file_location(
      'upstream_plotting', pathlib.Path(UPSTREAM) / 'plotting.py')
  plotting = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(plotting)
  random = np.random.RandomState(0)
  for _ in range(20):
    steps = np.unique(random.randint(0, 60, 12)) * 5000
    returns = random.uniform(0, 1000, len(steps))
    edges, values = published_check.binning(steps, returns)
    theirs = plotting.binning(steps, returns, 1e5, np.nanmean)
    np.testing.assert_array_equal(edges, theirs[0])
    np.testing.assert_allclose(
        np.array(values, float), theirs[1], equal_nan=True)


@needs_upstream
def test_sets_a_run_beside_upstreams_published_seeds(tmp_path):
  root = tmp_path / 'root'
  curve = [(5000 + 10000 * i, 70.0 * i) for i in range(10)]
  write_run(root / 'cartpole_balance_sparse' / 'dreamer' / '0', curve,
            finals=[1000.0, 990.0])
  output = tmp_path / 'out' / 'check'
  process = run_script(
      'runs/published_check.py', str(root), '--output', str(output),
      '--upstream', UPSTREAM, timeout=120)
  assert process.returncode == 0, process.stderr[-2000:]
  text = output.with_suffix('.md').read_text()
  # (70 + ... + 630 + 1000) / 10 = 415; upstream's seeds: 541 to 702.
  assert '| dreamer seed 0 | 0.0 | 415.0 |' in text
  for seed, at5k, at105k in ((0, 9, 638.4), (3, 13, 702.5), (4, 13, 541.4)):
    assert f'| published seed {seed} | {at5k:.1f} | {at105k:.1f} | |' in text
  assert '| published range | 9 to 13 | 541 to 702 | |' in text
  assert "(5k, 105k]: 415.0, OUTSIDE upstream's range 541 to 702." in text
  numbers = json.loads(output.with_suffix('.json').read_text())
  assert sorted(numbers['cartpole_balance_sparse']['upstream']) == [
      '0', '1', '2', '3', '4']
  png = output.with_suffix('.png').read_bytes()
  assert png[:8] == b'\x89PNG\r\n\x1a\n'
