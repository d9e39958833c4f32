"""Returns of the uniform random policy, as a baseline for runs/plot.py.

  python runs/random_baseline.py --task dmc_walker_stand --episodes 10 --action_repeat 4 \
      --logdir runs/logdir/cpu_check/walker_stand/random

Runs the environment stack of training (action repeat, time limit, seeds of the evaluation
environments) and writes each episode's return as `<logdir>/<episode>/metrics.jsonl` with
`test/return` at step 0: plot.py draws it as a horizontal band, n = episodes.
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
  args = parser.parse_args()
  random = np.random.RandomState(args.seed)
  returns = []
  for index in range(args.episodes):
    seed = wrappers.env_seed(args.seed, 'test', index)  # As dreamer.make_env's.
    env = wrappers.make_dmc(args.task[len('dmc_'):], args.action_repeat, args.time_limit, seed)
    env.reset()
    done, total = False, 0.0
    while not done:
      _, reward, done, _ = env.step(env.action_space.sample(random))
      total += reward
    env.close()
    returns.append(float(total))
    run = args.logdir / str(index)
    run.mkdir(parents=True, exist_ok=True)
    (run / 'metrics.jsonl').write_text(json.dumps({'step': 0, 'test/return': returns[-1]}) + '\n')
    print(f'Episode {index}: return {total:.1f}', flush=True)
  print(f'Random policy on {args.task}: {np.mean(returns):.1f} ± {np.std(returns):.1f} '
        f'over {len(returns)} episodes')


if __name__ == '__main__':
  main()
