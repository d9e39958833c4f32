"""Golden outputs: the first train steps of every agent stay as recorded.

A refactor keeps them equal on the CPU; a deliberate change of numerics
regenerates them in a commit of its own that says why:

  python -m pytest tests/test_golden.py --update-golden   # rewrites golden.json
"""

import json
import pathlib

import numpy as np
import pytest
from tensorflow.python.framework import config as tf_config

import bird
import dreamer
import idm
from helpers import make_agent, random_batch, tiny_config

FIXTURE = pathlib.Path(__file__).with_name('golden.json')
STEPS = 3

# name: module, agent class, overrides of the tiny config.
CASES = {
    'dreamer': (dreamer, dreamer.Dreamer, {}),
    'bird': (bird, bird.BIRD, dict(deter_size=8, stoch_size=4)),
    'softbird': (bird, bird.SoftBIRD, dict(
        deter_size=8, stoch_size=4, soft=True, ent_alpha=0.2)),
    'idm': (idm, idm.IDM, dict(evaluator_units=16)),
    'idm_imagined': (idm, idm.IDM, dict(
        evaluator_units=16, evaluator_negatives='imagined')),
}


def recorded(key):
  return 'loss' in key or key.endswith('grad_norm')


def first_steps(name, logdir):
  """Losses and gradient norms of the first train steps on one fixed batch."""
  module, agent_class, overrides = CASES[name]
  config = tiny_config(logdir, module, seed=0, deterministic=True, **overrides)
  try:
    agent = make_agent(config, agent_class)
    batch = random_batch(config, seed=0)
    steps = []
    for _ in range(STEPS):
      metrics = agent.train(batch)
      steps.append({
          k: float(v) for k, v in sorted(metrics.items()) if recorded(k)})
    return steps
  finally:
    tf_config.disable_op_determinism()


@pytest.mark.parametrize('name', sorted(CASES))
def test_first_train_steps_match_the_recording(request, tmp_path, name):
  actual = first_steps(name, tmp_path)
  golden = json.loads(FIXTURE.read_text()) if FIXTURE.exists() else {}
  if request.config.getoption('--update-golden'):
    golden[name] = actual
    FIXTURE.write_text(json.dumps(golden, indent=1, sort_keys=True) + '\n')
    return
  expected = golden[name]
  assert len(actual) == len(expected) == STEPS
  for step, (want, got) in enumerate(zip(expected, actual)):
    assert sorted(got) == sorted(want), step
    for key in want:
      np.testing.assert_allclose(
          got[key], want[key], rtol=1e-6, atol=1e-9,
          err_msg=f'{name}, step {step}, {key}')
