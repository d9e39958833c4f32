"""What a run's discount predictor (`--pcont True`) learned: its predicted
continuation at the steps where episodes terminated, beside the others.

  python runs/continuation.py runs/logdir/gym_pcont/gym_CartPole-v1/*/0 \
      --output runs/results/gym_pcont_continuation

Each run's stored training episodes (its replay; the newest --episodes of
them) go through its world model at its checkpoint: the posterior states
from the recorded frames and actions, and the discount predictor's mean at
every step. Steps are grouped as the environment ended them: terminal
(discount 0, Gymnasium's `terminated`: the target is 0), the last step of
an episode cut by a time limit (discount 1: the target is --discount), and
every other step (the target is --discount); per group the mean, the 5th
and 95th percentiles and the share below 0.5 (predicted to end). A run
without the predictor (`--pcont False`) discounts every imagined step by
--discount: its line says so. Writes `<output>.md` and `<output>.json`.
"""

import argparse
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / 'runs')]
import tools  # noqa: E402  (sets TensorFlow's import flags first)
import dreamer  # noqa: E402
import evaluate  # noqa: E402
import predictions  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

GROUPS = ('terminal', 'time limit', 'other')


def continuation(agent, episode):
  """The discount predictor's mean at each step of one episode."""
  data = {k: tf.convert_to_tensor(v[None]) for k, v in episode.items()
          if k in tools.EPISODE_KEYS}
  data = dreamer.preprocess(data, agent._c)
  post, _ = agent._dynamics.observe(agent._encode(data), data['action'])
  feat = agent._dynamics.get_feat(post)
  return agent._pcont(feat).mean().numpy()[0]


def groups(episode):
  """Each step's group: how the environment ended it, if it did."""
  names = np.full(len(episode['discount']), 'other', object)
  names[0] = None  # The reset: no transition led to it.
  # Episodes are stored when done: terminated, or cut by the time limit
  # (or by a stop, whose unfinished episode is kept).
  names[-1] = 'terminal' if episode['discount'][-1] == 0 else 'time limit'
  return names


def measure(logdir, count):
  _, config = evaluate.load_record(logdir, dict(precision=None, jit=None))
  result = dict(
      logdir=str(logdir), task=config.task, pcont=bool(config.pcont),
      discount=config.discount)
  if not config.pcont:
    return result
  env = dreamer.make_ctor(config, 0)()
  actspace = env.action_space
  env.close()
  agent, _ = predictions.load_agent(logdir, actspace)
  files = tools.episode_files(logdir / 'episodes')[-count:]
  values = {name: [] for name in GROUPS}
  for filename in files:
    episode = tools.load_episode(filename)
    predicted = continuation(agent, episode)
    for name, value in zip(groups(episode), predicted):
      if name:
        values[name].append(float(value))
  result.update(
      step=tools.checkpoint_step(logdir / 'variables.pkl'),
      episodes=len(files), groups={
          name: dict(
              n=len(v), mean=float(np.mean(v)) if v else None,
              low=float(np.percentile(v, 5)) if v else None,
              high=float(np.percentile(v, 95)) if v else None,
              below=float(np.mean(np.array(v) < 0.5)) if v else None)
          for name, v in values.items()})
  return result


def table(results):
  lines = [
      '| run | task | step | episodes | ' + ' | '.join(
          f'{name}: mean [5%, 95%], share < 0.5 (steps)' for name in GROUPS) +
      ' |',
      '| --- ' * (4 + len(GROUPS)) + '|']
  for result in results:
    name = '/'.join(pathlib.Path(result['logdir']).parts[-2:])
    if not result['pcont']:
      lines.append(
          f'| {name} | {result["task"]} | | | no predictor (`--pcont False`): '
          f'every imagined step continues with {result["discount"]:g} | | |')
      continue
    cells = []
    for group in GROUPS:
      entry = result['groups'][group]
      cells.append(
          f'{entry["mean"]:.3f} [{entry["low"]:.3f}, {entry["high"]:.3f}], '
          f'{entry["below"]:.2f} ({entry["n"]})' if entry['n'] else '(0)')
    lines.append(
        f'| {name} | {result["task"]} | {result["step"]} | '
        f'{result["episodes"]} | ' + ' | '.join(cells) + ' |')
  lines += [
      '', 'The predictor\'s targets: 0 at terminal steps, --discount (0.99) '
      'elsewhere, a time limit\'s last step included.', '']
  return '\n'.join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('logdirs', type=pathlib.Path, nargs='+')
  parser.add_argument('--output', type=pathlib.Path, required=True)
  parser.add_argument(
      '--episodes', type=int, default=200,
      help='the newest stored episodes of each run to score')
  args = parser.parse_args(argv)
  if args.episodes < 1:
    parser.error(f'--episodes must be positive, got {args.episodes}')
  try:
    results = [measure(logdir, args.episodes) for logdir in args.logdirs]
  except (tools.RunError, ValueError) as e:
    sys.exit(f'continuation.py: error: {e}')
  text = table(results)
  args.output.parent.mkdir(parents=True, exist_ok=True)
  args.output.with_suffix('.md').write_text(text)
  args.output.with_suffix('.json').write_text(
      json.dumps(results, indent=1) + '\n')
  print(text, end='')
  print(f'Wrote {args.output}.md and .json')


if __name__ == '__main__':
  main()
