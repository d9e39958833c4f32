"""The final test return of a run: its checkpoint's policy over N episodes.

  python runs/evaluate.py LOGDIR --episodes 10 [--precision 32] [--jit False]

Builds the agent from the run's own record (LOGDIR/config.json: the agent
class and every config key), so no training flag is repeated; only the
hardware keys (precision, jit) may be given, by default this machine's. The
episodes go to LOGDIR/final.jsonl, one line each ({step, return, length,
episode}), apart from the training curve in metrics.jsonl; plot.py reports
them beside it. A run evaluated at its checkpoint's step before is left
alone. The environments are seeded apart from the run's own.

One evaluation episode during training is a noisy estimate of a policy; the
random baseline averages 10 episodes, so the final return is compared over
as many.
"""

import argparse
import functools
import importlib
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import tools  # noqa: E402  (sets TensorFlow's import flags first)
import dreamer  # noqa: E402
import wrappers  # noqa: E402

import numpy as np  # noqa: E402

HARDWARE = ('precision', 'jit')


def load_record(logdir, overrides):
  """The run's agent class and config, with the hardware keys overridden."""
  path = logdir / 'config.json'
  try:
    record = json.loads(path.read_text())
    module, name = record['agent'].rsplit('.', 1)
    agent_class = getattr(importlib.import_module(module), name)
    values = record['config']
  except FileNotFoundError:
    raise tools.ConfigError(
        f'{path} does not exist: {logdir} is no run of this version '
        '(train it first)') from None
  except (ValueError, KeyError, TypeError, ImportError, AttributeError) as e:
    raise tools.ConfigError(f'{path} is not a readable record ({e})') from e
  config = tools.AttrDict(values)
  config.logdir = logdir
  defaults = dreamer.define_config()
  for key in HARDWARE:
    config[key] = defaults[key] if overrides[key] is None else overrides[key]
  return agent_class, config


def evaluated(path, step):
  """Whether final.jsonl holds an evaluation at `step` or later."""
  if not path.exists():
    return False
  for line in path.read_text().splitlines():
    try:
      if json.loads(line)['step'] >= step:
        return True
    except (ValueError, KeyError, TypeError):
      continue
  return False


def evaluate(config, agent_class, episodes):
  """[(return, length)] of the checkpoint's policy, without noise."""
  dreamer.setup(config)
  _, task = config.task.split('_', 1)
  seed = wrappers.env_seed(config.seed, 'final')
  results = []
  record = lambda ep: results.append(
      (float(ep['reward'].sum()), len(ep['reward']) - 1))
  ctor = functools.partial(
      wrappers.make_dmc, task, config.action_repeat, config.time_limit, seed)
  env = wrappers.Collect(wrappers.Async(ctor, 'none'), [record])
  try:
    logger = tools.Logger(config.logdir, config.steps)
    agent = agent_class(
        config, config.logdir / 'episodes', env.action_space, logger)
    agent.load(config.logdir / 'variables.pkl')
    total = episodes * config.time_limit
    with tools.Progress('Final evaluation', total, 'env steps') as progress:
      policy = functools.partial(agent, training=False)
      policy = dreamer.counting(policy, progress, config.action_repeat)
      tools.simulate(policy, [env], episodes=episodes)
  finally:
    env.close()
  return results


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('logdir', type=pathlib.Path)
  parser.add_argument('--episodes', type=int, default=10)
  parser.add_argument(
      '--precision', choices=[16, 32, 'bf16'],
      type=lambda x: int(x) if x in ('16', '32') else x)
  parser.add_argument('--jit', type=tools.args_type(True))
  args = parser.parse_args(argv)
  if args.episodes < 1:
    parser.error(f'--episodes must be positive, got {args.episodes}')
  logdir = args.logdir.expanduser()
  final = logdir / 'final.jsonl'
  try:
    agent_class, config = load_record(logdir, vars(args))
    tools.lock(logdir)  # Held until the exit.
    step = tools.checkpoint_step(logdir / 'variables.pkl')
    if step is None:
      raise tools.CheckpointError(
          f'no checkpoint {logdir / "variables.pkl"}: train the run first')
    if evaluated(final, step):
      print(f'{logdir} was evaluated at step {step} before; left alone.')
      return
    results = evaluate(config, agent_class, args.episodes)
    for episode, (ret, length) in enumerate(results):
      line = dict(step=step, episode=episode, length=length, **{
          'return': ret})
      tools.append_line(final, json.dumps(line))
  except tools.RunError as e:
    sys.exit(f'evaluate.py: error: {e}')
  returns = np.array([ret for ret, _ in results])
  print(f'{logdir} at step {step}: final return {returns.mean():.1f} ± '
        f'{returns.std():.1f} over {len(returns)} episodes '
        f'({", ".join(f"{r:.1f}" for r in returns)})')


if __name__ == '__main__':
  main()
