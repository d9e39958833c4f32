"""Tiny configurations, agents, batches and script runs for tests."""

import json
import os
import pathlib
import subprocess
import sys

import tools  # Sets TensorFlow's import flags; must precede its import.

import numpy as np
import tensorflow as tf

import dreamer
import wrappers

ROOT = pathlib.Path(__file__).resolve().parent.parent
TESTS = ROOT / 'tests'

# Every size a few units: tests prove wiring and maths; benchmarks measure
# speed.
TINY = dict(
    task='dmc_cartpole_balance', time_limit=40, prefill=80, steps=160,
    eval_every=80, log_every=40, train_every=40, train_steps=2, pretrain=2,
    batch_size=3, batch_length=8, cnn_depth=2, deter_size=8, stoch_size=4,
    num_units=8, horizon=4, precision=32, jit=False)


def tiny_config(logdir, module=dreamer, **overrides):
  config = module.define_config()
  config.update(TINY)
  config.update(overrides)
  config.logdir = pathlib.Path(logdir)
  return config


def make_agent(config, agent_class=dreamer.Dreamer, actdim=2, strategy=None):
  dreamer.setup(config)
  config.logdir.mkdir(parents=True, exist_ok=True)
  logger = tools.Logger(config.logdir, config.steps)
  actspace = wrappers.Box(-np.ones(actdim), np.ones(actdim))
  return agent_class(
      config, config.logdir / 'episodes', actspace, logger, strategy)


def random_batch(config, actdim=2, seed=0):
  shape = (config.batch_size, config.batch_length)
  return tools.random_batch(shape, actdim, seed)


def train_eagerly(agent, data):
  """One train step, not compiled: faster for a test of a step or two."""
  return agent._train_counted(
      {k: tf.convert_to_tensor(data[k]) for k in tools.EPISODE_KEYS})


def random_episode(length, actdim=2, seed=0):
  """An episode of `length` entries, the reset included."""
  batch = tools.random_batch((1, length), actdim, seed)
  return {k: v[0] for k, v in batch.items()}


def flags(**config):
  return [f'--{k}={v}' for k, v in config.items()]


def run_script(script, *args, timeout=600, env=None):
  """Runs a script of the repository (or of tests/) as a user would."""
  environ = dict(os.environ, **(env or {}))
  return subprocess.run(
      [sys.executable, str(ROOT / script), *args], capture_output=True,
      text=True, timeout=timeout, cwd=ROOT, env=environ)


def read_metrics(logdir, name='metrics.jsonl'):
  path = pathlib.Path(logdir) / name
  return [json.loads(line) for line in path.read_text().splitlines()]


def assert_trained(process, logdir):
  """A run that ended well, with test returns and finite model losses."""
  assert process.returncode == 0, process.stderr[-3000:]
  metrics = read_metrics(logdir)
  assert any('test/return' in m for m in metrics)
  losses = [m['model_loss'] for m in metrics if 'model_loss' in m]
  assert losses and np.all(np.isfinite(losses))
  return metrics


def last_line(process):
  return process.stderr.strip().splitlines()[-1]
