"""The experiment scripts under runs/: figure loops, plotting, evaluation."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from helpers import ROOT, TINY, flags, last_line, read_metrics, run_script


def write_run(root, task, method, seed, points, metric='test/return'):
  run = root / task / method / str(seed)
  run.mkdir(parents=True)
  lines = [json.dumps({'step': step, metric: value}) for step, value in points]
  # Other metrics are ignored.
  lines.insert(1, json.dumps({'step': 5, 'model_loss': 1.0}))
  (run / 'metrics.jsonl').write_text('\n'.join(lines) + '\n')


def plot(root, output, *args):
  """Runs plot.py; returns the process, its table and its numbers."""
  process = run_script(
      'runs/plot.py', str(root), '--output', str(output), *args, timeout=120)
  table = numbers = None
  if output.with_suffix('.md').exists():
    table = output.with_suffix('.md').read_text()
    numbers = json.loads(output.with_suffix('.json').read_text())
  return process, table, numbers


def test_plot_tables_known_values_and_writes_png(tmp_path):
  root = tmp_path / 'logdir'
  # Seeds end at 10 and 20 (last three values 10, 10, 10 and 20, 20, 20).
  write_run(root, 'dmc_walker_run', 'dreamer', 0,
            [(0, 0), (100, 10), (200, 10), (300, 10)])
  write_run(root, 'dmc_walker_run', 'dreamer', 1,
            [(0, 0), (100, 20), (200, 20), (300, 20)])
  write_run(root, 'dmc_walker_run', 'bird', 0, [(0, 1), (150, 2), (300, 30)])
  for episode, value in enumerate([1, 3]):  # Episodes at one step.
    write_run(root, 'dmc_walker_run', 'random', episode, [(0, value)])
  write_run(root, 'hopper_hop', 'dreamer', 0, [(0, 5), (50, 6)])
  baseline = tmp_path / 'scores.json'
  baseline.write_text(json.dumps([
      {'task': 'dmc_walker_run', 'method': 'upstream', 'seed': 0,
       'xs': [0, 300], 'ys': [4, 8]},
      {'task': 'dmc_cheetah_run', 'method': 'upstream', 'seed': 0,
       'xs': [0], 'ys': [1]}]))
  output = tmp_path / 'out' / 'figure'
  process, table, numbers = plot(
      root, output, '--baseline', str(baseline), '--bins', '3')
  assert process.returncode == 0, process.stderr[-2000:]
  assert '| walker_run | dreamer | 15.0 ± 5.0 | 2 seeds | 300 |' in table
  assert '| walker_run | bird | 11.0 ± 0.0 | 1 seeds | 300 |' in table
  assert '| walker_run | random | 2.0 ± 1.0 | 2 episodes | 0 |' in table
  assert '| hopper_hop | dreamer | 5.5 ± 0.0 | 1 seeds | 50 |' in table
  assert '| walker_run | upstream (baseline) | 6.0 ± 0.0 | 1 seeds | 300 |' in (
      table)
  assert 'cheetah_run' not in table  # Baseline tasks without runs.
  assert numbers['walker_run']['dreamer']['final'] == dict(
      mean=15.0, std=5.0, n=2)
  png = output.with_suffix('.png').read_bytes()
  assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 10000


def test_binned_means_over_seeds_without_gaps(tmp_path):
  root = tmp_path / 'logdir'
  write_run(root, 'walker_run', 'dreamer', 0, [(0, 1), (10, 3), (60, 5)])
  write_run(root, 'walker_run', 'dreamer', 1, [(5, 2), (70, 9)])
  # Bins of 35 steps: seed means (2, 5) and (2, 9).
  _, _, numbers = plot(root, tmp_path / 'two', '--bins', '2')
  curve = numbers['walker_run']['dreamer']
  np.testing.assert_allclose(curve['x'], [17.5, 52.5])
  np.testing.assert_allclose(curve['mean'], [2, 7])
  np.testing.assert_allclose(curve['std'], [0, 2])
  # Bins without values (evaluations sparser than bins) are left out of the
  # drawn line.
  _, _, numbers = plot(root, tmp_path / 'four', '--bins', '4')
  curve = numbers['walker_run']['dreamer']
  np.testing.assert_allclose(curve['x'], [8.75, 61.25])
  np.testing.assert_allclose(curve['mean'], [2, 7])
  np.testing.assert_allclose(curve['std'], [0, 2])


def test_check_against_the_random_policy(tmp_path):
  root = tmp_path / 'logdir'
  for episode, value in enumerate([10, 12, 14, 16, 18]):
    write_run(root, 'cheetah_run', 'random', episode, [(0, value)])
  write_run(root, 'cheetah_run', 'dreamer', 0,
            [(0, 5), (100, 30), (200, 30), (300, 30)])
  write_run(root, 'cheetah_run', 'idm', 0,
            [(0, 5), (100, 20), (200, 20), (300, 20)])
  # Threshold: 14 + 3 * 2.83 = 22.5.
  process, table, _ = plot(root, tmp_path / 'check', '--above', 'random')
  assert process.returncode == 1
  assert '- PASS cheetah_run dreamer: 30.0 > random 14.0 + 3 x 2.8 = 22.5' in (
      table)
  assert '- FAIL cheetah_run idm: 20.0 <= random 14.0 + 3 x 2.8 = 22.5' in (
      table)


def test_plot_skips_torn_lines(tmp_path):
  root = tmp_path / 'logdir'
  write_run(root, 'walker_run', 'dreamer', 0, [(0, 1), (10, 2)])
  path = root / 'walker_run' / 'dreamer' / '0' / 'metrics.jsonl'
  with path.open('a') as f:
    f.write('{"step": 20, "test/re')
  process, _, numbers = plot(root, tmp_path / 'out', '--last', '2')
  assert process.returncode == 0 and 'not JSON' in process.stderr
  assert numbers['walker_run']['dreamer']['final']['mean'] == 1.5


def dry_run(script, **env):
  environ = dict(os.environ, **dict(dict(DRY_RUN='1', LOGROOT='/logs', PYTHON='py'), **env))
  process = subprocess.run(
      ['bash', str(ROOT / 'runs' / script)], capture_output=True, text=True, env=environ)
  assert process.returncode == 0, process.stderr
  return process.stdout.splitlines()


def command(script, task, method, seed, figure, steps='1e6', extra=''):
  flags = ' --soft True' if method == 'softbird' else ''
  return (f'py {ROOT}/{script}{flags} --task dmc_{task} --seed {seed} --steps {steps} '
          f'--logdir /logs/{figure}/{task}/{method}/{seed}{extra}')


def test_bird_figure2_matrix():
  lines = dry_run('bird_figure2.sh')
  expected = [
      command('bird.py' if method == 'bird' else 'dreamer.py', task, method, seed,
              'bird_figure2')
      for task in ('hopper_stand', 'hopper_hop', 'walker_run', 'cartpole_swingup')
      for method in ('dreamer', 'bird') for seed in range(10)]
  assert lines == expected


def test_bird_ablation_matrix():
  lines = dry_run('bird_ablation.sh')
  scripts = dict(dreamer='dreamer.py', bird='bird.py', softbird='bird.py')
  assert lines == [
      command(scripts[method], 'walker_run', method, seed, 'bird_ablation')
      for method in ('dreamer', 'bird', 'softbird') for seed in range(3)]


def test_idm_matrix_with_overrides():
  lines = dry_run(
      'idm_vs_dreamer.sh', TASKS='hopper_hop', SEEDS='4', STEPS='5000',
      FLAGS='--precision 16')
  assert lines == [
      command(f'{method}.py', 'hopper_hop', method, 4, 'idm_vs_dreamer', '5000',
              ' --precision 16')
      for method in ('dreamer', 'idm')]
  default = dry_run('idm_vs_dreamer.sh')
  assert len(default) == 4 * 2 * 3
  assert {line.split('--task ')[1].split()[0] for line in default} == {
      'dmc_hopper_hop', 'dmc_hopper_stand', 'dmc_walker_run', 'dmc_cartpole_swingup'}


def test_finished_runs_are_skipped(tmp_path):
  finished = tmp_path / 'bird_ablation' / 'walker_run' / 'bird' / '1'
  finished.mkdir(parents=True)
  with (finished / 'variables.pkl').open('wb') as f:
    pickle.dump({'_step': np.int64(5000)}, f)
  partial = tmp_path / 'bird_ablation' / 'walker_run' / 'bird' / '2'
  partial.mkdir(parents=True)
  with (partial / 'variables.pkl').open('wb') as f:
    pickle.dump({'_step': np.int64(4000)}, f)
  lines = dry_run(
      'bird_ablation.sh', LOGROOT=str(tmp_path), STEPS='5e3', METHODS='bird',
      PYTHON=sys.executable)
  assert lines[0] == f'# finished: {finished}'
  assert [line.split('--seed ')[1][0] for line in lines[1:]] == ['0', '2']


def test_jobs_run_in_parallel_and_failures_are_reported(tmp_path):
  # A stand-in interpreter that records its arguments, and fails for seed 1.
  fake = tmp_path / 'fake.sh'
  fake.write_text('#!/bin/sh\necho "$@"; case "$*" in *"--seed 1 "*) exit 3;; esac\n')
  fake.chmod(0o755)
  environ = dict(
      os.environ, LOGROOT=str(tmp_path / 'logs'), PYTHON=str(fake), JOBS='2',
      TASKS='walker_run', METHODS='dreamer', SEEDS='0 1 2')
  process = subprocess.run(
      ['bash', str(ROOT / 'runs' / 'bird_ablation.sh')], capture_output=True, text=True,
      env=environ)
  assert process.returncode != 0
  assert process.stdout.count('done ') == 2 and 'FAILED' in process.stdout
  log = tmp_path / 'logs' / 'bird_ablation' / 'walker_run' / 'dreamer' / '2' / 'train.log'
  assert '--seed 2' in log.read_text()


def test_cpu_check_matrix():
  lines = dry_run('cpu_check.sh')
  reduced = (' --action_repeat 4 --batch_size 16 --batch_length 32 --cnn_depth 8 '
             '--deter_size 100 --stoch_size 20 --num_units 200 --eval_every 2500 --log_every 2500 '
             '--precision 32 --jit False')
  assert lines == [
      f'py {ROOT}/runs/random_baseline.py --task dmc_walker_stand --episodes 10 '
      f'--action_repeat 4 --logdir /logs/cpu_check/walker_stand/random'] + [
      command(f'{method}.py', 'walker_stand', method, 0, 'cpu_check', '3.5e4', reduced)
      for method in ('dreamer', 'bird', 'idm')] + [
      f'py {ROOT}/runs/evaluate.py {method} --episodes 10 --task dmc_walker_stand --seed 0 '
      f'--steps 3.5e4 --logdir /logs/cpu_check/walker_stand/{method}/0{reduced}'
      for method in ('dreamer', 'bird', 'idm')]


@pytest.mark.slow
def test_random_baseline_writes_one_run_per_episode(tmp_path):
  logdir = tmp_path / 'walker_stand' / 'random'
  process = run_script(
      'runs/random_baseline.py', '--task', 'dmc_walker_stand', '--episodes',
      '3', '--time_limit', '20', '--logdir', str(logdir), timeout=300)
  assert process.returncode == 0, process.stderr[-2000:]
  runs = sorted(p.name for p in logdir.iterdir())
  assert runs == ['0', '1', '2']
  returns = [read_metrics(logdir / run)[0]['test/return'] for run in runs]
  assert all(0 < r <= 20 for r in returns)  # 20 steps, rewards in [0, 1].
  assert len(set(returns)) == 3  # Different initial states.
  assert 'Random policy on dmc_walker_stand' in process.stdout


@pytest.mark.slow
def test_evaluate_appends_the_final_policy_once(tmp_path):
  logdir = tmp_path / 'cartpole_balance' / 'dreamer' / '0'
  args = [*flags(**TINY), f'--logdir={logdir}']
  process = run_script('dreamer.py', *args)
  assert process.returncode == 0, process.stderr[-2000:]
  process = run_script('runs/evaluate.py', 'dreamer', '--episodes', '3', *args)
  assert process.returncode == 0, process.stderr[-2000:]
  finals = [m for m in read_metrics(logdir) if m.get('final')]
  # 40 env steps at action repeat 2.
  assert [(m['step'], m['test/length']) for m in finals] == [(160, 20)] * 3
  returns = [m['test/return'] for m in finals]
  assert all(0 < r <= 40 for r in returns)  # Rewards in [0, 1].
  assert 'dreamer at step 160: test return' in process.stdout
  # plot.py's final return over the last 3 values is this evaluation's mean.
  _, _, numbers = plot(tmp_path, tmp_path / 'plot', '--last', '3')
  final = numbers['cartpole_balance']['dreamer']['final']
  assert final['mean'] == pytest.approx(np.mean(returns))
  # Evaluated at its step: a second call leaves the run alone.
  process = run_script('runs/evaluate.py', 'dreamer', '--episodes', '3', *args)
  assert process.returncode == 0 and 'left alone' in process.stdout
  assert len([m for m in read_metrics(logdir) if m.get('final')]) == 3
  # Other network sizes than the run's: one line naming the mismatch,
  # nothing written.
  (logdir / 'metrics.jsonl').write_text(''.join(
      json.dumps(m) + '\n' for m in read_metrics(logdir) if not m.get('final')))
  process = run_script('runs/evaluate.py', 'dreamer', *args, '--cnn_depth=3')
  assert process.returncode == 1
  assert last_line(process).startswith('evaluate.py: error:')
  assert not [m for m in read_metrics(logdir) if m.get('final')]


@pytest.mark.slow
def test_evaluate_without_a_checkpoint_fails_in_one_line(tmp_path):
  process = run_script(
      'runs/evaluate.py', 'idm', *flags(**TINY),
      f'--logdir={tmp_path / "none"}')
  assert process.returncode == 1
  line = last_line(process)
  assert line.startswith('evaluate.py: error: no checkpoint')
  assert 'train the run first' in line
