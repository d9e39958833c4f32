"""Final test return of a finished run: its checkpoint's policy over several episodes.

  python runs/evaluate.py bird --episodes 10 --task dmc_walker_stand \
      --logdir runs/logdir/cpu_check/walker_stand/bird/0 [the run's other flags]

Pass the flags the run was trained with: the networks are built from them before the
checkpoint is loaded (a mismatch fails with the first differing variable). Each episode is
appended to the run's metrics.jsonl as `test/return` at the checkpoint's step, marked
`final: 1`, so `plot.py --last N` averages these N episodes. A run evaluated at its step
before is left alone. The episodes are seeded apart from the run's own environments.

One evaluation episode during training is a noisy estimate of a policy; the random baseline
averages 10 episodes, so the final return is compared over as many.
"""

import argparse
import functools
import json
import pathlib
import pickle
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import tools  # noqa: E402  (sets TensorFlow's import flags first)
import bird  # noqa: E402
import dreamer  # noqa: E402
import idm  # noqa: E402
import wrappers  # noqa: E402

import numpy as np  # noqa: E402

# method: (define_config, agent class, adjust, flags); as runs/common.sh's method_script.
METHODS = {
    'dreamer': (dreamer.define_config, dreamer.Dreamer, None, []),
    'bird': (bird.define_config, bird.BIRD, bird.adjust_config, []),
    'softbird': (bird.define_config, bird.SoftBIRD, bird.adjust_config, ['--soft', 'True']),
    'idm': (idm.define_config, idm.IDM, None, []),
    'idm_imagined': (idm.define_config, idm.IDM, None, ['--evaluator_negatives', 'imagined']),
}


def checkpoint_step(checkpoint):
  try:
    with checkpoint.open('rb') as f:
      return int(pickle.load(f)['_step'])
  except FileNotFoundError:
    raise tools.CheckpointError(f'no checkpoint {checkpoint}: train the run first') from None
  except Exception as e:  # A torn or foreign file; the agent's load names the problem too.
    raise tools.CheckpointError(f'cannot read {checkpoint}: {e}') from None


def evaluated(metrics, step):
  """Whether metrics.jsonl holds a final evaluation at `step` or later."""
  if not metrics.exists():
    return False
  for line in metrics.read_text().splitlines():
    try:
      entry = json.loads(line)
    except json.JSONDecodeError:
      continue
    if entry.get('final') and entry['step'] >= step:
      return True
  return False


def evaluate(config, agent_class, logger, episodes):
  """[(return, length)] of the checkpoint's policy, acting without noise or training."""
  dreamer.setup(config)
  _, task = config.task.split('_', 1)
  seed = wrappers.env_seed(config.seed, 'final')
  results = []
  record = lambda ep: results.append((float(ep['reward'].sum()), len(ep['reward']) - 1))
  env = wrappers.Collect(wrappers.Async(functools.partial(
      wrappers.make_dmc, task, config.action_repeat, config.time_limit, seed), 'none'), [record])
  try:
    agent = agent_class(config, config.logdir / 'episodes', env.action_space, logger)
    agent.load(config.logdir / 'variables.pkl')
    tools.simulate(functools.partial(agent, training=False), [env], episodes=episodes)
  finally:
    env.close()
  return results


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('method', choices=sorted(METHODS))
  parser.add_argument('--episodes', type=int, default=10)
  args, rest = parser.parse_known_args(argv)
  if args.episodes < 1:
    parser.error(f'--episodes must be positive, got {args.episodes}')
  define_config, agent_class, adjust, extra = METHODS[args.method]
  config = dreamer.parse_flags(define_config(), extra + rest, adjust=adjust)
  config.logdir = pathlib.Path(config.logdir).expanduser()
  try:
    step = checkpoint_step(config.logdir / 'variables.pkl')
    if evaluated(config.logdir / 'metrics.jsonl', step):
      print(f'{config.logdir} was evaluated at step {step} before; left alone.')
      return
    logger = tools.Logger(config.logdir, config.steps)
    results = evaluate(config, agent_class, logger, args.episodes)
  except tools.RunError as e:
    sys.exit(f'evaluate.py: error: {e}')
  for ret, length in results:
    logger.write(step, {'test/return': ret, 'test/length': length, 'final': 1}, 'final')
  logger.flush()
  returns = np.array([ret for ret, _ in results])
  print(f'{args.method} at step {step}: test return {returns.mean():.1f} ± {returns.std():.1f} '
        f'over {len(returns)} episodes ({", ".join(f"{r:.1f}" for r in returns)})')


if __name__ == '__main__':
  main()
