"""What a run's actor does, and what its world model says other actions earn.

  python runs/actor_probe.py LOGDIR
  python runs/actor_probe.py LOGDIR --actions -1 0 1 --json probe.json

For a run whose test returns sit at the floor, this tells a saturated actor
from a model that sees no better action. It loads the run's checkpoint and
config (as runs/evaluate.py does: only --precision and --jit may be given),
takes --batch windows of --length steps from the run's stored episodes
(seeded by --seed), and prints:

- the replay: episodes, steps, the share of steps with a reward above 0;
- the actor at the posterior states of those windows: its tanh-normal's
  pre-tanh mean (the share above 0 and the share at its bound, within 1% of
  mean_scale) and standard deviation (median, 90th percentile; its floor is
  min_std). A mean at the bound and a standard deviation at the floor are a
  deterministic push whose gradient tanh has all but cut;
- the world model's mean lambda-return (Eq. 6, the actor's objective) of
  trajectories imagined from the same states for `horizon` steps, under the
  actor and under each constant action in --actions (every dimension set to
  it), all with the same draws of the model's noise, and the slope of that
  return in the constant: the direction the model's gradient would move an
  actor that took that action.

The model's returns are its own predictions, not the environment's: they
show what the actor's objective rewards, not what the task does.
"""

import argparse
import functools
import json
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'runs'))
import tools  # noqa: E402  (sets TensorFlow's import flags first)
import dreamer  # noqa: E402
import evaluate  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

PROG = 'actor_probe.py'


def windows(directory, batch, length, seed):
  """`batch` windows of `length` steps from the stored episodes, each from a
  random episode long enough, at a random start; and the episodes' rewards.
  Only the chosen episodes' images are read."""
  load = functools.lru_cache(None)(
      lambda filename: tools.load_episode(filename, tools.EPISODE_KEYS))
  rewards, long_enough = [], []
  for filename in tools.episode_files(directory):
    try:
      rewards.append(tools.load_episode(filename, ['reward'])['reward'])
    except ValueError as e:
      print(f'Skipped an episode: {e}', file=sys.stderr)
      continue
    if len(rewards[-1]) >= length:
      long_enough.append(filename)
  if not long_enough:
    raise tools.ConfigError(
        f'{directory} holds no episode of {length} steps (--length)')
  random = np.random.RandomState(seed)
  chosen = {key: [] for key in tools.EPISODE_KEYS}
  for _ in range(batch):
    episode = load(long_enough[random.randint(len(long_enough))])
    start = random.randint(len(episode['reward']) - length + 1)
    for key in chosen:
      chosen[key].append(episode[key][start: start + length])
  return {k: np.stack(v) for k, v in chosen.items()}, rewards


def imagined_return(agent, start, act, seed):
  """The mean lambda-return of trajectories imagined from `start`, the
  action at step t `act(state, t)`. The model's noise is drawn from `seed`
  alike for every `act`: the returns differ by the actions alone."""
  tf.random.set_seed(seed)
  def step(prev, t):
    return agent._dynamics.img_step(prev, act(prev, t))
  states = tools.static_scan(step, tf.range(agent._c.horizon), start)
  returns, _ = agent._returns(dict(feat=agent._dynamics.get_feat(states)))
  return tf.reduce_mean(returns)


def probe(agent, data, actions, seed):
  data = dreamer.preprocess(data, agent._c)
  embed = agent._encode(data)
  post, _ = agent._dynamics.observe(embed, tf.constant(data['action']))
  feat = agent._dynamics.get_feat(post)
  normal = agent._actor(feat)._dist.distribution.distribution
  mean, std = normal.loc.numpy().ravel(), normal.scale.numpy().ravel()
  bound = 0.99 * agent._actor._mean_scale
  flatten = lambda x: tf.reshape(x, [-1] + list(x.shape[2:]))
  start = {k: flatten(v) for k, v in post.items()}
  # The actor's samples statelessly, apart from the model's noise.
  policy = lambda state, t: agent._actor(agent._dynamics.get_feat(
      state)).sample(seed=tf.stack([seed + 1, t]))
  result = dict(
      mean_above_0=float((mean > 0).mean()),
      mean_at_bound=float((np.abs(mean) >= bound).mean()),
      std_median=float(np.median(std)),
      std_p90=float(np.percentile(std, 90)),
      min_std=agent._actor._min_std,
      actor_return=float(imagined_return(agent, start, policy, seed)),
      constant={})
  shape = [start['deter'].shape[0], agent._actdim]
  for value in actions:
    offset = tf.zeros([])
    with tf.GradientTape() as tape:
      tape.watch(offset)
      act = lambda state, t: tf.fill(shape, value + offset)
      value_return = imagined_return(agent, start, act, seed)
    slope = tape.gradient(value_return, offset)
    result['constant'][value] = dict(
        return_=float(value_return), slope=float(slope))
  return result


def report(step, rewards, result):
  steps = sum(len(r) for r in rewards)
  rewarded = sum(int((r > 0).sum()) for r in rewards)
  lines = [
      f'Checkpoint at {step} env steps.',
      f'Replay: {len(rewards)} episodes, {steps} steps, '
      f'{rewarded / max(steps, 1):.2%} of them rewarded.',
      f"Actor's pre-tanh mean: {result['mean_above_0']:.0%} above 0, "
      f"{result['mean_at_bound']:.0%} at its bound.",
      f"Actor's std: median {result['std_median']:.2g}, 90th percentile "
      f"{result['std_p90']:.2g} (floor {result['min_std']:.2g}).",
      'Imagined lambda-return (the actor\'s objective) from those states:',
      f"  the actor:        {result['actor_return']:.4f}"]
  for value, entry in result['constant'].items():
    lines.append(
        f"  action {value:+.2f} always: {entry['return_']:.4f}, slope "
        f"{entry['slope']:+.4f}")
  return '\n'.join(lines)


def parse_args(argv):
  parser = argparse.ArgumentParser(
      prog=PROG, description=__doc__.split('\n\n')[0],
      formatter_class=evaluate.HelpFormatter)
  parser.add_argument('logdir', type=pathlib.Path, help='a run of this code')
  parser.add_argument(
      '--batch', type=int, default=50, help='windows of the replay')
  parser.add_argument(
      '--length', type=int, default=50, help='steps of each window')
  parser.add_argument(
      '--actions', type=float, nargs='+', default=[-1.0, -0.5, 0.0, 0.5, 1.0],
      help='the constant actions imagined')
  parser.add_argument(
      '--seed', type=int, default=0,
      help="the windows' and the imagined noise's")
  parser.add_argument(
      '--json', type=pathlib.Path, help='also write the numbers to this file')
  evaluate.add_hardware_flags(parser)
  args = parser.parse_args(argv)
  for key in ('batch', 'length'):
    if getattr(args, key) <= 0:
      parser.error(f'--{key} must be positive, got {getattr(args, key)}')
  return args


def main(argv=None):
  args = parse_args(argv)
  try:
    agent_class, config = evaluate.load_record(
        args.logdir, dict(precision=args.precision, jit=args.jit))
    if config.action_dist != 'tanh_normal':
      raise tools.ConfigError(
          f'the run\'s actor is {config.action_dist}; the probe reads a '
          'tanh_normal actor')
    checkpoint = args.logdir / 'variables.pkl'
    step = tools.checkpoint_step(checkpoint)
    if step is None:
      raise tools.CheckpointError(f'{checkpoint} does not exist')
    data, rewards = windows(
        args.logdir / 'episodes', args.batch, args.length, args.seed)
    dreamer.setup(config)
    # Writes nothing to the run, which may be training.
    with tempfile.TemporaryDirectory() as scratch:
      agent = agent_class(
          config, args.logdir / 'episodes', evaluate.action_space(config),
          tools.Logger(scratch, config.steps))
    agent.load(checkpoint)
  except tools.RunError as e:
    sys.exit(f'{PROG}: error: {e}')
  result = probe(agent, data, args.actions, args.seed)
  print(report(step, rewards, result))
  if args.json:
    result['step'] = step
    args.json.write_text(json.dumps(result, indent=1) + '\n')


if __name__ == '__main__':
  main()
