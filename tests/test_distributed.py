"""Data-parallel training on two logical CPU devices matches one device."""

import json
import subprocess
import sys

import numpy as np
import pytest

from helpers import TESTS


def run(agent, jit=False, **overrides):
  process = subprocess.run(
      [sys.executable, str(TESTS / 'child_distributed.py'), agent, str(jit),
       json.dumps(overrides)], capture_output=True, text=True, timeout=900)
  assert process.returncode == 0, process.stderr[-4000:]
  line = [
      l for l in process.stdout.splitlines() if l.startswith('RESULTS ')][-1]
  return json.loads(line[len('RESULTS '):])


LOSSES = [
    'model_loss', 'image_loss', 'reward_loss', 'div', 'actor_loss',
    'value_loss', 'model_grad_norm', 'actor_grad_norm', 'value_grad_norm']


@pytest.mark.slow
@pytest.mark.parametrize('agent, jit, overrides, extra', [
    # The KL clamp is decided on the whole batch, between its halves' KLs.
    ('dreamer', False, dict(free_nats='straddle'), []),
    ('bird', False, dict(deter_size=8, stoch_size=4), [
        'weight_mean', 'weight_std']),
    ('idm', False, dict(evaluator_units=16), [
        'constraint_loss', 'evaluator_loss', 'weight_std', 'return_original']),
    # Under XLA each device computes its own batch statistics: no clamp to
    # disagree on.
    ('dreamer', True, dict(free_nats=0.0), []),
])
def test_two_devices_match_one(agent, jit, overrides, extra):
  results = run(agent, jit, **overrides)
  np.testing.assert_allclose(results['batch_mean'], [2.5, 2.5])
  if 'kl' in results:
    kl = results['kl']
    low, whole = min(kl['halves']), kl['whole']
    assert low < (low + whole) / 2 < whole
    np.testing.assert_allclose(results['1'][0]['div'], whole, rtol=1e-5)
  tolerance = 2e-3 if jit else 2e-4
  for one, two in zip(results['1'], results['2']):
    for key in LOSSES + extra:
      np.testing.assert_allclose(
          two[key], one[key], rtol=tolerance, atol=1e-5, err_msg=key)
    assert one['skipped_updates'] == two['skipped_updates'] == 0
