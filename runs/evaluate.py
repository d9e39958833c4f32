"""Evaluates and shows a trained run: its checkpoint's policy over N episodes.

  python runs/evaluate.py LOGDIR                 # 10 episodes: final.jsonl
  python runs/evaluate.py LOGDIR --episodes 15   # 5 more at the same step
  python runs/evaluate.py LOGDIR --video 2       # + LOGDIR/eval/*.mp4
  python runs/evaluate.py LOGDIR --openl --save_episodes

Builds the agent and its environment from the run's own record
(LOGDIR/config.json: the agent class and every config key), through the
factory training used (dreamer.make_ctor, every suite with its own wrappers
and defaults), so no training flag is repeated; only the hardware keys
(precision, jit) may be given, by default this machine's. The episodes go to
LOGDIR/final.jsonl, one line each ({step, return, length, episode}) as it
ends, apart from the training curve in metrics.jsonl; plot.py reports them
beside it.

Episode i at the checkpoint's step is seeded by i and the run's seed: its
environment, apart from the run's own, and its policy's samples. So it is
the same episode whichever call runs it, and each is recorded once:
--episodes N appends the episodes final.jsonl lacks at the step up to N. A
run evaluated at its step before is left alone; --episodes 15 after 10 adds
episodes 10 to 14, with seeds no earlier episode had; an evaluation cut
short continues where it stopped. Episodes only shown (--video, --openl) or
stored (--save_episodes) are run again, not recorded again.

What it writes under LOGDIR/eval/, each name starting with the checkpoint's
step:
  --video N        the first N episodes as the agent saw them, <step>-
                   episode<i>.mp4 (H.264; --format gif for GIFs), at the
                   environment's own frame rate unless --fps is given
  --openl          the world model's open-loop prediction of the first
                   episode, <step>-openl.mp4: rows truth, model, error (as
                   TensorBoard's agent/openl), 5 frames of context, then the
                   model alone from the episode's actions
  --save_episodes  the episodes in upstream's .npz format, episodes/<step>/
                   <time>-episode<i>-<length>.npz, each once: those stored
                   before are kept; outside the run's episodes/, so never
                   replayed

One evaluation episode during training is a noisy estimate of a policy; the
random baseline averages 10 episodes, so the final return is compared over
as many.
"""

import argparse
import datetime
import functools
import importlib
import io
import json
import math
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import tools  # noqa: E402  (sets TensorFlow's import flags first)
import dreamer  # noqa: E402
import wrappers  # noqa: E402

import numpy as np  # noqa: E402

HARDWARE = ('precision', 'jit')

# The Atari 2600 draws 60 frames a second; the ALE emulates it frame by frame.
ATARI_HZ = 60


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
  for entry in tools.read_lines(path):
    try:
      if entry['step'] >= step:
        return True
    except (KeyError, TypeError):
      continue
  return False


def recorded(path, step):
  """The returns final.jsonl holds at `step`, one per episode."""
  returns = []
  for entry in tools.read_lines(path):
    try:
      if entry['step'] == step:
        returns.append(entry['return'])
    except (KeyError, TypeError):
      continue
  return returns


def stored(directory):
  """The indices of the episodes saved in `directory`."""
  names = (re.fullmatch(r'[^-]+-episode(\d+)-\d+\.npz', path.name)
           for path in directory.glob('*.npz'))
  return {int(name.group(1)) for name in names if name}


def save_episode(directory, index, episode):
  """Upstream's .npz format, its index where upstream's name has a random
  identifier, so that a later call knows it is stored."""
  directory.mkdir(parents=True, exist_ok=True)
  time = datetime.datetime.now().strftime('%Y%m%dT%H%M%S')
  path = directory / f'{time}-episode{index}-{len(episode["reward"])}.npz'
  with io.BytesIO() as data:
    np.savez_compressed(data, **episode)
    tools.write_atomic(path, lambda f: f.write(data.getvalue()))


def frame_rate(config):
  """Frames per second of the environment's own time in the episodes as the
  agent sees them: one frame every action_repeat steps of the task."""
  suite, task = config.task.split('_', 1)
  if suite == 'atari':
    rate = ATARI_HZ  # Its frame skip is the action repeat.
  elif suite == 'dmc':
    from dm_control import suite as dmc
    env = dmc.load(*wrappers.parse_task(task))
    rate = 1 / env.control_timestep()  # A step: all its physics substeps.
    env.physics.free()
  else:
    env = wrappers.make_gym_env(task)
    rate = env.metadata.get('render_fps')  # Gymnasium's rate of its steps.
    env.close()
    if not rate:
      raise tools.ConfigError(
          f"Gymnasium's {task} states no render_fps: give the videos' frame "
          'rate with --fps')
  return rate / config.action_repeat


class Outputs:
  """Handles each evaluation episode as it ends: its video; the episodes
  `new` also their line in final.jsonl; their file unless stored. Keeps the
  first for the open-loop prediction."""

  def __init__(self, args, logdir, step, new, fps):
    self._args = args
    self._final = logdir / 'final.jsonl'
    self._outdir = logdir / 'eval'
    self.episodes = self._outdir / 'episodes' / str(step)
    self._step = step
    self._new = new
    self._fps = fps
    self.stored = stored(self.episodes) if args.save_episodes else set()
    self.first = None

  def name(self, what):
    return f'{self._step}-{what}.{self._args.format}'

  def __call__(self, index, episode):
    if index == 0 and self._args.openl:
      self.first = episode
    if index < self._args.video:
      self.write_video(self.name(f'episode{index}'), episode['image'])
    if index in self._new:
      # Recorded as it ends, so that a call cut short continues from there.
      line = dict(
          step=self._step, episode=index, length=len(episode['reward']) - 1,
          **{'return': float(episode['reward'].sum())})
      tools.append_line(self._final, json.dumps(line))
    if self._args.save_episodes and index not in self.stored:
      save_episode(self.episodes, index, episode)

  def write_video(self, name, frames):
    scale = self._args.scale
    frames = frames.repeat(scale, 1).repeat(scale, 2)
    self._outdir.mkdir(parents=True, exist_ok=True)
    try:
      tools.write_video(self._outdir / name, frames, self._fps)
    except (OSError, RuntimeError) as e:  # ffmpeg's own failures.
      raise tools.RunError(
          f'cannot write {self._outdir / name}: {e}') from None
    print(f'Wrote {self._outdir / name} ({len(frames)} frames, '
          f'{self._fps:g} fps).')


def episode_env(config, index, outputs):
  """Episode `index`'s own environment, seeded by the index: episodes added
  later never repeat an earlier one's seed."""
  seed = wrappers.env_seed(config.seed, 'final', index)
  env = wrappers.Async(dreamer.make_ctor(config, seed), 'none')
  return wrappers.Collect(env, [functools.partial(outputs, index)])


def action_space(config):
  """The task's, for the agent, built before the episodes' environments."""
  env = dreamer.make_ctor(config, None)()
  try:
    return env.action_space
  finally:
    env.close()


def evaluate(config, agent_class, indices, outputs, openl_length):
  """Runs the checkpoint's policy, without noise, for the episodes
  `indices`; then the open-loop prediction of the first, if asked for."""
  dreamer.setup(config)
  logger = tools.Logger(config.logdir, config.steps)
  agent = agent_class(
      config, config.logdir / 'episodes', action_space(config), logger)
  agent.load(config.logdir / 'variables.pkl')
  total = len(indices) * config.time_limit
  with tools.Progress('Final evaluation', total, 'env steps') as progress:
    policy = functools.partial(agent, training=False)
    policy = dreamer.counting(policy, progress, config.action_repeat)
    for index in indices:
      # The policy's samples (the posterior's) drawn from the index too, so
      # that the episode is the one recorded, whichever call runs it.
      agent._random.seed(wrappers.env_seed(config.seed, 'final', index, 1))
      env = episode_env(config, index, outputs)
      try:
        tools.simulate(policy, [env], episodes=1)
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


def add_hardware_flags(parser):
  """The only training keys a reader of a run may override."""
  parser.add_argument(
      '--precision', choices=[16, 32, 'bf16'],
      type=lambda x: int(x) if x in ('16', '32') else x,
      help="precision (default: this machine's)")
  parser.add_argument(
      '--jit', type=tools.args_type(True),
      help="compile with XLA (default: this machine's)")


def parse_args(argv):
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n')[0], formatter_class=HelpFormatter)
  parser.add_argument('logdir', type=pathlib.Path, help='the run to evaluate')
  parser.add_argument(
      '--episodes', type=int, default=10,
      help="episodes of the evaluation at the checkpoint's step: those "
      'final.jsonl lacks there are run and appended (15 after 10 adds 5)')
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
      'LOGDIR/eval/episodes/<step>/, each once')
  parser.add_argument(
      '--format', choices=['mp4', 'gif'], default='mp4',
      help='video format: MP4 (H.264) or GIF')
  parser.add_argument(
      '--fps', type=float,
      help="frames per second of videos (default: the environment's own "
      "rate of observed frames: Gymnasium's render_fps, 1 / DeepMind "
      "Control's control timestep or the Atari's 60 Hz, divided by the "
      'action repeat)')
  parser.add_argument(
      '--scale', type=int, default=1,
      help='each frame enlarged this many times, pixels kept sharp')
  add_hardware_flags(parser)
  args = parser.parse_args(argv)
  for key in ('episodes', 'scale'):
    if getattr(args, key) <= 0:
      parser.error(f'--{key} must be positive, got {getattr(args, key)}')
  if args.fps is not None and not 0 < args.fps < math.inf:  # Not nan.
    parser.error(f'--fps must be a positive number, got {args.fps}')
  if not 0 <= args.video <= args.episodes:
    parser.error(
        f'--video must lie between 0 and --episodes {args.episodes}, got '
        f'{args.video}')
  if args.openl_length is not None and args.openl_length < 0:
    parser.error('--openl_length must not be negative')
  return args


def wanted(args, new, stored):
  """The episodes to run: those to record, show or store."""
  indices = set(new) | set(range(args.video))
  if args.openl:
    indices.add(0)
  if args.save_episodes:
    indices |= set(range(args.episodes)) - stored
  return sorted(indices)


def listed(indices):
  return ', '.join(map(str, indices))


def main(argv=None):
  args = parse_args(argv)
  logdir = args.logdir.expanduser()
  final = logdir / 'final.jsonl'
  try:
    agent_class, config = load_record(logdir, vars(args))
    tools.lock(logdir)  # Held until the exit.
    step = tools.checkpoint_step(logdir / 'variables.pkl')
    if step is None:
      raise tools.CheckpointError(
          f'no checkpoint {logdir / "variables.pkl"}: train the run first')
    held = len(recorded(final, step))
    new = range(held, args.episodes)
    if evaluated(final, step + 1):  # final.jsonl stays in step order.
      new = range(0)
    fps = None
    if args.video or args.openl:
      fps = args.fps or frame_rate(config)
    outputs = Outputs(args, logdir, step, new, fps)
    indices = wanted(args, new, outputs.stored)
    kept = sorted(outputs.stored & set(range(args.episodes)))
    if kept:
      print(f'{outputs.episodes} holds episodes {listed(kept)} already; '
            'not saved again.')
    if not indices:
      print(f'{logdir} was evaluated at step {step} before; left alone.')
      return
    openl_length = args.openl_length
    if openl_length is None:
      openl_length = config.batch_length
    evaluate(config, agent_class, indices, outputs, openl_length)
  except tools.RunError as e:
    sys.exit(f'evaluate.py: error: {e}')
  again = [i for i in indices if i not in new]
  if again:
    print(f'{final} holds step {step} already; episodes {listed(again)} '
          'run again, not appended again.')
  if held and new:
    print(f'Added episodes {new[0]} to {new[-1]} to the {held} at step '
          f'{step}.')
  returns = np.array(recorded(final, step))
  if len(returns):
    print(f'{logdir} at step {step}: final return {returns.mean():.1f} ± '
          f'{returns.std(ddof=min(1, len(returns) - 1)):.1f} over '
          f'{len(returns)} episodes '
          f'({", ".join(f"{r:.1f}" for r in returns)})')


if __name__ == '__main__':
  main()
