"""Long runs get killed, stopped and fed mistakes: nothing may be lost, and
errors are one line."""

import os
import pathlib
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import dreamer
import tools
from helpers import ROOT, TESTS, TINY, flags, last_line, make_agent
from helpers import random_batch, read_metrics, run_script, tiny_config

def start(logdir, fault='', **config):
  """dreamer.py's main in a child process, with a fault injected."""
  config = dict(TINY, log_images=False, **config)
  args = [f'--logdir={logdir}', *flags(**config)]
  return subprocess.Popen(
      [sys.executable, str(TESTS / 'child_fault.py'), *args],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
      env=dict(os.environ, FAULT=fault))


def checkpoint_step(logdir):
  path = pathlib.Path(logdir) / 'variables.pkl'
  if not path.exists():
    return 0
  with path.open('rb') as f:
    return int(pickle.load(f)['_step'])


def check_logdir(logdir):
  """Every file under its final name is whole; returns the episode names."""
  episodes = tools.episode_files(logdir / 'episodes')
  for filename in episodes:
    tools.load_episode(filename)  # Raises for a torn file.
  checkpoint_step(logdir)  # Raises for a torn checkpoint.
  return {f.name for f in episodes}


@pytest.mark.slow
def test_killed_anywhere_resumes_without_loss(tmp_path):
  logdir = tmp_path / 'logdir'
  # Runs that would not end before their kill, however fast the machine.
  config = dict(steps=10 ** 6, eval_every=80, train_every=40, log_every=40)
  random = np.random.RandomState(0)
  # Torn writes of the first checkpoint, an episode, a later checkpoint; then
  # random moments.
  kills = [
      ('variables.pkl:1', None), ('.npz:2', None), ('variables.pkl:2', None)]
  kills += [('', random.uniform(4, 20)) for _ in range(3)]
  episodes, last_checkpoint, resumed_from = set(), 0, 0
  for fault, delay in kills:
    process = start(logdir, fault, **config)
    if delay is None:
      process.wait(timeout=600)
    else:
      time.sleep(delay)
      process.kill()
      process.wait()
    stdout, stderr = process.communicate()
    assert process.returncode == -signal.SIGKILL, (
        fault, delay, stderr[-2000:])
    assert 'skipping episode' not in stderr
    # Every episode finished before a kill is whole and still there;
    # checkpoints only grow.
    now = check_logdir(logdir)
    assert episodes <= now
    episodes = now
    assert checkpoint_step(logdir) >= last_checkpoint
    last_checkpoint = checkpoint_step(logdir)
    if 'Loaded checkpoint at step' in stdout:
      assert loaded_step(stdout) >= resumed_from
    resumed_from = last_checkpoint
  # The last run finishes 200 steps after the last checkpoint.
  steps = last_checkpoint + 200
  process = start(logdir, **dict(config, steps=steps))
  stdout, stderr = process.communicate(timeout=600)
  assert process.returncode == 0, stderr[-3000:]
  assert 'skipping episode' not in stderr
  assert loaded_step(stdout) >= last_checkpoint
  assert episodes <= check_logdir(logdir)
  assert checkpoint_step(logdir) >= steps
  assert not list(logdir.rglob('.*.tmp'))  # Torn temporary files are gone.
  metrics = read_metrics(logdir)  # Every line parses, torn ones included.
  assert max(m['step'] for m in metrics) >= steps


def loaded_step(stdout):
  return int(stdout.split('Loaded checkpoint at step ')[1].split('.')[0])


@pytest.mark.slow
@pytest.mark.parametrize('signum, parallel', [
    (signal.SIGINT, 'none'), (signal.SIGTERM, 'process')])
def test_signal_stops_gracefully(tmp_path, signum, parallel):
  logdir = tmp_path / 'logdir'
  process = start(logdir, steps=10 ** 6, parallel=parallel)
  try:
    # Wait until training runs.
    deadline = time.time() + 300
    while time.time() < deadline:
      if (logdir / 'metrics.jsonl').exists() and any(
          'model_loss' in m for m in read_metrics(logdir)):
        break
      time.sleep(0.5)
    workers = env_workers(process.pid)
    assert len(workers) == (2 if parallel == 'process' else 0)
    for pid in workers:  # Spawned without the main script's TensorFlow.
      maps = pathlib.Path(f'/proc/{pid}/maps').read_text()
      assert 'tensorflow' not in maps and 'mujoco' in maps
    sent = time.time()
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    elapsed = time.time() - sent
  finally:
    process.kill()
  assert process.returncode == 0, stderr[-3000:]
  assert elapsed < 30
  assert f'Received {signal.Signals(signum).name}' in stderr
  assert 'Stopped at step' in stdout
  step = checkpoint_step(logdir)
  assert step > TINY['prefill']
  # The unfinished episode was kept: stored episodes account for the
  # checkpoint's step.
  assert tools.count_episodes(logdir / 'episodes')[1] * 2 == step
  time.sleep(1)
  assert not [pid for pid in workers if pathlib.Path(f'/proc/{pid}').exists()]
  # Resumed, the run tests when its next test is due, not at the start: its
  # tests stay every eval_every env steps from its first.
  tests = [m['step'] for m in read_metrics(logdir) if 'test/return' in m]
  assert tests[0] == TINY['prefill']
  due = dreamer.next_test(tests, TINY['eval_every'])
  if step == due:
    pytest.skip('stopped on a test step, where a resume tests first')
  process = start(logdir, steps=due + TINY['eval_every'], parallel=parallel)
  stdout, stderr = process.communicate(timeout=300)
  assert process.returncode == 0, stderr[-3000:]
  resumed = [m['step'] for m in read_metrics(logdir) if 'test/return' in m]
  new = resumed[len(tests):]
  # The phase ends with its last episode, up to one (40 env steps) late.
  assert len(new) == 1 and due <= new[0] < due + TINY['time_limit'], (
      step, tests, new)


@pytest.mark.slow
def test_stop_in_a_train_phase_resumes_its_updates(tmp_path):
  # Pretraining of 3 at 80 env steps, phases of 4 at 120, 160 and 200: the
  # stop comes in the 5th update, the 2nd of the phase at 120, and the
  # phase stops after it.
  config = dict(pretrain=3, train_steps=4, steps=240)
  logdir = tmp_path / 'logdir'
  process = start(logdir, 'sigterm:5', **config)
  stdout, stderr = process.communicate(timeout=300)
  assert process.returncode == 0, stderr[-3000:]
  assert 'Stopped at step' in stdout
  assert checkpoint_updates(logdir) == 5
  process = start(logdir, **config)
  stdout, stderr = process.communicate(timeout=300)
  assert process.returncode == 0, stderr[-3000:]
  # The rest of the cut phase first, then phases of 4 on the grid of an
  # unbroken run: the updates are what it owes at its last step.
  phases = [int(line.split()[2]) for line in stdout.splitlines()
            if line.startswith('Training for ')]
  assert phases[0] == 2 and set(phases[1:]) == {4}, stdout[-3000:]
  last = checkpoint_step(logdir) - 2  # The last call, one action earlier.
  assert checkpoint_updates(logdir) == 3 + (last - 80) // 40 * 4
  assert sum(phases) == 3 + (last - 80) // 40 * 4 - 5


def checkpoint_updates(logdir):
  with (logdir / 'variables.pkl').open('rb') as f:
    values = pickle.load(f)
  # Every update was applied: the world model's optimizer counts them too.
  assert values['_updates'] == values['_model_opt/slots/0']
  return int(values['_updates'])


def env_workers(pid):
  """Spawned environment workers of a process (not multiprocessing's resource
  tracker).

  Found by their parent in /proc/*/stat, not in /proc/PID/task/*/children:
  a thread of the run that exits while that list is read raises (TensorFlow
  starts and ends threads), and the kernel gives the list as reliable only
  for stopped processes. Processes that end while being read are skipped.
  """
  found = []
  for entry in pathlib.Path('/proc').iterdir():
    if not entry.name.isdigit():
      continue
    try:
      stat = (entry / 'stat').read_text()
      parent = int(stat.rsplit(')', 1)[1].split()[1])
      if parent == pid and b'spawn_main' in (entry / 'cmdline').read_bytes():
        found.append(int(entry.name))
    except (FileNotFoundError, ProcessLookupError):
      continue
  return sorted(found)


@pytest.mark.slow  # Traces and runs several train steps.
def test_nan_batch_skips_only_that_update(tmp_path):
  agent = make_agent(tiny_config(tmp_path))
  batch = random_batch(agent._c)
  batch['reward'][0, 0] = np.nan
  model = [v.numpy().copy() for v in agent._model_opt._variables]
  actor = [v.numpy().copy() for v in agent._actor.trainable_variables]
  metrics = agent.train(batch)
  assert metrics['skipped_updates'] == 1
  assert not np.isfinite(metrics['model_loss'])
  assert all(np.array_equal(a, v.numpy()) for a, v in zip(
      model, agent._model_opt._variables))
  assert any(not np.array_equal(a, v.numpy()) for a, v in zip(
      actor, agent._actor.trainable_variables))
  # Consecutive non-finite steps end the run, counted on the device and
  # checked once per phase; a finite one in between resets the count.
  agent._c.nonfinite_limit = 3
  good = random_batch(agent._c)
  for data in (good, batch, good, batch, batch):
    agent.train(data)
  agent._check_finite()  # At most 2 in a row.
  agent.train(batch)  # The third in a row, in the next phase.
  with pytest.raises(tools.NonFiniteError, match='3 train steps in a row'):
    agent._check_finite()


def test_streak_counts_the_longest_run_between_reads():
  streak = tools.Streak()
  update = tf.function(streak.update, jit_compile=True)
  for value in (True, False, True, True):
    update(tf.constant(value))
  assert streak.read() == 2
  assert streak.read() == 2  # A run going on counts on.
  update(tf.constant(True))
  assert streak.read() == 3
  update(tf.constant(False))
  assert streak.read() == 3
  assert streak.read() == 0


@pytest.mark.slow
def test_non_finite_steps_stop_the_run_keeping_the_good_checkpoint(tmp_path):
  logdir = tmp_path / 'logdir'
  process = start(logdir, 'nan', steps=400, nonfinite_limit=4)
  stdout, stderr = process.communicate(timeout=600)
  assert process.returncode == 1
  line = stderr.strip().splitlines()[-1]
  assert 'error: 4 train steps in a row had a non-finite loss' in line
  good = (logdir / 'good.pkl').read_bytes()
  assert (logdir / 'variables.pkl').read_bytes() == good


@pytest.mark.slow
def test_unwritable_logdir_fails_clearly(tmp_path):
  blocker = tmp_path / 'file'
  blocker.write_text('a file where a directory should be')
  process = run_script(
      'dreamer.py', f'--logdir={blocker / "logdir"}', timeout=120)
  assert process.returncode == 1
  assert last_line(process).startswith(
      'dreamer.py: error: cannot write to --logdir')
  if os.geteuid() != 0:  # Permissions do not bind root.
    readonly = tmp_path / 'readonly'
    readonly.mkdir(mode=0o555)
    process = run_script(
        'dreamer.py', f'--logdir={readonly / "logdir"}', timeout=120)
    assert 'Permission denied' in last_line(process)


@pytest.mark.slow
def test_bad_records_and_checkpoints_fail_clearly_and_change_nothing(
    tmp_path):
  logdir = tmp_path / 'logdir'
  process = run_script(
      'dreamer.py', f'--logdir={logdir}', *flags(**dict(TINY, steps=120)))
  assert process.returncode == 0, process.stderr[-3000:]
  def snapshot():  # Every file but the lock, which names its last holder.
    return {
        p: p.read_bytes() for p in logdir.rglob('*')
        if p.is_file() and p.name != '.lock'}
  # The command differs from the record in what is trained: both values.
  before = snapshot()
  process = run_script(
      'dreamer.py', f'--logdir={logdir}',
      *flags(**dict(TINY, steps=200, deter_size=10, model_lr=1e-3)))
  assert process.returncode == 1
  assert last_line(process).startswith(
      f'dreamer.py: error: {logdir} holds a run with other settings: '
      '--deter_size 8 there, 10 here; --model_lr 0.0006 there, 0.001 here')
  assert snapshot() == before
  # Another agent.
  process = run_script(
      'bird.py', f'--logdir={logdir}', *flags(**dict(TINY, steps=200)))
  assert process.returncode == 1
  assert last_line(process) == (
      f'bird.py: error: {logdir} holds a run of dreamer.Dreamer, not of '
      'bird.BIRD')
  assert snapshot() == before
  # Without the record, another config's checkpoint: the first variable
  # whose shape differs is named.
  (logdir / 'config.json').unlink()
  before = snapshot()
  process = run_script(
      'dreamer.py', f'--logdir={logdir}',
      *flags(**dict(TINY, steps=200, deter_size=10)))
  assert process.returncode == 1
  line = last_line(process)
  assert 'does not fit this agent: variable _' in line and 'has shape' in line
  assert 'written with another config?' in line
  assert snapshot() == before
  # A corrupt checkpoint.
  checkpoint = logdir / 'variables.pkl'
  checkpoint.write_bytes(checkpoint.read_bytes()[:5000])
  before = snapshot()
  process = run_script(
      'dreamer.py', f'--logdir={logdir}', *flags(**dict(TINY, steps=200)))
  assert process.returncode == 1
  assert 'variables.pkl is not a readable checkpoint' in last_line(process)
  assert snapshot() == before


@pytest.mark.slow
def test_one_process_per_logdir_and_none_after_a_kill(tmp_path):
  logdir = tmp_path / 'logdir'
  first = start(logdir, steps=10 ** 6)
  try:
    deadline = time.time() + 120
    while tools.locked(logdir) is None and time.time() < deadline:
      time.sleep(0.2)
    assert tools.locked(logdir) == first.pid
    second = start(logdir, steps=10 ** 6)
    _, stderr = second.communicate(timeout=120)
    assert second.returncode == 1
    assert stderr.strip().splitlines()[-1] == (
        f'child_fault.py: error: {logdir} is in use by process {first.pid}; '
        'wait for it to end or stop it first')
  finally:
    first.kill()
    first.wait()
  # The kernel released the lock with the process: resuming needs nothing.
  assert tools.locked(logdir) is None
  process = start(logdir, steps=200)
  _, stderr = process.communicate(timeout=600)
  assert process.returncode == 0, stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize('name', ['variables.pkl', '.npz', 'metrics.jsonl'])
def test_full_disk_stops_the_run_and_keeps_what_was_written(tmp_path, name):
  logdir = tmp_path / 'logdir'
  nth = 2 if name == 'variables.pkl' else 4
  process = start(logdir, f'enospc:{name}:{nth}', steps=400)
  stdout, stderr = process.communicate(timeout=600)
  assert process.returncode == 1, stderr[-3000:]
  line = stderr.strip().splitlines()[-1]
  assert line.startswith(
      'child_fault.py: error: no space left on the device to write ')
  assert name in line and line.endswith(
      'free space and run the same command to continue')
  # The last checkpoint and every episode are whole; nothing temporary.
  episodes = check_logdir(logdir)
  assert episodes
  assert not list(logdir.rglob('.*.tmp'))
  if name == 'variables.pkl':
    assert checkpoint_step(logdir) > 0  # The first checkpoint.
  # With space again, the same command continues.
  process = start(logdir, steps=400)
  stdout, stderr = process.communicate(timeout=600)
  assert process.returncode == 0, stderr[-3000:]
  assert episodes <= check_logdir(logdir)
  read_metrics(logdir)  # A torn line was dropped.


@pytest.mark.slow
def test_dead_environment_worker_is_restarted(tmp_path):
  logdir = tmp_path / 'logdir'
  process = start(logdir, steps=400, parallel='process')
  try:
    # A wait for progress, not a timing: on a loaded machine the run can
    # take minutes to its third episode.
    deadline = time.time() + 900
    episodes = lambda: tools.episode_files(logdir / 'episodes')
    while time.time() < deadline and len(episodes()) < 3:
      assert process.poll() is None, process.communicate()[1][-3000:]
      time.sleep(0.2)
    assert len(episodes()) >= 3, 'no third episode in 900 s'
    killed = env_workers(process.pid)
    assert len(killed) == 2, (killed, len(episodes()), process.poll())
    for pid in killed:  # Both the training and the evaluation worker.
      os.kill(pid, signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=600)
  finally:
    process.kill()
  assert process.returncode == 0, stderr[-3000:]
  assert 'Environment worker died; starting a new one.' in stderr
  assert checkpoint_step(logdir) >= 400
  check_logdir(logdir)
  assert any('test/return' in m for m in read_metrics(logdir))
