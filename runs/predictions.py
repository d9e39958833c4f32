"""BIRD's Figure 3 (§5.4): the models' predictions around a key action.

  python runs/predictions.py \
      runs/logdir/bird_figure2/hopper_hop/{dreamer,bird}/0 \
      --output runs/results/bird_figure3_hopper_hop

Takes two or more finished runs of one task. Collects one test episode with
the first run's policy (no noise, seeded by --seed, as a final evaluation),
and replays it through every run's model as the `agent/openl` summaries do:
5 context frames observed, then open-loop prediction from the recorded
actions. The frames shown are those around the step where the reward
changes most (or --at STEP, an agent step of the episode). Writes a PNG:
the truth, then each run's prediction, then each run's error, one column per
frame, context frames marked; and the mean absolute error per run.
"""

import argparse
import functools
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / 'runs')]
import tools  # noqa: E402  (sets TensorFlow's import flags first)
import dreamer  # noqa: E402
import evaluate  # noqa: E402
import wrappers  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

CONTEXT = 5  # As the agent's openl summaries.


def load_agent(logdir, actspace):
  """The run's agent at its checkpoint, built from its record."""
  agent_class, config = evaluate.load_record(
      logdir, dict(precision=None, jit=None))
  dreamer.setup(config)
  logger = tools.Logger(logdir, config.steps)
  agent = agent_class(config, logdir / 'episodes', actspace, logger)
  checkpoint = logdir / 'variables.pkl'
  if not checkpoint.exists():
    raise tools.CheckpointError(f'no checkpoint {checkpoint}')
  agent.load(checkpoint)
  return agent, config


def collect(agent, config, seed, noise=0.0):
  """One episode of the agent's policy, with exploration noise `noise`."""
  _, task = config.task.split('_', 1)
  env_seed = wrappers.env_seed(seed, 'final')
  episodes = []
  ctor = functools.partial(
      wrappers.make_dmc, task, config.action_repeat, config.time_limit,
      env_seed)
  env = wrappers.Collect(wrappers.Async(ctor, 'none'), [episodes.append])
  agent._c.eval_noise = noise
  try:
    policy = functools.partial(agent, training=False)
    tools.simulate(policy, [env], episodes=1)
  finally:
    env.close()
  return episodes[0]


def key_step(reward, at, length):
  """The first step of the window: around `at`, or around the largest
  change of reward."""
  if at is None:
    at = int(np.argmax(np.abs(np.diff(reward)))) + 1
  start = at - CONTEXT - length // 2
  return int(np.clip(start, 0, len(reward) - CONTEXT - length)), at


def predict(agent, episode, start, length):
  """Truth and model frames in [0, 1], (context + length, 64, 64, 3)."""
  window = {
      k: v[None, start:start + CONTEXT + length]
      for k, v in episode.items() if k in tools.EPISODE_KEYS}
  video = agent._openl_fn(
      {k: tf.convert_to_tensor(v) for k, v in window.items()}).numpy()
  truth, model, _ = np.split(video[0], 3, axis=1)  # Rows stacked in height.
  return truth, model


def image_grid(rows, titles, filename, title=None):
  """A PNG of labelled rows of images in [0, 1], one column per title."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(
      len(rows), len(titles), figsize=(1.1 * len(titles), 1.2 * len(rows)),
      squeeze=False)
  for row, (label, images) in enumerate(rows):
    for column, image in enumerate(images):
      ax = axes[row, column]
      ax.imshow(np.clip(image, 0, 1))
      ax.set_xticks([])
      ax.set_yticks([])
      if column == 0:
        ax.set_ylabel(label, fontsize=7, rotation=0, ha='right', va='center')
      if row == 0:
        ax.set_title(titles[column], fontsize=6)
  if title:
    fig.suptitle(title, fontsize=8)
  fig.tight_layout()
  fig.savefig(filename, dpi=100)
  plt.close(fig)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('logdirs', type=pathlib.Path, nargs='+')
  parser.add_argument('--output', type=pathlib.Path, required=True)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--at', type=int, help='agent step of the key action')
  parser.add_argument(
      '--length', type=int, default=10, help='frames predicted')
  args = parser.parse_args(argv)
  if len(args.logdirs) < 2:
    parser.error('give two or more runs to compare')
  try:
    runs = []
    for logdir in args.logdirs:
      _, config = evaluate.load_record(logdir, dict(precision=None, jit=None))
      runs.append((logdir, config))
    tasks = {config.task for _, config in runs}
    if len(tasks) != 1:
      raise tools.ConfigError(
          f'the runs are of several tasks: {sorted(tasks)}')
    env = wrappers.make_dmc(
        runs[0][1].task.split('_', 1)[1], runs[0][1].action_repeat, 40, 0)
    actspace = env.action_space
    env.close()
    agents = [(logdir, load_agent(logdir, actspace)) for logdir, _ in runs]
    first, config = agents[0][1]
    episode = collect(first, config, args.seed)
    if len(episode['reward']) < CONTEXT + args.length:
      raise tools.ConfigError(
          f'the episode has {len(episode["reward"])} steps, fewer than '
          f'{CONTEXT} context and {args.length} predicted frames')
    start, at = key_step(episode['reward'], args.at, args.length)
    predictions, truth = {}, None
    for logdir, (agent, _) in agents:
      name = '/'.join(logdir.parts[-2:])  # <method>/<seed>
      truth, predictions[name] = predict(agent, episode, start, args.length)
  except tools.RunError as e:
    sys.exit(f'predictions.py: error: {e}')
  names = list(predictions)
  rows = [('truth', truth)] + [(name, predictions[name]) for name in names]
  rows += [
      (f'{name} error', np.abs(predictions[name] - truth)) for name in names]
  titles = [
      f'{step}{" ctx" if step < start + CONTEXT else ""}'
      f'{" *" if step == at else ""}'
      for step in range(start, start + len(truth))]
  args.output.parent.mkdir(parents=True, exist_ok=True)
  image_grid(
      rows, titles, args.output.with_suffix('.png'),
      f'{CONTEXT} context frames (ctx), then open-loop prediction; '
      f'* the key step {at}')
  for name, frames in predictions.items():
    error = np.abs(frames[CONTEXT:] - truth[CONTEXT:]).mean()
    print(f'{name}: mean absolute error of the open-loop frames {error:.4f}')
  print(f'Frames {start} to {start + CONTEXT + args.length - 1}, key step '
        f'{at}; wrote {args.output.with_suffix(".png")}')


if __name__ == '__main__':
  main()
