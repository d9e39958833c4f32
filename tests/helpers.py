"""Tiny configurations, agents and batches for tests."""

import os
import pathlib
import subprocess
import sys

import tools  # Sets TensorFlow's import flags; must precede the TensorFlow import.

import numpy as np

import dreamer
import wrappers

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'runs'))
import benchmark  # noqa: E402  (synthetic batches)

# Every size a few units: tests prove wiring and maths, benchmarks measure speed.
TINY = dict(
    task='dmc_cartpole_balance', time_limit=40, prefill=80, steps=160, eval_every=80,
    log_every=40, train_every=40, train_steps=2, pretrain=2, batch_size=3, batch_length=8,
    cnn_depth=2, deter_size=8, stoch_size=4, num_units=8, horizon=4, precision=32,
    jit=False)


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
  return agent_class(config, config.logdir / 'episodes', actspace, logger, strategy)


def random_batch(config, actdim=2, seed=0):
  return benchmark.random_batch(config, actdim, seed)


def random_episode(length, actdim=2, seed=0):
  """An episode of `length` entries, the reset included."""
  random = np.random.RandomState(seed)
  return dict(
      image=random.randint(0, 255, (length, 64, 64, 3)).astype(np.uint8),
      action=random.uniform(-1, 1, (length, actdim)).astype(np.float32),
      reward=random.uniform(0, 1, length).astype(np.float32),
      discount=np.ones(length, np.float32))


def flags(**config):
  return [f'--{k}={v}' for k, v in config.items()]


def run_script(script, *args, timeout=600, env=None):
  """Runs a training script of the repository; returns the completed process."""
  environ = dict(os.environ, **(env or {}))
  return subprocess.run(
      [sys.executable, str(ROOT / script), *args], capture_output=True, text=True,
      timeout=timeout, cwd=ROOT, env=environ)


def read_metrics(logdir):
  import json
  path = pathlib.Path(logdir) / 'metrics.jsonl'
  return [json.loads(line) for line in path.read_text().splitlines()]
