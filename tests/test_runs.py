"""The experiment scripts under runs/: figure loops, plotting, evaluation."""

import contextlib
import io
import json
import os
import pathlib
import pickle
import subprocess
import sys
import types

import numpy as np
import pytest

from helpers import ROOT, TINY, flags, last_line, read_metrics, run_script

sys.path.insert(0, str(ROOT / 'runs'))


def write_run(root, task, method, seed, points, finals=None, step=None):
  run = root / task / method / str(seed)
  run.mkdir(parents=True)
  lines = [json.dumps({'step': s, 'test/return': v}) for s, v in points]
  # Other metrics are ignored.
  lines.insert(1, json.dumps({'step': 5, 'model_loss': 1.0}))
  (run / 'metrics.jsonl').write_text('\n'.join(lines) + '\n')
  if finals is not None:
    step = points[-1][0] if step is None else step
    (run / 'final.jsonl').write_text(''.join(
        json.dumps({'step': step, 'episode': i, 'return': r}) + '\n'
        for i, r in enumerate(finals)))


def in_process(main, *argv):
  """A script's main(argv) in this process, as a finished process: exit
  code, stdout and stderr (its imports are paid once, not per call)."""
  out, err, code = io.StringIO(), io.StringIO(), 0
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
      main([str(arg) for arg in argv])
    except SystemExit as e:
      code = e.code if isinstance(e.code, int) else 1
      if not isinstance(e.code, int) and e.code is not None:
        print(e.code, file=err)
  return types.SimpleNamespace(
      returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def plot(root, output, *args):
  """Runs plot.py; returns the process, its table and its numbers."""
  import plot as script
  process = in_process(script.main, root, '--output', output, *args)
  table = numbers = None
  if output.with_suffix('.md').exists():
    table = output.with_suffix('.md').read_text()
    numbers = json.loads(output.with_suffix('.json').read_text())
  return process, table, numbers


def test_plot_tables_curves_and_final_evaluations(tmp_path):
  root = tmp_path / 'logdir'
  # Curves end at 10 and 20 (last three values); final evaluations 12, 22.
  write_run(root, 'dmc_walker_run', 'dreamer', 0,
            [(0, 0), (100, 10), (200, 10), (300, 10)], finals=[11, 13])
  write_run(root, 'dmc_walker_run', 'dreamer', 1,
            [(0, 0), (100, 20), (200, 20), (300, 20)], finals=[20, 24])
  write_run(root, 'dmc_walker_run', 'bird', 0, [(0, 1), (150, 2), (300, 30)])
  write_run(root, 'dmc_walker_run', 'random', 0, [], finals=[1, 3], step=0)
  write_run(root, 'hopper_hop', 'dreamer', 0, [(0, 5), (50, 6)])
  output = tmp_path / 'out' / 'figure'
  process, table, numbers = plot(root, output, '--bins', '3')
  assert process.returncode == 0, process.stderr[-2000:]
  # Beside mean ± sample std (ddof=1; none of one seed), the IQM over
  # seeds (of two seeds, their mean).
  assert ('| walker_run | dreamer | 15.0 ± 7.1 (2) | 15.0 [10.0, 20.0] | '
          '17.0 ± 7.1 (2) | 17.0 [12.0, 22.0] | 17.0 ± 6.1 (4) | 300 |') in (
      table)
  assert ('| walker_run | bird | 11.0 (1) | 11.0 [11.0, 11.0] |  |  '
          '|  | 300 |') in table
  assert ('| walker_run | random |  |  | 2.0 (1) | 2.0 [2.0, 2.0] | '
          '2.0 ± 1.4 (2) | 0 |') in table
  assert ('| hopper_hop | dreamer | 5.5 (1) | 5.5 [5.5, 5.5] |  |  |  '
          '| 50 |') in table
  entry = numbers['walker_run']['dreamer']
  assert entry['end'] == [15.0, pytest.approx(50 ** 0.5), 2]
  assert entry['final'] == [17.0, pytest.approx(50 ** 0.5), 2]
  assert numbers['walker_run']['bird']['end'] == [11.0, None, 1]
  assert 'x' not in numbers['walker_run']['random']  # No curve.
  png = output.with_suffix('.png').read_bytes()
  assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 10000


def test_evaluator_logits_table_and_figure(tmp_path):
  root = tmp_path / 'logdir'
  for seed, shift in ((0, 0.0), (1, 1.0)):
    run = root / 'walker_stand' / 'idm' / str(seed)
    run.mkdir(parents=True)
    lines = [{'step': 0, 'test/return': 1.0}]  # Lines without them: ignored.
    for step in (1000, 2000, 3000):
      entry = {'step': step, 'logit_imag_outside': 0.1 * step / 1000 + shift}
      for offset, kind in enumerate(('real', 'model', 'imag')):
        centre = offset + shift + step / 1000
        entry.update({
            f'logit_{kind}_mean': centre, f'logit_{kind}_p5': centre - 1,
            f'logit_{kind}_p95': centre + 1})
      lines.append(entry)
    (run / 'metrics.jsonl').write_text(
        ''.join(json.dumps(line) + '\n' for line in lines))
  dreamer = root / 'walker_stand' / 'dreamer' / '0'
  dreamer.mkdir(parents=True)  # A run of the same root without them.
  (dreamer / 'final.jsonl').write_text(
      json.dumps({'step': 3000, 'return': 2.0}) + '\n')
  output = tmp_path / 'out' / 'logits'
  import evaluator_logits
  process = in_process(
      evaluator_logits.main, root, '--output', output, '--last', '2')
  assert process.returncode == 0, process.stderr[-2000:]
  table = output.with_suffix('.md').read_text()
  # Last two steps (2.5 on average) and seeds (0.5 on average): real 3.0.
  assert ('| walker_stand | idm | 3.00 [2.00, 4.00] | 4.00 [3.00, 5.00] | '
          '5.00 [4.00, 6.00] | 0.750 |') in table, table
  assert 'dreamer' not in table
  png = output.with_suffix('.png').read_bytes()
  assert png[:8] == b'\x89PNG\r\n\x1a\n'
  empty = in_process(
      evaluator_logits.main, root / 'walker_stand' / 'dreamer', '--output',
      output)
  assert empty.returncode == 1
  assert 'no run below' in last_line(empty)


def test_plot_adds_upstreams_curves_and_scores(tmp_path):
  root = tmp_path / 'logdir'
  write_run(root, 'walker_run', 'dreamer', 0, [(0, 0), (300, 10)])
  curves = tmp_path / 'dreamer.json'
  curves.write_text(json.dumps([
      {'task': 'dmc_walker_run', 'method': 'dreamer', 'seed': '0',
       'xs': [0, 200, 5e6], 'ys': [4, 8, 900]},
      {'task': 'dmc_cheetah_run', 'method': 'dreamer', 'seed': 0,
       'xs': [0], 'ys': [1]}]))
  scores = tmp_path / 'baselines.json'
  scores.write_text(json.dumps({
      'dmc_walker_run': {'d4pg_100m': 39.2, 'a3c_100m_proprio': 191.8},
      'dmc_cheetah_run': {'d4pg_100m': 523.8}}))
  process, table, numbers = plot(
      root, tmp_path / 'out', '--baseline', str(curves), '--baseline',
      str(scores), '--last', '2')
  assert process.returncode == 0, process.stderr[-2000:]
  # Upstream's curve cut to the runs' 300 steps, not stretched to 5M.
  upstream = numbers['walker_run']['dreamer (upstream)']
  assert upstream['last_step'] == 200 and upstream['end'][0] == 6.0
  assert numbers['walker_run']['d4pg_100m'] == {'score': 39.2}
  assert '| walker_run | a3c_100m_proprio | 191.8 |' in table
  assert 'cheetah_run' not in table  # Tasks without runs are left out.


def test_binned_means_over_seeds_without_gaps(tmp_path):
  root = tmp_path / 'logdir'
  write_run(root, 'walker_run', 'dreamer', 0, [(0, 1), (10, 3), (60, 5)])
  write_run(root, 'walker_run', 'dreamer', 1, [(5, 2), (70, 9)])
  # Bins of 35 steps: seed means (2, 5) and (2, 9).
  _, _, numbers = plot(root, tmp_path / 'two', '--bins', '2')
  curve = numbers['walker_run']['dreamer']
  np.testing.assert_allclose(curve['x'], [17.5, 52.5])
  np.testing.assert_allclose(curve['mean'], [2, 7])
  np.testing.assert_allclose(curve['std'], [0, 8 ** 0.5])
  # Bins without values (evaluations sparser than bins) are left out of the
  # drawn line.
  _, _, numbers = plot(root, tmp_path / 'four', '--bins', '4')
  curve = numbers['walker_run']['dreamer']
  np.testing.assert_allclose(curve['x'], [8.75, 61.25])
  np.testing.assert_allclose(curve['mean'], [2, 7])
  np.testing.assert_allclose(curve['std'], [0, 8 ** 0.5])


def test_check_against_the_random_policy(tmp_path):
  root = tmp_path / 'logdir'
  write_run(root, 'cheetah_run', 'random', 0, [], [10, 12, 14, 16, 18], 0)
  write_run(root, 'cheetah_run', 'dreamer', 0,
            [(0, 5), (100, 15), (200, 15), (300, 15)], finals=[30, 30])
  write_run(root, 'cheetah_run', 'idm', 0,
            [(0, 5), (100, 20), (200, 20), (300, 20)])
  # Threshold: 14 + 3 * 3.16 (ddof=1) = 23.5. Dreamer by its final
  # evaluation, IDM (none) by the end of its curve.
  process, table, _ = plot(root, tmp_path / 'check', '--above', 'random')
  assert process.returncode == 1
  assert '- PASS cheetah_run dreamer: 30.0 > random 14.0 + 3 x 3.2 = 23.5' in (
      table)
  assert '- FAIL cheetah_run idm: 20.0 <= random 14.0 + 3 x 3.2 = 23.5' in (
      table)


def test_plot_skips_torn_lines_and_old_final_lines(tmp_path):
  root = tmp_path / 'logdir'
  write_run(root, 'walker_run', 'dreamer', 0, [(0, 1), (10, 2)])
  path = root / 'walker_run' / 'dreamer' / '0' / 'metrics.jsonl'
  with path.open('a') as f:
    f.write('{"step": 10, "test/return": 99, "final": 1}\n')
    f.write('{"step": 20, "test/re')
  process, _, numbers = plot(root, tmp_path / 'out', '--last', '2')
  assert process.returncode == 0 and 'not JSON' in process.stderr
  assert numbers['walker_run']['dreamer']['end'][0] == 1.5


def test_methods_name_scripts_and_flags():
  def command(name):
    return run_script('runs/methods.py', name, timeout=60)
  assert command('dreamer').stdout == 'dreamer.py\n'
  assert command('softbird').stdout == 'bird.py --soft True\n'
  assert command('softbird_0.02').stdout == (
      'bird.py --soft True --ent_alpha 0.02\n')
  assert command('dreamer_fifo').stdout == 'dreamer.py --dataset_size 1e5\n'
  assert command('idm_shared').stdout == 'idm.py --shared_noise True\n'
  assert command('softbird_0.02_shared').stdout == (
      'bird.py --soft True --ent_alpha 0.02 --shared_noise True\n')
  for name in ('softbird_x', 'random_shared', 'bird_shared_x'):
    process = command(name)
    assert process.returncode == 1, name
    assert 'unknown method' in process.stderr, name
  names = run_script('runs/methods.py', '--list').stdout.split()
  assert {'dreamer', 'bird', 'softbird', 'idm', 'random'} <= set(names)


def dry_run(script, **env):
  environ = dict(os.environ, DRY_RUN='1', LOGROOT='/logs', PYTHON='py')
  environ.update(env)
  process = subprocess.run(
      ['bash', str(ROOT / 'runs' / script)], capture_output=True, text=True,
      env=environ)
  assert process.returncode == 0, process.stderr
  return process.stdout.splitlines()


SCRIPTS = dict(
    dreamer='dreamer.py', dreamer_fifo='dreamer.py --dataset_size 1e5',
    bird='bird.py', softbird='bird.py --soft True', idm='idm.py',
    idm_no_constraint='idm.py --constraint_scale 0',
    idm_original_only='idm.py --derived_starts False',
    idm_no_weights='idm.py --reliability_weights False')


def command(method, task, seed, figure, steps='1e6', extra=''):
  if method.endswith('_shared'):
    script = SCRIPTS[method[:-len('_shared')]] + ' --shared_noise True'
  elif method.startswith('softbird_'):
    script = f'bird.py --soft True --ent_alpha {method[len("softbird_"):]}'
  else:
    script = SCRIPTS[method]
  return (f'py {ROOT}/{script} --task dmc_{task} --seed {seed} '
          f'--steps {steps} --logdir /logs/{figure}/{task}/{method}/{seed}'
          f'{extra}')


def matrix(figure, tasks, methods, seeds, **kwargs):
  return [
      command(method, task, seed, figure, **kwargs)
      for seed in seeds for task in tasks for method in methods]


BIRD_TASKS = ('hopper_stand', 'hopper_hop', 'walker_run', 'cartpole_swingup')
IDM_TASKS = ('hopper_hop', 'hopper_stand', 'walker_run', 'cartpole_swingup')


def test_bird_figures_2_and_5_share_their_runs():
  expected = matrix('bird_figure2', BIRD_TASKS, ('dreamer', 'bird'), range(10))
  assert dry_run('bird_figure2.sh') == expected
  assert dry_run('bird_figure5.sh') == expected


def test_bird_figure4_is_the_rest_of_dreamers_tasks():
  # Dreamer's 20 Control Suite tasks (upstream's scores/dreamer.json).
  dreamers = {
      'acrobot_swingup', 'cartpole_balance', 'cartpole_balance_sparse',
      'cartpole_swingup', 'cartpole_swingup_sparse', 'cheetah_run',
      'cup_catch', 'finger_spin', 'finger_turn_easy', 'finger_turn_hard',
      'hopper_hop', 'hopper_stand', 'pendulum_swingup', 'quadruped_run',
      'quadruped_walk', 'reacher_easy', 'reacher_hard', 'walker_run',
      'walker_stand', 'walker_walk'}
  tasks = sorted(dreamers - set(BIRD_TASKS))
  assert dry_run('bird_figure4.sh') == matrix(
      'bird_figure4', tasks, ('dreamer', 'bird'), range(3))


def test_bird_ablation_sweeps_soft_birds_alpha():
  methods = (
      'dreamer', 'dreamer_fifo', 'bird', 'softbird_0.2', 'softbird_0.02',
      'softbird_0.002')
  assert dry_run('bird_ablation.sh') == matrix(
      'bird_ablation', ('walker_run',), methods, range(3))
  lines = dry_run('bird_ablation.sh', SOFT_ALPHAS='0.5', SEEDS='7')
  assert lines[-1] == command('softbird_0.5', 'walker_run', 7, 'bird_ablation')
  assert len(lines) == 4


def test_idm_figures_and_ablation_matrices():
  assert dry_run('idm_vs_dreamer.sh') == matrix(
      'idm_vs_dreamer', IDM_TASKS, ('dreamer', 'idm'), range(3))
  assert dry_run('idm_figure2.sh') == matrix(
      'idm_vs_dreamer', IDM_TASKS, ('idm',), range(3))
  methods = (
      'idm', 'idm_no_constraint', 'idm_original_only', 'idm_no_weights',
      'dreamer')
  assert dry_run('idm_ablation.sh') == matrix(
      'idm_ablation', IDM_TASKS, methods, range(3))


def test_sampler_comparison_pairs_each_method_with_both_samplers():
  methods = (
      'dreamer', 'dreamer_shared', 'bird', 'bird_shared', 'idm', 'idm_shared')
  expected = matrix(
      'sampler_comparison', ('hopper_hop', 'walker_run'), methods, range(3))
  assert dry_run('sampler_comparison.sh') == expected
  assert len(expected) == 36
  shared = [line for line in expected if '_shared/' in line]
  assert all(' --shared_noise True ' in line for line in shared)


@pytest.mark.slow  # Starts every figure script.
def test_pipeline_check_runs_every_figure_at_one_tiny_scale():
  lines = dry_run('pipeline_check.sh', BASELINES='/none')
  trains = [line for line in lines if ' --task ' in line]
  # Every figure script at the same tiny scale: 4 + 4 + 6 + 4 + 5 + 6 runs
  # (Figures 5 and IDM's 2 reuse those of Figure 2 and IDM vs Dreamer).
  assert len(set(trains)) == 29
  flags = trains[0].split(' --logdir ')[1].split(' ', 1)[1]
  assert '--steps 2000 ' in trains[0] and '--cnn_depth 4' in flags
  assert all(line.endswith(flags) for line in trains)
  # Figure 5 plots model_error_15: 5 context steps and 15 predicted ones.
  assert int(flags.split('--batch_length ')[1].split()[0]) >= 5 + 15
  figures = {line.split(' --logdir /logs/')[1].split('/')[0] for line in trains}
  assert figures == {
      'bird_figure2', 'bird_figure4', 'bird_ablation', 'idm_vs_dreamer',
      'idm_ablation', 'sampler_comparison'}
  outputs = sorted(
      line.split('--output ')[1].split()[0].rsplit('/', 1)[1]
      for line in lines if '--output' in line)
  assert outputs == sorted([
      'bird_figure2', 'bird_figure4', 'bird_ablation', 'idm_vs_dreamer',
      'idm_ablation', 'sampler_comparison', 'bird_figure3_cartpole_swingup',
      'idm_figure1_cartpole_swingup'])


def test_figure_variables_override_the_matrix():
  lines = dry_run(
      'idm_vs_dreamer.sh', TASKS='hopper_hop', SEEDS='4', STEPS='5000',
      FLAGS='--precision 16')
  assert lines == matrix(
      'idm_vs_dreamer', ('hopper_hop',), ('dreamer', 'idm'), (4,),
      steps='5000', extra=' --precision 16')
  process = subprocess.run(
      ['bash', str(ROOT / 'runs' / 'idm_vs_dreamer.sh')], capture_output=True,
      text=True, env=dict(os.environ, DRY_RUN='1', METHODS='dreamr'))
  assert process.returncode != 0 and "unknown method 'dreamr'" in (
      process.stderr)


@pytest.mark.slow  # Starts the shell scripts and status.py.
def test_finished_runs_are_skipped(tmp_path):
  def checkpoint(seed, step):
    logdir = tmp_path / 'bird_ablation' / 'walker_run' / 'bird' / str(seed)
    logdir.mkdir(parents=True)
    with (logdir / 'variables.pkl').open('wb') as f:
      pickle.dump({'_step': np.int64(step)}, f)
    return logdir
  finished, _ = checkpoint(1, 5000), checkpoint(2, 4000)
  lines = dry_run(
      'bird_ablation.sh', LOGROOT=str(tmp_path), STEPS='5e3', METHODS='bird',
      PYTHON=sys.executable)
  assert lines[0] == f'# finished: {finished}'
  assert [line.split('--seed ')[1][0] for line in lines[1:]] == ['0', '2']


def test_jobs_run_in_parallel_and_failures_are_reported(tmp_path):
  # A stand-in interpreter that records its arguments; seed 1 fails.
  fake = tmp_path / 'fake.sh'
  fake.write_text(
      '#!/bin/sh\necho "$@"; case "$*" in *"--seed 1 "*) exit 3;; esac\n')
  fake.chmod(0o755)
  environ = dict(
      os.environ, LOGROOT=str(tmp_path / 'logs'), PYTHON=str(fake), JOBS='2',
      TASKS='walker_run', METHODS='dreamer', SEEDS='0 1 2')
  process = subprocess.run(
      ['bash', str(ROOT / 'runs' / 'bird_ablation.sh')], capture_output=True,
      text=True, env=environ)
  assert process.returncode != 0
  assert process.stdout.count('done ') == 2 and 'FAILED' in process.stdout
  runs = tmp_path / 'logs' / 'bird_ablation' / 'walker_run' / 'dreamer'
  assert '--seed 2' in (runs / '2' / 'train.log').read_text()
  codes = [(runs / str(seed) / 'exit_code').read_text() for seed in range(3)]
  assert codes == ['0\n', '3\n', '0\n']


def test_published_check_runs_upstreams_defaults_only():
  # Nothing but the task, the seed and the length: every other key at
  # upstream's default, the precision the hardware's.
  logdir = '/logs/published_check/cartpole_balance_sparse/dreamer/0'
  evaluate = f'py {ROOT}/runs/evaluate.py {logdir} --episodes 10'
  assert dry_run('published_check.sh') == [
      command('dreamer', 'cartpole_balance_sparse', 0, 'published_check',
              '1.05e5') + f' && {evaluate}', evaluate]


def test_cpu_check_matrix():
  lines = dry_run('cpu_check.sh')
  reduced = (
      ' --action_repeat 4 --batch_size 16 --batch_length 32 --cnn_depth 8 '
      '--deter_size 100 --stoch_size 20 --num_units 200 --eval_every 2500 '
      '--log_every 2500 --precision 32 --jit False')
  logdir = '/logs/cpu_check/walker_stand'
  assert lines == [
      f'py {ROOT}/runs/random_baseline.py --task dmc_walker_stand '
      f'--episodes 10 --action_repeat 4 --logdir {logdir}/random/0'] + [
      command(method, 'walker_stand', 0, 'cpu_check', '3.5e4', reduced)
      for method in ('dreamer', 'bird', 'idm')] + [
      f'py {ROOT}/runs/evaluate.py {logdir}/{method}/0 --episodes 10'
      for method in ('dreamer', 'bird', 'idm')]


@pytest.mark.slow
def test_random_baseline_is_one_run(tmp_path):
  logdir = tmp_path / 'walker_stand' / 'random' / '0'
  process = run_script(
      'runs/random_baseline.py', '--task', 'dmc_walker_stand', '--episodes',
      '3', '--time_limit', '20', '--logdir', str(logdir), timeout=300)
  assert process.returncode == 0, process.stderr[-2000:]
  finals = read_metrics(logdir, 'final.jsonl')
  assert [(e['step'], e['episode'], e['length']) for e in finals] == [
      (0, 0, 10), (0, 1, 10), (0, 2, 10)]  # 20 env steps at repeat 2.
  returns = [e['return'] for e in finals]
  assert all(0 < r <= 20 for r in returns)  # Rewards in [0, 1].
  assert len(set(returns)) == 3  # Different initial states.
  record = json.loads((logdir / 'config.json').read_text())
  assert record['agent'] == 'random'
  assert record['config']['task'] == 'dmc_walker_stand'
  assert 'Random policy on dmc_walker_stand' in process.stdout
  _, _, numbers = plot(tmp_path, tmp_path / 'plot')
  assert numbers['walker_stand']['random']['episodes']['n'] == 3


@pytest.mark.slow
def test_constant_baseline_takes_one_action(tmp_path):
  logdir = tmp_path / 'cartpole_balance_sparse' / 'constant' / '0'
  args = ['runs/random_baseline.py', '--task', 'dmc_cartpole_balance_sparse',
          '--episodes', '2', '--time_limit', '400', '--logdir', str(logdir)]
  process = run_script(*args, '--constant', '1.5', timeout=300)
  assert process.returncode == 1
  assert process.stderr.strip().splitlines() == [
      'random_baseline.py: error: --constant 1.5 is outside the action space '
      '[-1.0, 1.0]']
  assert not (logdir / 'final.jsonl').exists()
  process = run_script(*args, '--constant', '1', timeout=300)
  assert process.returncode == 0, process.stderr[-2000:]
  returns = [e['return'] for e in read_metrics(logdir, 'final.jsonl')]
  # Pushed to one side, the pole leaves the upright band after about 12 of
  # the 400 env steps and does not come back; random actions keep it there
  # longer (about 37 of 1000 env steps).
  assert all(5 <= r <= 15 for r in returns), returns
  record = json.loads((logdir / 'config.json').read_text())
  assert record['agent'] == 'constant'
  assert record['config']['constant'] == 1.0
  assert 'Constant action 1 on dmc_cartpole_balance_sparse' in process.stdout


@pytest.mark.slow
def test_evaluate_reads_the_run_from_its_logdir(tmp_path):
  logdir = tmp_path / 'cartpole_balance' / 'idm' / '0'
  config = dict(TINY, evaluator_units=16, precision=16)
  process = run_script('idm.py', *flags(**config), f'--logdir={logdir}')
  assert process.returncode == 0, process.stderr[-2000:]
  curve = read_metrics(logdir)
  # No training flag repeated; a float16 run evaluated in float32.
  process = run_script('runs/evaluate.py', str(logdir), '--episodes', '3')
  assert process.returncode == 0, process.stderr[-2000:]
  finals = read_metrics(logdir, 'final.jsonl')
  # 40 env steps at action repeat 2.
  assert [(e['step'], e['length']) for e in finals] == [(160, 20)] * 3
  returns = [e['return'] for e in finals]
  assert all(0 < r <= 40 for r in returns)  # Rewards in [0, 1].
  assert f'{logdir} at step 160: final return' in process.stdout
  assert read_metrics(logdir) == curve  # Apart from the training curve.
  # plot.py reports it beside the curve.
  _, _, numbers = plot(tmp_path, tmp_path / 'plot')
  entry = numbers['cartpole_balance']['idm']
  assert entry['final'][0] == pytest.approx(np.mean(returns))
  assert entry['end'] is not None
  # Evaluated at its step: a second call leaves the run alone.
  process = run_script('runs/evaluate.py', str(logdir), '--episodes', '3')
  assert process.returncode == 0 and 'left alone' in process.stdout
  assert len(read_metrics(logdir, 'final.jsonl')) == 3
  # The run resumes in float32 and is evaluated in float16 at its new step.
  process = run_script(
      'idm.py', *flags(**dict(config, precision=32, steps=240)),
      f'--logdir={logdir}')
  assert process.returncode == 0, process.stderr[-2000:]
  assert 'Resumed with --precision 32 (was 16).' in process.stdout
  process = run_script(
      'runs/evaluate.py', str(logdir), '--episodes', '1', '--precision', '16')
  assert process.returncode == 0, process.stderr[-2000:]
  assert read_metrics(logdir, 'final.jsonl')[-1]['step'] == 240


@pytest.mark.slow
def test_evaluate_fails_in_one_line(tmp_path):
  process = run_script('runs/evaluate.py', str(tmp_path / 'none'))
  assert process.returncode == 1
  assert last_line(process).startswith('evaluate.py: error: ') and (
      'config.json does not exist' in last_line(process))
  logdir = tmp_path / 'run'
  logdir.mkdir()
  (logdir / 'config.json').write_text(json.dumps(
      {'agent': 'dreamer.Dreamer', 'config': dict(TINY, seed=0)}))
  process = run_script('runs/evaluate.py', str(logdir))
  assert process.returncode == 1
  assert last_line(process) == (
      f'evaluate.py: error: no checkpoint {logdir}/variables.pkl: train the '
      'run first')


@pytest.mark.slow
def test_status_lists_every_run_and_its_state(tmp_path):
  root = tmp_path / 'figure'
  def run(name, step=None, steps=1000, exit_code=None, last=None):
    logdir = root / 'walker_run' / name / '0'
    logdir.mkdir(parents=True)
    (logdir / 'config.json').write_text(json.dumps(
        {'agent': 'dreamer.Dreamer', 'config': {'steps': steps}}))
    if step is not None:
      with (logdir / 'variables.pkl').open('wb') as f:
        pickle.dump({'_step': np.int64(step)}, f)
    if exit_code is not None:
      (logdir / 'exit_code').write_text(f'{exit_code}\n')
    if last is not None:
      (logdir / 'metrics.jsonl').write_text(
          json.dumps({'step': 10, 'test/return': last}) + '\n')
    return logdir
  run('done', step=1000, exit_code=0, last=812.5)
  run('failed', step=400, exit_code=1)
  run('stopped', step=400, exit_code=0)
  running = run('running')
  # Upstream's checkpoints are tuples and its agent's counter lags the env
  # steps of its episodes after a resume; its loop counts the episodes.
  for name, lengths in (('upstream', (251, 251)), ('upstream_short', (251,))):
    logdir = run(name, exit_code=0)
    values = json.loads((logdir / 'config.json').read_text())
    values.update(upstream={'commit': '56d4d44'})
    values['config'].update(action_repeat=2)
    (logdir / 'config.json').write_text(json.dumps(values))
    with (logdir / 'variables.pkl').open('wb') as f:
      pickle.dump((np.zeros(3, np.float32), np.int64(800)), f)
    (logdir / 'episodes').mkdir()
    for index, length in enumerate(lengths):
      episode = f'20261205T00000{index}-{index}-{length}.npz'
      (logdir / 'episodes' / episode).touch()
  holder = subprocess.Popen([sys.executable, '-c', (
      f'import sys; sys.path.insert(0, {str(ROOT)!r}); import tools, time; '
      f'tools.lock({str(running)!r}); print("locked", flush=True); '
      'time.sleep(60)')], stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline() == 'locked\n'
    process = run_script('runs/status.py', str(root), timeout=120)
  finally:
    holder.kill()
    holder.wait()
  assert process.returncode == 0, process.stderr[-2000:]
  lines = process.stdout.splitlines()
  states = {}
  for line in lines[:-1]:
    path = next(word for word in line.split() if word.startswith(str(root)))
    states[pathlib.Path(path).parent.name] = line.split()[0]
  assert states == dict(
      done='finished', failed='failed', stopped='stopped', running='running',
      upstream='finished', upstream_short='stopped')
  assert 'return   812.5' in lines[0]
  assert '(exit code 1)' in [l for l in lines if l.startswith('failed')][0]
  assert [l.split()[1] for l in lines if 'upstream' in l] == ['1000', '500']
  assert lines[-1] == '1 failed, 2 finished, 1 running, 2 stopped'
  process = run_script(
      'runs/status.py', '--finished', '1e3',
      *[str(p) for p in sorted(root.glob('walker_run/*/0'))], timeout=120)
  assert process.stdout.split() == [
      str(root / 'walker_run' / name / '0') for name in ('done', 'upstream')]


@pytest.fixture(scope='module')
def tiny_runs(tmp_path_factory):
  """A tiny Dreamer and a tiny IDM run of one task."""
  root = tmp_path_factory.mktemp('runs') / 'figure' / 'cartpole_balance'
  for method in ('dreamer', 'idm'):
    process = run_script(
        f'{method}.py', *flags(**TINY), f'--logdir={root / method / "0"}')
    assert process.returncode == 0, process.stderr[-2000:]
  return root


def png(path):
  data = path.read_bytes()
  assert data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 5000
  return data


@pytest.mark.slow
def test_predictions_compare_runs_around_a_key_action(tiny_runs, tmp_path):
  runs = [str(tiny_runs / method / '0') for method in ('dreamer', 'idm')]
  output = tmp_path / 'figure3'
  process = run_script(
      'runs/predictions.py', *runs, '--output', str(output), '--length', '8')
  assert process.returncode == 0, process.stderr[-2000:]
  png(output.with_suffix('.png'))
  lines = process.stdout.splitlines()
  for method in ('dreamer', 'idm'):
    assert any(line.startswith(f'{method}/0: mean absolute error ')
               for line in lines), method
  # Around a given step: the window holds it (13 frames of 21).
  process = run_script(
      'runs/predictions.py', *runs, '--output', str(output), '--length', '8',
      '--at', '3')
  assert process.returncode == 0, process.stderr[-2000:]
  assert lines[-1] != process.stdout.splitlines()[-1]
  assert 'Frames 0 to 12, key step 3' in process.stdout
  process = run_script(
      'runs/predictions.py', runs[0], '--output', str(output))
  assert process.returncode == 2 and 'two or more runs' in process.stderr


@pytest.mark.slow
def test_idm_figure1_decodes_derived_memory(tiny_runs, tmp_path):
  output = tmp_path / 'idm_figure1'
  process = run_script(
      'runs/idm_figure1.py', str(tiny_runs / 'idm' / '0'), '--output',
      str(output), '--frames', '6')
  assert process.returncode == 0, process.stderr[-2000:]
  png(output.with_suffix('.png'))
  error = float(process.stdout.split('mean absolute error ')[1].split()[0])
  assert 0 < error < 1
  process = run_script(
      'runs/idm_figure1.py', str(tiny_runs / 'dreamer' / '0'), '--output',
      str(output))
  assert process.returncode == 1
  assert last_line(process).endswith('dreamer/0 is no IDM run')


@pytest.mark.slow  # Starts the shell scripts and status.py.
def test_slurm_launcher_writes_one_job_array(tmp_path):
  finished = tmp_path / 'idm_vs_dreamer' / 'walker_run' / 'idm' / '1'
  finished.mkdir(parents=True)
  with (finished / 'variables.pkl').open('wb') as f:
    pickle.dump({'_step': np.int64(10 ** 6)}, f)
  lines = dry_run(
      'idm_vs_dreamer.sh', LAUNCHER='slurm', LOGROOT=str(tmp_path),
      PYTHON=sys.executable, TASKS='walker_run', SEEDS='0 1',
      CLUSTER_PARTITION='gpu', CLUSTER_TIME='24:00:00', CLUSTER_GPUS='2',
      CLUSTER_MEM='32G', CLUSTER_ACCOUNT='lab', CLUSTER_SIGNAL='300',
      CLUSTER_ARGS='--qos=long --exclude=node7')
  assert lines[0] == f'# finished: {finished}'
  script = lines[1:-1]
  assert script[0] == '#!/usr/bin/env bash'
  for option in (
      '--job-name=idm_vs_dreamer', '--array=0-2', '--requeue',
      '--signal=B:USR1@300', '--cpus-per-task=4', '--gres=gpu:2',
      '--partition=gpu', '--time=24:00:00', '--mem=32G', '--account=lab'):
    assert f'#SBATCH {option}' in script, option
  logdirs = [line for line in script if line.startswith('logdirs=(')][0]
  assert logdirs.split() == ['logdirs=(' + str(
      tmp_path / 'idm_vs_dreamer' / 'walker_run' / 'dreamer' / '0')] + [
      str(tmp_path / 'idm_vs_dreamer' / 'walker_run' / m / s)
      for m, s in (('idm', '0'), ('dreamer', '1'))] + [')']
  assert '  scontrol requeue "$SLURM_JOB_ID"' in script
  assert lines[-1].startswith(
      '# sbatch --parsable --qos=long --exclude=node7 '
      f'{tmp_path}/idm_vs_dreamer/slurm-')
  # Without a GPU, no gres; an unknown launcher is refused.
  lines = dry_run(
      'idm_vs_dreamer.sh', LAUNCHER='slurm', CLUSTER_GPUS='0', SEEDS='0')
  assert not [line for line in lines if '--gres' in line]
  process = subprocess.run(
      ['bash', str(ROOT / 'runs' / 'idm_vs_dreamer.sh')], capture_output=True,
      text=True, env=dict(os.environ, LAUNCHER='pbs', DRY_RUN='1'))
  assert process.returncode != 0 and "unknown LAUNCHER 'pbs'" in process.stderr


def test_upstream_comparison_runs_each_seed_with_its_evaluation():
  lines = dry_run('upstream_comparison.sh', SEEDS='0 1')
  reduced = (
      ' --action_repeat 4 --batch_size 16 --batch_length 32 --cnn_depth 8 '
      '--deter_size 100 --stoch_size 20 --num_units 200 --eval_every 2500 '
      '--log_every 2500 --precision 32 --jit False')
  logdir = '/logs/upstream_comparison/walker_stand'
  evaluations = dict(
      upstream=f'py {ROOT}/runs/upstream.py --evaluate 10 --logdir '
      f'{logdir}/upstream/{{}}',
      dreamer=f'py {ROOT}/runs/evaluate.py {logdir}/dreamer/{{}} '
      '--episodes 10',
      dreamer_shared=f'py {ROOT}/runs/evaluate.py {logdir}/dreamer_shared/{{}} '
      '--episodes 10')
  scripts = dict(
      upstream='runs/upstream.py', dreamer='dreamer.py',
      dreamer_shared='dreamer.py --shared_noise True')
  # Seeds outermost; each run followed by its final evaluation.
  trains = [
      f'py {ROOT}/{scripts[m]} --task dmc_walker_stand --seed {s} --steps '
      f'3.5e4 --logdir {logdir}/{m}/{s}{reduced} && '
      + evaluations[m].format(s)
      for s in (0, 1) for m in ('upstream', 'dreamer', 'dreamer_shared')]
  assert lines[:6] == trains
  assert lines[6:] == [
      evaluations[m].format(s)
      for m in ('upstream', 'dreamer', 'dreamer_shared') for s in (0, 1)]


@pytest.mark.slow
def test_continuation_scores_terminal_steps_apart(tmp_path):
  pytest.importorskip('gymnasium')
  logdir = tmp_path / 'gym_CartPole-v1' / 'dreamer' / '0'
  process = run_script('dreamer.py', f'--logdir={logdir}', *flags(**dict(
      TINY, task='gym_CartPole-v1', pcont=True, batch_length=4,
      log_images=False)))
  assert process.returncode == 0, process.stderr[-3000:]
  # A run without the predictor: only its record is read.
  off = tmp_path / 'gym_CartPole-v1' / 'dreamer_no_pcont' / '0'
  off.mkdir(parents=True)
  record = json.loads((logdir / 'config.json').read_text())
  record['config']['pcont'] = False
  (off / 'config.json').write_text(json.dumps(record))
  output = tmp_path / 'out' / 'continuation'
  process = run_script(
      'runs/continuation.py', str(logdir), str(off), '--output', str(output),
      timeout=300)
  assert process.returncode == 0, process.stderr[-3000:]
  on, without = json.loads(output.with_suffix('.json').read_text())
  # The groups, counted from the stored episodes themselves.
  expected = {'terminal': 0, 'time limit': 0, 'other': 0}
  for filename in sorted((logdir / 'episodes').glob('*.npz')):
    with np.load(filename) as episode:
      discount = episode['discount']
    expected['terminal' if discount[-1] == 0 else 'time limit'] += 1
    expected['other'] += len(discount) - 2
  assert {k: v['n'] for k, v in on['groups'].items()} == expected
  assert expected['terminal'] > 0  # CartPole's pole fell.
  for group in on['groups'].values():
    if group['n']:
      assert 0 <= group['low'] <= group['mean'] <= group['high'] <= 1
      assert 0 <= group['below'] <= 1
  assert not without['pcont'] and 'groups' not in without
  table = output.with_suffix('.md').read_text()
  assert 'dreamer_no_pcont/0 | gym_CartPole-v1 | | | no predictor' in table
  process = run_script(
      'runs/continuation.py', str(tmp_path), '--output', str(output))
  assert process.returncode == 1
  assert last_line(process).startswith('continuation.py: error: ')
