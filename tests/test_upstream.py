"""runs/upstream.py: upstream's own Dreamer, trained through its driver.

The tests that run upstream need a checkout of danijar/dreamer at 56d4d44,
named by UPSTREAM (CI has no network to fetch one):

  git clone https://github.com/danijar/dreamer ../dreamer
  git -C ../dreamer checkout 56d4d44
  UPSTREAM=../dreamer python -m pytest tests/test_upstream.py
"""

import hashlib
import importlib.util
import json
import os
import pathlib
import pickle
import re
import shutil
import signal
import subprocess
import sys

import tools  # Sets TensorFlow's import flags; must precede its import.

import numpy as np
import pytest
import tensorflow as tf

from helpers import ROOT, TINY, assert_trained, flags, last_line, read_metrics

UPSTREAM = os.environ.get('UPSTREAM')
needs_upstream = pytest.mark.skipif(
    not UPSTREAM, reason='UPSTREAM is not set: these tests need a checkout '
    'of danijar/dreamer at 56d4d44 (CI has no network to fetch one)')
MODULES = ('dreamer.py', 'models.py', 'tools.py', 'wrappers.py')


def load_driver():
  """runs/upstream.py as a module; it imports only the standard library."""
  spec = importlib.util.spec_from_file_location(
      'upstream_driver', ROOT / 'runs' / 'upstream.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def checkout():
  return pathlib.Path(UPSTREAM).expanduser().resolve()


def run_driver(*args, timeout=600):
  """The driver as a user starts it. Without PYTHONDONTWRITEBYTECODE, so
  that the driver itself must keep __pycache__ out of the checkout."""
  environ = {
      k: v for k, v in os.environ.items() if k != 'PYTHONDONTWRITEBYTECODE'}
  return subprocess.run(
      [sys.executable, str(ROOT / 'runs' / 'upstream.py'), *args],
      capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=environ)


def file_hashes(root):
  """{path: sha1} of every file below root, .git included."""
  return {
      str(path.relative_to(root)): hashlib.sha1(path.read_bytes()).hexdigest()
      for path in sorted(root.rglob('*')) if path.is_file()}


def upstream_keys():
  """The keys of upstream's define_config(), from its source."""
  source = (checkout() / 'dreamer.py').read_text()
  body = source.split('def define_config():')[1].split('return config')[0]
  return re.findall(r'^  config\.(\w+) = ', body, re.MULTILINE)


def gif_tags(logdir):
  """Tags of the GIF images in the run's TensorBoard events."""
  tags = set()
  for path in pathlib.Path(logdir).glob('events.out.tfevents.*'):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      for value in event.summary.value:
        if value.image.encoded_image_string.startswith(b'GIF8'):
          tags.add(value.tag)
  return tags


# Without a checkout.

def test_methods_run_upstream_through_its_driver_without_shared_noise():
  def method(name):
    return subprocess.run(
        [sys.executable, str(ROOT / 'runs' / 'methods.py'), name],
        capture_output=True, text=True, timeout=60)
  assert method('upstream').stdout == 'runs/upstream.py\n'
  process = method('upstream_shared')
  assert process.returncode == 1
  assert process.stderr.strip() == (
      "methods.py: error: unknown method 'upstream_shared': upstream's code "
      'has no --shared_noise: its RSSM always draws one noise vector per '
      'step for the whole batch')


def test_a_figure_script_runs_upstream_beside_dreamer():
  environ = dict(
      os.environ, DRY_RUN='1', LOGROOT='/logs', PYTHON='py',
      METHODS='upstream dreamer', TASKS='walker_walk', SEEDS='0',
      FLAGS='--precision 32 --jit False')
  process = subprocess.run(
      ['bash', str(ROOT / 'runs' / 'idm_vs_dreamer.sh')],
      capture_output=True, text=True, env=environ, timeout=60)
  assert process.returncode == 0, process.stderr
  common = ('--task dmc_walker_walk --seed 0 --steps 1e6 --logdir '
            '/logs/idm_vs_dreamer/walker_walk/{}/0 --precision 32 --jit False')
  assert process.stdout.splitlines() == [
      f'py {ROOT}/runs/upstream.py {common.format("upstream")}',
      f'py {ROOT}/dreamer.py {common.format("dreamer")}']
  process = subprocess.run(
      ['bash', str(ROOT / 'runs' / 'idm_vs_dreamer.sh')], capture_output=True,
      text=True, env=dict(environ, METHODS='upstream_shared'), timeout=60)
  assert process.returncode != 0
  assert "unknown method 'upstream_shared'" in process.stderr


def test_a_missing_checkout_is_refused_in_one_line(tmp_path):
  missing = tmp_path / 'dreamer'
  for args, environ in (
      (['--upstream', str(missing)], {}), ([], {'UPSTREAM': str(missing)})):
    process = subprocess.run(
        [sys.executable, str(ROOT / 'runs' / 'upstream.py'), *args,
         '--logdir', str(tmp_path / 'logdir')], capture_output=True,
        text=True, timeout=60, env=dict(os.environ, **environ))
    assert process.returncode == 1
    assert process.stderr.startswith(
        f'upstream.py: error: no upstream checkout at {missing}: ')
    assert process.stderr.count('\n') == 1 and process.stdout == ''
  assert not (tmp_path / 'logdir').exists()


# With a checkout.

@needs_upstream
def test_a_checkout_is_verified_by_its_content(tmp_path):
  driver = load_driver()
  driver.verify_checkout(checkout())
  # Upstream's modules without .git, as a download of the commit has them.
  copy = tmp_path / 'dreamer'
  copy.mkdir()
  for name in MODULES:
    shutil.copy(checkout() / name, copy / name)
  driver.verify_checkout(copy)
  if (checkout() / '.git').exists():  # The hashes are git's own.
    for name in MODULES:
      blob = subprocess.run(
          ['git', '-C', str(checkout()), 'rev-parse', f'56d4d44:{name}'],
          capture_output=True, text=True).stdout.strip()
      assert driver.BLOBS[name] == blob == driver.blob_hash(copy / name)
  # The modules never changed after upstream's first commit, so another
  # commit's checkout is one whose file differs.
  with (copy / 'models.py').open('a') as f:
    f.write('# changed\n')
  process = run_driver('--upstream', str(copy), timeout=60)
  assert process.returncode == 1 and process.stdout == ''
  assert process.stderr == (
      f"upstream.py: error: {copy / 'models.py'} is not upstream's models.py "
      f'at 56d4d44 (changed, or another commit): git -C {copy} checkout '
      '56d4d44\n')
  shutil.copy(checkout() / 'models.py', copy / 'models.py')
  (copy / 'tools.py').unlink()
  with pytest.raises(ValueError, match='it has no tools.py'):
    driver.verify_checkout(copy)


@needs_upstream
@pytest.mark.slow
@pytest.mark.parametrize('args, message', [
    (['--jit', 'True'],
     "upstream.py: error: --jit True: upstream's code has no XLA option"),
    (['--unknown_flag', '1'],
     'upstream.py: error: unrecognized arguments: --unknown_flag 1'),
    (['--task', 'atari_pong'],
     "upstream.py: error: --task atari_pong: upstream's Atari runs gym's"),
])
def test_bad_flags_are_refused_in_one_line(tmp_path, args, message):
  logdir = tmp_path / 'logdir'
  process = run_driver('--logdir', str(logdir), *args, timeout=300)
  assert process.returncode == 1
  assert last_line(process).startswith(message)
  assert process.stdout == ''
  assert not logdir.exists()


@needs_upstream
@pytest.mark.slow
def test_help_lists_the_drivers_options_and_every_upstream_key():
  process = run_driver('--help', timeout=300)
  assert process.returncode == 0, process.stderr[-2000:]
  keys = upstream_keys()
  assert len(keys) == 48
  for option in ['upstream', 'evaluate', 'jit'] + keys:
    assert f'  --{option} ' in process.stdout, option


@needs_upstream
@pytest.mark.slow
def test_tiny_upstream_run_trains_evaluates_checkpoints_and_resumes(tmp_path):
  driver = load_driver()
  before = file_hashes(checkout())
  logdir = tmp_path / 'logdir'
  # The tiny flags of this project's tiny Dreamer runs, --jit False too.
  process = run_driver(f'--logdir={logdir}', *flags(**TINY))
  metrics = assert_trained(process, logdir)
  assert 'Prefill dataset with 80 steps.' in process.stdout
  assert any('train/return' in m for m in metrics)
  assert max(m['step'] for m in metrics) >= TINY['steps']
  # Upstream's episodes, of real rendered frames.
  episodes = sorted((logdir / 'episodes').glob('*.npz'))
  assert len(episodes) >= 4  # Two random prefill episodes, then the agent's.
  for filename in episodes:
    with np.load(filename) as episode:
      assert episode['image'].shape == (21, 64, 64, 3)
      assert episode['image'].dtype == np.uint8
      assert episode['image'].std() > 1
  # Upstream's GIFs, through ffmpeg.
  assert {'agent/openl/gif', 'sim/test/video/gif'} <= gif_tags(logdir)
  # Upstream's checkpoint: its variables' values in order.
  with (logdir / 'variables.pkl').open('rb') as f:
    assert isinstance(pickle.load(f), (list, tuple))
  assert tools.checkpoint_step(logdir / 'variables.pkl') == TINY['steps']
  record = json.loads((logdir / 'config.json').read_text())
  assert record['agent'] == 'upstream.Dreamer'
  assert record['upstream']['commit'] == driver.COMMIT
  assert record['upstream']['path'] == str(checkout())
  assert sorted(record['config']) == sorted(upstream_keys())
  assert record['config']['cnn_depth'] == 2 and 'jit' not in record['config']
  assert record['code'] and record['versions']['tensorflow']
  assert record['command'][0].endswith('runs/upstream.py')

  # The final evaluation: runs/evaluate.py's lines, beside the curve.
  process = run_driver('--evaluate', '2', '--logdir', str(logdir))
  assert process.returncode == 0, process.stderr[-3000:]
  finals = read_metrics(logdir, 'final.jsonl')
  assert [sorted(line) for line in finals] == [
      ['episode', 'length', 'return', 'step']] * 2
  assert [line['episode'] for line in finals] == [0, 1]
  assert all(line['step'] == TINY['steps'] for line in finals)
  assert all(line['length'] == 20 for line in finals)
  assert process.stdout.splitlines()[-1].startswith(
      f'{logdir} at step 160: final return ')
  assert 'Training for' not in process.stdout  # The checkpoint's policy.
  assert read_metrics(logdir) == metrics
  process = run_driver('--evaluate', '2', '--logdir', str(logdir))
  assert process.returncode == 0, process.stderr[-3000:]
  assert process.stdout.splitlines()[-1] == (
      f'{logdir} was evaluated at step 160 before; left alone.')

  # The same command with more steps continues where the run stopped.
  process = run_driver(f'--logdir={logdir}', *flags(**dict(TINY, steps=240)))
  assert process.returncode == 0, process.stderr[-3000:]
  assert 'Prefill dataset with 0 steps.' in process.stdout
  assert 'Load checkpoint.' in process.stdout
  assert 'Resumed with --steps 240.0 (was 160.0).' in process.stdout
  resumed = read_metrics(logdir)[len(metrics):]
  assert resumed and min(m['step'] for m in resumed) >= TINY['steps']
  assert max(m['step'] for m in resumed) >= 240
  assert tools.checkpoint_step(logdir / 'variables.pkl') == 240
  record = json.loads((logdir / 'config.json').read_text())
  assert record['resumes'][-1]['changed'] == {'steps': [160.0, 240.0]}

  # An episode written after the last checkpoint (a run killed before its
  # next save) counts on upstream's axis, where the agent's counter lags.
  last = sorted((logdir / 'episodes').glob('*.npz'))[-1]
  shutil.copy(last, last.with_name('later' + last.name))
  process = run_driver('--evaluate', '1', '--logdir', str(logdir))
  assert process.returncode == 0, process.stderr[-3000:]
  length = int(last.stem.split('-')[-1]) - 1
  step = 240 + length * record['config']['action_repeat']
  assert read_metrics(logdir, 'final.jsonl')[-1]['step'] == step == 280
  assert tools.checkpoint_step(logdir / 'variables.pkl') == 240

  # Nothing in the checkout changed, and nothing was added (__pycache__).
  assert file_hashes(checkout()) == before


@needs_upstream
def test_upstreams_resume_as_the_study_reports_it(tmp_path):
  """What runs/results/upstream_comparison.md says of upstream's resume:
  no Adam state in its checkpoint, no second pretraining, and an agent
  counter that lags episodes written after the checkpoint, so fewer train
  phases."""
  logdir = tmp_path / 'logdir'
  config = dict(TINY, pretrain=3)  # Pretraining told apart from phases of 2.
  process = run_driver(f'--logdir={logdir}', *flags(**config))
  assert process.returncode == 0, process.stderr[-3000:]
  assert process.stdout.count('Training for 3 steps.') == 1
  # Its checkpoint is the agent's variables without the optimizers' slots:
  # Adam's two moments per weight would more than triple it.
  weights = sum(int(n) for n in re.findall(
      r'Found (\d+) \w+ parameters.', process.stdout))
  with (logdir / 'variables.pkl').open('rb') as f:
    stored = sum(np.size(v) for v in tf.nest.flatten(pickle.load(f)))
  assert weights > 0 and weights <= stored < 1.1 * weights
  # An episode written after the checkpoint, as by a run stopped between
  # two saves: the loop counts it, the restored agent counter does not.
  last = sorted((logdir / 'episodes').glob('*.npz'))[-1]
  shutil.copy(last, last.with_name('later' + last.name))
  process = run_driver(f'--logdir={logdir}', *flags(**dict(config, steps=280)))
  assert process.returncode == 0, process.stderr[-3000:]
  assert 'Load checkpoint.' in process.stdout
  assert 'Training for 3 steps.' not in process.stdout  # No pretraining.
  # Phases at agent steps 160 and 200; the loop stopped when its episodes
  # reached 280, the agent's counter at 240.
  assert process.stdout.count('Training for 2 steps.') == 2
  assert tools.checkpoint_step(logdir / 'variables.pkl') == 240


def stopped_run(args, line):
  """The driver, sent SIGTERM when its output shows `line`."""
  environ = {
      k: v for k, v in os.environ.items() if k != 'PYTHONDONTWRITEBYTECODE'}
  environ['PYTHONUNBUFFERED'] = '1'  # Upstream's prints, as they happen.
  process = subprocess.Popen(
      [sys.executable, str(ROOT / 'runs' / 'upstream.py'), *args],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
      env=environ)
  lines = []
  for text in process.stdout:
    lines.append(text)
    if text.startswith(line):
      process.send_signal(signal.SIGTERM)
      break
  out, err = process.communicate(timeout=600)
  return subprocess.CompletedProcess(
      process.args, process.returncode, ''.join(lines) + out, err)


def adam_iterations(logdir):
  """The updates of the model's Adam, as the driver saved its state."""
  with (logdir / 'resume.pkl').open('rb') as f:
    values = pickle.load(f)
  return int(values['optimizers'][0][0])


@needs_upstream
@pytest.mark.slow
def test_a_resumable_upstream_run_stops_and_continues_as_if_uninterrupted(
    tmp_path):
  """--resumable True: a stop in pretraining and one in a collection, then
  the same updates, tests and steps as upstream's uninterrupted loop."""
  logdir = tmp_path / 'logdir'
  # Pretraining (5) longer than the phases (2), so that its rest needs more
  # updates than a phase's calls; two collections of 80 env steps with
  # phases every 40, the first inside each collection's test.
  config = dict(TINY, pretrain=5, train_steps=2, steps=240)
  args = [f'--logdir={logdir}', '--resumable', 'True', *flags(**config)]
  # Stopped before training: it stops after pretraining's first update,
  # inside the test that starts the first collection.
  process = stopped_run(args, 'Prefill dataset with 80 steps.')
  assert process.returncode == 0, process.stderr[-3000:]
  assert process.stdout.splitlines()[-1] == (
      'Stopped at step 80 after 1 of 5 updates of its phase; run the same '
      'command to continue.')
  assert 'Received SIGTERM' in process.stderr
  assert tools.checkpoint_step(logdir / 'variables.pkl') == 80
  assert adam_iterations(logdir) == 1 + 1  # The build step's and one.
  assert not any('test/return' in m for m in read_metrics(logdir))

  # Resumed: the test it stopped in, with the other 4 updates in a phase of
  # 2 calls, then stopped in the collection, after the first update of the
  # phase at 120.
  process = stopped_run(args, 'Start collection.')
  assert process.returncode == 0, process.stderr[-3000:]
  assert 'Resumed inside the phase at step 80: 4 of its 5 updates left.' in (
      process.stdout)
  assert process.stdout.splitlines()[-1].startswith(
      'Stopped at step 120 after 1 of 2 updates of its phase')
  assert adam_iterations(logdir) == 1 + 5 + 1
  tests = [m['step'] for m in read_metrics(logdir) if 'test/return' in m]
  assert tests == [80]

  # Resumed again: no test where upstream's loop had none, the phase's other
  # update, the collection's other 40 env steps, then upstream's loop.
  process = run_driver(*args)
  assert process.returncode == 0, process.stderr[-3000:]
  assert 'Resumed inside a collection: its test was done before.' in (
      process.stdout)
  assert 'Resumed inside the phase at step 120: 1 of its 2 updates left.' in (
      process.stdout)
  metrics = read_metrics(logdir)
  assert [m['step'] for m in metrics if 'test/return' in m] == [80, 160]
  assert tools.checkpoint_step(logdir / 'variables.pkl') == 240
  # The build step, pretraining and the phases at 120, 160 and 200: as an
  # uninterrupted run, whose Adam state the resumes kept.
  assert adam_iterations(logdir) == 1 + 5 + 3 * 2
  losses = [m['model_loss'] for m in metrics if 'model_loss' in m]
  assert losses and np.all(np.isfinite(losses))
  with (logdir / 'resume.pkl').open('rb') as f:
    assert pickle.load(f)['stop'] is None  # Upstream's own save last.

  # Its checkpoint stays upstream's, for --evaluate; a command without
  # --resumable is refused rather than resumed without Adam's state.
  process = run_driver('--evaluate', '1', '--logdir', str(logdir))
  assert process.returncode == 0, process.stderr[-3000:]
  process = run_driver(f'--logdir={logdir}', *flags(**config))
  assert process.returncode == 1
  assert last_line(process) == (
      f'upstream.py: error: {logdir} was trained with --resumable True '
      f"({logdir / 'resume.pkl'} holds Adam's state and where it stopped): "
      'give it again, or remove that file to resume as upstream does')
