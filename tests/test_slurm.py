"""The figure scripts on a real Slurm: a single-node cluster started for the
test (tests/slurm_cluster.sh; Debian's slurm-wlm and munge, run as root)."""

import os
import pickle
import subprocess
import sys
import time

import pytest

import tools
from helpers import ROOT, TESTS, TINY

pytestmark = pytest.mark.slow


def slurm(env, *command):
  return subprocess.run(
      command, capture_output=True, text=True, env=env, timeout=60).stdout


@pytest.fixture
def cluster(tmp_path):
  """The environment of a running cluster; fails (never skips) without."""
  directory = tmp_path / 'slurm'
  script = str(TESTS / 'slurm_cluster.sh')
  if os.geteuid() != 0:
    pytest.fail('a Slurm cluster for tests needs root (slurmd runs as root)')
  try:
    process = subprocess.run(
        ['bash', script, 'up', str(directory)], capture_output=True,
        text=True, timeout=120)
  except OSError as e:
    pytest.fail(f'Slurm did not start: {e}')
  if process.returncode:
    pytest.fail(f'Slurm did not start: {process.stderr.strip()[-3000:]}')
  env = dict(os.environ, SLURM_CONF=str(directory / 'slurm.conf'))
  try:
    yield env
  finally:
    subprocess.run(['bash', script, 'down', str(directory)], timeout=60)


def wait_for(condition, env, timeout=600):
  """Polls until condition(); a requeued task starts at once, not after the
  delay that Slurm gives requeued jobs."""
  deadline = time.time() + timeout
  while time.time() < deadline:
    if condition():
      return
    for line in slurm(env, 'squeue', '-h', '-o', '%i %r').splitlines():
      job, reason = line.split(None, 1)
      if reason.strip() == 'BeginTime':
        slurm(env, 'scontrol', 'update', f'jobid={job}', 'StartTime=now')
    time.sleep(1)
  raise AssertionError(
      f'timed out; queue: {slurm(env, "squeue")}; '
      f'{slurm(env, "sinfo", "-N")}')


def test_a_figure_runs_as_a_job_array_that_resumes_after_requeue(
    cluster, tmp_path):
  logroot = tmp_path / 'logs'
  flags = dict(TINY, steps=None, eval_every=40, log_every=40, log_images=False)
  env = dict(
      cluster, LAUNCHER='slurm', LOGROOT=str(logroot), PYTHON=sys.executable,
      TASKS='cartpole_balance', METHODS='dreamer', SEEDS='0 1 2', STEPS='600',
      FLAGS=' '.join(f'--{k} {v}' for k, v in flags.items() if v is not None),
      CLUSTER_GPUS='0', CLUSTER_CPUS='1', CLUSTER_SIGNAL='30')
  process = subprocess.run(
      ['bash', str(ROOT / 'runs' / 'bird_figure2.sh')], capture_output=True,
      text=True, env=env, timeout=120)
  assert process.returncode == 0, process.stderr
  assert process.stdout.startswith('Submitted 3 runs as job array ')
  array = process.stdout.split('job array ')[1].split()[0]
  runs = [
      logroot / 'bird_figure2' / 'cartpole_balance' / 'dreamer' / str(seed)
      for seed in range(3)]
  # Slurm's warning before a time limit, sent now to task 1 while it trains:
  # the run checkpoints, and the task is requeued and resumes.
  checkpoint = runs[1] / 'variables.pkl'
  wait_for(lambda: checkpoint.exists() and tools.locked(runs[1]), cluster)
  step = tools.checkpoint_step(checkpoint)
  slurm(cluster, 'scancel', '--signal=USR1', '--batch', f'{array}_1')
  wait_for(lambda: not slurm(cluster, 'squeue', '-h'), cluster)
  for logdir in runs:
    output = (logdir / 'slurm.out').read_text()
    assert (logdir / 'exit_code').read_text() == '0\n', output[-3000:]
    with (logdir / 'variables.pkl').open('rb') as f:
      assert int(pickle.load(f)['_step']) >= 600, output[-3000:]
    assert tools.count_episodes(logdir / 'episodes')[0] >= 10
  output = (runs[1] / 'slurm.out').read_text()
  assert 'restart 1' in output and 'time limit near' in output, output
  assert 'Stopped at step' in output
  assert 'Loaded checkpoint at step' in output.split('restart 1')[1]
  # The resumed run starts from the checkpoint written when it stopped: at
  # least the one seen before the signal (the same when the signal came
  # between a checkpoint and the next stored step).
  loaded = int(output.split('Loaded checkpoint at step ')[1].split('.')[0])
  assert loaded >= step > 0
  assert 'restart 1' not in (runs[0] / 'slurm.out').read_text()
  # Submitting again leaves the finished runs out.
  process = subprocess.run(
      ['bash', str(ROOT / 'runs' / 'bird_figure2.sh')], capture_output=True,
      text=True, env=env, timeout=120)
  assert process.returncode == 0, process.stderr
  assert process.stdout.count('# finished: ') == 3
  assert 'Submitted' not in process.stdout
  status = subprocess.run(
      [sys.executable, str(ROOT / 'runs' / 'status.py'), str(logroot)],
      capture_output=True, text=True, timeout=120)
  assert status.stdout.splitlines()[-1] == '3 finished'
