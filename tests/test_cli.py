"""The command line: flags, and runs of dreamer.py as a user starts them."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import dreamer
import tools
from helpers import (
    TESTS, TINY, assert_trained, flags, last_line, read_metrics, run_script)


def event_tags(logdir):
  tags = set()
  for path in pathlib.Path(logdir).glob('events.out.tfevents.*'):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      tags.update(value.tag for value in event.summary.value)
  return tags


@pytest.mark.parametrize('args, message', [
    (['--unknown_flag', '1'], 'unrecognized arguments: --unknown_flag 1'),
    (['--steps', 'many'], "argument --steps: expected an integer, got 'many'"),
    (['--pcont', 'yes'], "argument --pcont: expected True or False, got 'yes'"),
    (['--parallel', 'gpu'], "argument --parallel: invalid choice: 'gpu'"),
    (['--task', 'dmc_walkr_walk'],
     'valid domains are: acrobot, ball_in_cup, cartpole'),
    (['--task', 'mw_reach'],
     'tasks are named dmc_<domain>_<task>, atari_<game> or gym_<Gymnasium id>'),
    (['--batch_length', '600'],
     '--batch_length must be between 2 and the episode length 501'),
    (['--horizon', '1'], '--horizon must be at least 2'),
    (['--adam_eps', '0'], '--adam_eps must be positive'),
])
def test_bad_flags_are_one_line_errors(args, message):
  with pytest.raises(SystemExit) as error:
    dreamer.parse_flags(dreamer.define_config(), args)
  text = str(error.value)
  assert ': error: ' in text and message in text and '\n' not in text


@pytest.mark.parametrize('script', ['dreamer', 'bird', 'idm'])
def test_every_key_explains_itself_in_help(script, capsys):
  import importlib
  module = importlib.import_module(script)
  extension = None if script == 'dreamer' else module.define_config
  helps = dreamer.describe_config(extension)
  config = module.define_config()
  undescribed = [k for k in config if not helps.get(k, (None, ''))[1]]
  assert not undescribed, undescribed  # A comment above each key.
  with pytest.raises(SystemExit):
    dreamer.parse_flags(
        config, ['--help'], getattr(module, 'CHOICES', None),
        extension=extension)
  text = ' '.join(capsys.readouterr().out.split())
  groups = ['General:', 'Environment:', 'Model:', 'Training:', 'Behavior:']
  if extension:
    groups.append(f'{script.upper()}:')
  positions = [text.index(group) for group in groups]
  assert positions == sorted(positions)
  squeezed = text.replace(' ', '')  # --help wraps lines at hyphens too.
  for key, value in config.items():
    entry = f'--{key} {helps[key][1]} (default: {value}'
    assert entry.replace(' ', '') in squeezed, entry
  assert 'one of none, thread, process' in text
  if script == 'bird':  # Its own keys under BIRD; its replay under Training.
    position = lambda key: text.index(f'--{key} {helps[key][1][:10]}')
    assert position('confidence') > text.index('BIRD:')
    assert text.index('Training:') < position('dataset_size') < text.index(
        'Behavior:')


@pytest.mark.slow
def test_bad_flag_exits_before_any_work(tmp_path):
  logdir = tmp_path / 'logdir'
  process = run_script(
      'dreamer.py', '--logdir', str(logdir), '--horizon', '1', timeout=120)
  assert process.returncode == 1
  assert last_line(process) == (
      'dreamer.py: error: --horizon must be at least 2, got 1')
  assert process.stdout == ''
  assert not logdir.exists()


@pytest.mark.slow
def test_train_evaluate_checkpoint_and_resume(tmp_path):
  logdir = tmp_path / 'logdir'
  process = run_script('dreamer.py', f'--logdir={logdir}', *flags(**TINY))
  metrics = assert_trained(process, logdir)
  assert 'Prefill dataset with 80 steps.' in process.stdout
  assert any('train/return' in m for m in metrics)
  assert max(m['step'] for m in metrics) >= TINY['steps']
  episodes, _ = tools.count_episodes(logdir / 'episodes')
  assert episodes >= 4  # Two random prefill episodes, then the agent's.
  for filename in tools.episode_files(logdir / 'episodes'):
    episode = tools.load_episode(filename)  # Real rendered frames.
    assert episode['image'].std() > 1
  assert (logdir / 'variables.pkl').exists()
  tags = {
      'agent/openl', 'sim/test/video', 'agent/model_loss', 'sim/train/return'}
  assert tags <= event_tags(logdir)
  assert '/ fps ' in process.stdout and '/ eta ' in process.stdout
  # Every long phase ends with a line of what it did.
  for line in ('Prefill: 80 env steps in ', 'Pretraining: 2 train steps in ',
               'Training: 2 train steps in ', 'Evaluation: 40 env steps in ',
               'Collection: 80 env steps in '):
    assert line in process.stdout, line
  # The logdir records the run: every key, the agent, versions, the code.
  record = json.loads((logdir / 'config.json').read_text())
  assert record['agent'] == 'dreamer.Dreamer' and record['seed'] == 0
  assert record['config'] == dict(
      dreamer.define_config(), **TINY, logdir=str(logdir))
  for package in ('tensorflow', 'tensorflow-probability', 'dm_control',
                  'mujoco', 'dreamer-bird-idm'):
    assert record['versions'][package], package
  assert 'config' in event_tags(logdir)
  last = max(m['step'] for m in metrics)
  # A start by other code (a record as an earlier commit wrote it).
  record['code'], record['versions']['numpy'] = 'earlier', '0.0'
  (logdir / 'config.json').write_text(json.dumps(record))
  # The same command with more steps continues where the run stopped.
  process = run_script(
      'dreamer.py', f'--logdir={logdir}', *flags(**dict(TINY, steps=240)))
  assert process.returncode == 0, process.stderr[-3000:]
  assert 'Prefill dataset with 0 steps.' in process.stdout
  assert 'Loaded checkpoint at step' in process.stdout
  assert 'Resumed with --steps 240 (was 160).' in process.stdout
  resumed = read_metrics(logdir)[len(metrics):]
  assert resumed and min(m['step'] for m in resumed) >= last
  assert max(m['step'] for m in resumed) >= 240
  record = json.loads((logdir / 'config.json').read_text())
  assert record['config']['steps'] == 240
  assert record['resumes'][-1]['changed'] == {'steps': [160, 240]}
  # The start's code and versions stay; the resume records its own.
  assert record['code'] == 'earlier' and record['versions']['numpy'] == '0.0'
  assert record['resumes'][-1]['code'] == dreamer.code_version()
  assert record['resumes'][-1]['versions'] == dreamer.versions()
  assert '--steps=240' in record['resumes'][-1]['command']


@pytest.mark.slow
@pytest.mark.parametrize('parallel', ['thread', 'process'])
def test_parallel_environments(tmp_path, parallel):
  logdir = tmp_path / 'logdir'
  config = dict(
      TINY, envs=2, parallel=parallel, steps=120, prefill=80, log_images=False)
  process = run_script('dreamer.py', f'--logdir={logdir}', *flags(**config))
  assert process.returncode == 0, process.stderr[-3000:]
  files = tools.episode_files(logdir / 'episodes')
  assert len(files) >= 4
  # Both environments act: their seeds differ, so do their first frames.
  firsts = {tools.load_episode(f)['image'][0].tobytes() for f in files}
  assert len(firsts) >= 2
  assert any('test/return' in m for m in read_metrics(logdir))


def first_losses(logdir):
  return [m for m in read_metrics(logdir) if 'model_loss' in m][0]


@pytest.mark.slow
def test_same_seed_gives_identical_first_losses(tmp_path):
  config = dict(TINY, steps=120, deterministic=True, log_images=False)
  for name, seed in (('a', 0), ('b', 0), ('c', 1)):
    process = run_script(
        'dreamer.py', f'--logdir={tmp_path / name}', f'--seed={seed}',
        *flags(**config))
    assert process.returncode == 0, process.stderr[-3000:]
  a, b, c = (first_losses(tmp_path / name) for name in 'abc')
  keys = (
      'model_loss', 'image_loss', 'reward_loss', 'actor_loss', 'value_loss',
      'div')
  assert [a[k] for k in keys] == [b[k] for k in keys]
  assert a['model_loss'] != c['model_loss']


@pytest.mark.slow
def test_xla_train_step_compiles_once(tmp_path):
  dump = tmp_path / 'xla'
  env = dict(
      os.environ, XLA_FLAGS=f'--xla_dump_to={dump} --xla_dump_hlo_as_text')
  process = subprocess.run(
      [sys.executable, str(TESTS / 'child_xla.py'), str(tmp_path / 'logdir')],
      capture_output=True, text=True, env=env, timeout=600)
  assert process.returncode == 0, process.stderr[-3000:]
  assert 'TRACES 1' in process.stdout
  # XLA dumps every module it compiles: three calls, one compilation.
  compiled = list(dump.glob('*_train_*before_optimizations.txt'))
  assert len(compiled) == 1, [p.name for p in compiled]


@pytest.mark.slow
def test_bfloat16_run_trains_end_to_end(tmp_path):
  logdir = tmp_path / 'logdir'
  config = dict(TINY, precision='bf16', log_images=False)
  process = run_script('dreamer.py', f'--logdir={logdir}', *flags(**config))
  assert process.returncode == 0, process.stderr[-3000:]
  losses = [m for m in read_metrics(logdir) if 'model_loss' in m]
  assert losses and all(
      np.isfinite(m[k]) for m in losses
      for k in ('model_loss', 'actor_loss', 'value_loss', 'action_ent'))
  assert all(m['skipped_updates'] == 0 for m in losses)
  assert any('test/return' in m for m in read_metrics(logdir))
  record = json.loads((logdir / 'config.json').read_text())
  assert record['config']['precision'] == 'bf16'
