"""The returns of uniform random actions: a baseline run for plot.py.

  python runs/random_baseline.py --task dmc_walker_stand --episodes 10 \
      --action_repeat 4 --logdir runs/logdir/cpu_check/walker_stand/random/0

--constant A takes action A in every dimension at every step instead, the
policy of an actor saturated to one side (a Control Suite task's actions lie
in [-1, 1]); its run is recorded as agent `constant`.

Runs the environments of training (action repeat, time limit) seeded as a
run's final evaluation, and stores the run like runs/evaluate.py stores one:
each episode as a line of LOGDIR/final.jsonl at step 0, and the settings in
LOGDIR/config.json. plot.py draws it as a horizontal band over the episodes.
"""

import argparse
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import wrappers  # noqa: E402  (no TensorFlow needed)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--task', required=True)
  parser.add_argument('--episodes', type=int, default=10)
  parser.add_argument('--logdir', type=pathlib.Path, required=True)
  parser.add_argument('--action_repeat', type=int, default=2)
  parser.add_argument('--time_limit', type=int, default=1000)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--constant', type=float, default=None)
  args = parser.parse_args()
  agent = 'random' if args.constant is None else 'constant'
  final = args.logdir / 'final.jsonl'
  if final.exists():
    print(f'{args.logdir} holds a baseline already; left alone.')
    return
  args.logdir.mkdir(parents=True, exist_ok=True)
  random = np.random.RandomState(args.seed)
  seed = wrappers.env_seed(args.seed, 'final')
  env = wrappers.make_dmc(
      args.task[len('dmc_'):], args.action_repeat, args.time_limit, seed)
  lines = []
  if args.constant is not None:
    low, high = env.action_space.low, env.action_space.high
    if not np.all((low <= args.constant) & (args.constant <= high)):
      sys.exit(f'random_baseline.py: error: --constant {args.constant} is '
               f'outside the action space [{low.min()}, {high.max()}]')
    constant = np.full(env.action_space.shape, args.constant, np.float32)
  for index in range(args.episodes):
    env.reset()
    done, total, length = False, 0.0, 0
    while not done:
      if args.constant is None:
        action = env.action_space.sample(random)
      else:
        action = constant
      _, reward, done, _ = env.step(action)
      total += float(reward)
      length += 1
    lines.append(json.dumps(
        {'step': 0, 'episode': index, 'length': length, 'return': total}))
    print(f'Episode {index}: return {total:.1f}', flush=True)
  env.close()
  settings = {k: str(v) if isinstance(v, pathlib.Path) else v
              for k, v in vars(args).items()}
  record = dict(agent=agent, config=settings, seed=args.seed)
  (args.logdir / 'config.json').write_text(json.dumps(record, indent=1) + '\n')
  final.write_text('\n'.join(lines) + '\n')
  returns = [json.loads(line)['return'] for line in lines]
  name = 'Random policy' if args.constant is None else (
      f'Constant action {args.constant:g}')
  print(f'{name} on {args.task}: {np.mean(returns):.1f} ± '
        f'{np.std(returns, ddof=min(1, len(returns) - 1)):.1f} over '
        f'{len(returns)} episodes')


if __name__ == '__main__':
  main()
