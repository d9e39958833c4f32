"""Evaluates and shows a trained run: its checkpoint's policy over N episodes.

  python runs/evaluate.py LOGDIR                 # 10 episodes: final.jsonl
  python runs/evaluate.py LOGDIR --video 2       # + LOGDIR/eval/*.mp4
  python runs/evaluate.py LOGDIR --openl --save_episodes

Builds the agent and its environment from the run's own record
(LOGDIR/config.json: the agent class and every config key), through the
factory training used (dreamer.make_ctor, every suite with its own wrappers
and defaults), so no training flag is repeated; only the hardware keys
(precision, jit) may be given, by default this machine's. The episodes go to
LOGDIR/final.jsonl, one line each ({step, return, length, episode}), apart
from the training curve in metrics.jsonl; plot.py reports them beside it. A
run evaluated at its checkpoint's step before is left alone, unless videos
or episodes are asked for. The environments are seeded apart from the run's
own.

What it writes under LOGDIR/eval/, each name starting with the checkpoint's
step:
  --video N        the first N episodes as the agent saw them, <step>-
                   episode<i>.mp4 (H.264; --format gif for GIFs)
  --openl          the world model's open-loop prediction of the first
                   episode, <step>-openl.mp4: rows truth, model, error (as
                   TensorBoard's agent/openl), 5 frames of context, then the
                   model alone from the episode's actions
  --save_episodes  the episodes in upstream's .npz format, episodes/<step>/;
                   outside the run's episodes/, so never replayed

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
  """The run's agent class and config, with the hardware keys overridden.
  Keys the record predates take their defaults."""
  path = logdir / 'config.json'
  try:
    record = json.loads(path.read_text())
    if record.get('agent') == 'upstream.Dreamer':
      raise tools.ConfigError(
          f"{logdir} is a run of upstream's code: evaluate it with "
          f'runs/upstream.py --evaluate N --logdir {logdir}')
    module, name = record['agent'].rsplit('.', 1)
    module = importlib.import_module(module)
    agent_class = getattr(module, name)
    values = record['config']
    config = getattr(module, 'define_config', dreamer.define_config)()
    config.update(values)
  except FileNotFoundError:
    raise tools.ConfigError(
        f'{path} does not exist: {logdir} is no run of this version '
        '(train it first)') from None
  except (ValueError, KeyError, TypeError, ImportError, AttributeError) as e:
    raise tools.ConfigError(f'{path} is not a readable record ({e})') from e
  config.logdir = logdir
  defaults = dreamer.define_config()
  for key in HARDWARE:
    config[key] = defaults[key] if overrides[key] is None else overrides[key]
  try:
    dreamer.check_config(config)
  except ValueError as e:
    raise tools.ConfigError(f'cannot evaluate {logdir}: {e}') from None
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


class Outputs:
  """Handles each evaluation episode as it ends: its return, its video, its
  file; keeps the first for the open-loop prediction."""

  def __init__(self, args, outdir, step):
    self._args = args
    self._outdir = outdir
    self._step = step
    self.results = []
    self.first = None

  def name(self, what):
    return f'{self._step}-{what}.{self._args.format}'

  def __call__(self, episode):
    index = len(self.results)
    self.results.append(
        (float(episode['reward'].sum()), len(episode['reward']) - 1))
    if index == 0 and self._args.openl:
      self.first = episode
    if index < self._args.video:
      self.write_video(self.name(f'episode{index}'), episode['image'])
    if self._args.save_episodes:
      tools.save_episodes(
          self._outdir / 'episodes' / str(self._step), [episode])

  def write_video(self, name, frames):
    scale = self._args.scale
    frames = frames.repeat(scale, 1).repeat(scale, 2)
    self._outdir.mkdir(parents=True, exist_ok=True)
    try:
      tools.write_video(self._outdir / name, frames, self._args.fps)
    except (OSError, RuntimeError) as e:  # ffmpeg's own failures.
      raise tools.RunError(
          f'cannot write {self._outdir / name}: {e}') from None
    print(f'Wrote {self._outdir / name} ({len(frames)} frames).')


def evaluate(config, agent_class, episodes, outputs, openl_length):
  """Runs the checkpoint's policy, without noise, for `episodes` episodes;
  then the open-loop prediction of the first, if asked for."""
  dreamer.setup(config)
  seed = wrappers.env_seed(config.seed, 'final')
  ctor = dreamer.make_ctor(config, seed)
  env = wrappers.Collect(wrappers.Async(ctor, 'none'), [outputs])
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
  if outputs.first is not None:
    frames = open_loop(agent, outputs.first, openl_length)
    outputs.write_video(outputs.name('openl'), frames)


def open_loop(agent, episode, length):
  """uint8 frames (T, 3 H, W, C) of the model's open-loop prediction of the
  episode's first `length` steps (0: all), as agent/openl draws it."""
  if length:
    episode = {k: v[:length] for k, v in episode.items()}
  data = {k: episode[k][None] for k in tools.EPISODE_KEYS}
  video = agent._openl_fn(data).numpy()[0]
  return np.clip(255 * video, 0, 255).astype(np.uint8)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
  """Each option's default, unless None: then its help says what it is."""

  def _get_help_string(self, action):
    if action.default is None:
      return action.help
    return super()._get_help_string(action)


def parse_args(argv):
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n')[0], formatter_class=HelpFormatter)
  parser.add_argument('logdir', type=pathlib.Path, help='the run to evaluate')
  parser.add_argument(
      '--episodes', type=int, default=10, help='evaluation episodes')
  parser.add_argument(
      '--video', type=int, default=0, metavar='N',
      help='write the first N episodes as videos under LOGDIR/eval/')
  parser.add_argument(
      '--openl', action='store_true',
      help="write the world model's open-loop prediction of the first "
      'episode as a video')
  parser.add_argument(
      '--openl_length', type=int, metavar='STEPS',
      help='agent steps of the open-loop video, 0 for the whole episode '
      "(default: the run's batch_length, as agent/openl)")
  parser.add_argument(
      '--save_episodes', action='store_true',
      help="write the episodes in upstream's .npz format under "
      'LOGDIR/eval/episodes/<step>/')
  parser.add_argument(
      '--format', choices=['mp4', 'gif'], default='mp4',
      help='video format: MP4 (H.264) or GIF')
  parser.add_argument(
      '--fps', type=float, default=20, help='frames per second of videos')
  parser.add_argument(
      '--scale', type=int, default=1,
      help='each frame enlarged this many times, pixels kept sharp')
  parser.add_argument(
      '--precision', choices=[16, 32, 'bf16'],
      type=lambda x: int(x) if x in ('16', '32') else x,
      help="precision (default: this machine's)")
  parser.add_argument(
      '--jit', type=tools.args_type(True),
      help="compile with XLA (default: this machine's)")
  args = parser.parse_args(argv)
  for key in ('episodes', 'fps', 'scale'):
    if getattr(args, key) <= 0:
      parser.error(f'--{key} must be positive, got {getattr(args, key)}')
  if not 0 <= args.video <= args.episodes:
    parser.error(
        f'--video must lie between 0 and --episodes {args.episodes}, got '
        f'{args.video}')
  if args.openl_length is not None and args.openl_length < 0:
    parser.error('--openl_length must not be negative')
  return args


def main(argv=None):
  args = parse_args(argv)
  logdir = args.logdir.expanduser()
  final = logdir / 'final.jsonl'
  shows = args.video or args.openl or args.save_episodes
  try:
    agent_class, config = load_record(logdir, vars(args))
    tools.lock(logdir)  # Held until the exit.
    step = tools.checkpoint_step(logdir / 'variables.pkl')
    if step is None:
      raise tools.CheckpointError(
          f'no checkpoint {logdir / "variables.pkl"}: train the run first')
    before = evaluated(final, step)
    if before and not shows:
      print(f'{logdir} was evaluated at step {step} before; left alone.')
      return
    outputs = Outputs(args, logdir / 'eval', step)
    openl_length = args.openl_length
    if openl_length is None:
      openl_length = config.batch_length
    evaluate(config, agent_class, args.episodes, outputs, openl_length)
    if before:
      print(f'{final} holds step {step} already; not appended again.')
    else:
      for episode, (ret, length) in enumerate(outputs.results):
        line = dict(step=step, episode=episode, length=length, **{
            'return': ret})
        tools.append_line(final, json.dumps(line))
  except tools.RunError as e:
    sys.exit(f'evaluate.py: error: {e}')
  returns = np.array([ret for ret, _ in outputs.results])
  print(f'{logdir} at step {step}: final return {returns.mean():.1f} ± '
        f'{returns.std(ddof=min(1, len(returns) - 1)):.1f} over '
        f'{len(returns)} episodes '
        f'({", ".join(f"{r:.1f}" for r in returns)})')


if __name__ == '__main__':
  main()
