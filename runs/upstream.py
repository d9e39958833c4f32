"""Upstream's own Dreamer (danijar/dreamer at 56d4d44) on this project's stack.

  UPSTREAM=../dreamer python runs/upstream.py --task dmc_walker_walk \
      --logdir runs/logdir/walker_walk/upstream/0
  python runs/upstream.py --evaluate 10 \
      --logdir runs/logdir/walker_walk/upstream/0

Trains with upstream's own loop, `dreamer.main(config)` of a checkout, its
flags (every key of its define_config(), parsed by its own args_type) and its
logdir formats (episodes, metrics.jsonl, variables.pkl, events). The checkout
is --upstream PATH, else $UPSTREAM, else ../dreamer beside this repository:

  git clone https://github.com/danijar/dreamer ../dreamer
  git -C ../dreamer checkout 56d4d44

Its dreamer.py, models.py, tools.py and wrappers.py must be upstream's at
56d4d44 byte for byte (their git blob hashes are checked, so a download
without .git serves too); they are only read: no line of them is copied here,
and nothing is written into the checkout. What today's stack (TensorFlow 2.21
with tf_keras, NumPy 2, no gym, no ffmpeg binary) broke is changed at import
time by the patches below, each a renamed or removed API or a missing binary,
none a change of what upstream computes.

Beside upstream's files the logdir gets this project's config.json (the
config, the agent `upstream.Dreamer`, the checkout and its verified commit,
this code's commit, package versions, the command, each resume) and .lock.
A run resumes by running the same command: upstream reloads variables.pkl
and its episodes. `--jit False` is accepted so that one FLAGS string serves
this project's scripts and upstream (which has no XLA option).

`--resumable True` (the driver's, not upstream's; give it on every command
of a run) makes a run stop cleanly and resume as if it had not stopped: the
first SIGINT or SIGTERM stops it after its next update, and every save also
writes Adam's state (LOGDIR/resume.pkl; upstream's checkpoints hold none).
The same command then restores Adam's state, runs the rest of the
interrupted train phase and of the collection under way, and tests only
where upstream's uninterrupted loop tests.

`--evaluate N` builds upstream's agent from the run's record, loads its
checkpoint and runs N test episodes of upstream's test policy
(training=False), appended to LOGDIR/final.jsonl as runs/evaluate.py does,
at the step of upstream's curves: the env steps of the run's episodes (its
agent's own counter lags them after a resume); a run evaluated at that step
before is left alone.
"""

import argparse
import functools
import hashlib
import importlib
import json
import math
import os
import pathlib
import pickle
import shlex
import shutil
import sys
import tempfile
import types

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROG = 'upstream.py'
COMMIT = '56d4d444dfd0582b0e79dab80aebbea74c0ce40d'
CLONE = (
    'git clone https://github.com/danijar/dreamer {0} && '
    'git -C {0} checkout 56d4d44')
# `git hash-object` of upstream's modules at COMMIT: a checkout is verified
# by its content.
BLOBS = {
    'dreamer.py': 'fa6236dd59d85ffab9be4c83775b471c55cc3260',
    'models.py': '0f40316ed8484dde2a9af89ae8fbe1d18f8d2e8c',
    'tools.py': 'd5a80f388597425f6c77456f3af2d041ad7e9b7c',
    'wrappers.py': '686270502bb1899de1da0591e9fd34e5aa610859',
}
# config.json's agent: upstream's class, which no module here defines.
AGENT = 'upstream.Dreamer'


class _Parser(argparse.ArgumentParser):

  def error(self, message):
    sys.exit(f'{self.prog}: error: {message}')


def fail(message):
  sys.exit(f'{PROG}: error: {message}')


def warn(message):
  print(f'{PROG}: warning: {message}', file=sys.stderr, flush=True)


def _boolean(text):
  if text not in ('False', 'True'):
    raise argparse.ArgumentTypeError(f"invalid bool value: '{text}'")
  return text == 'True'


# The checkout.

def default_checkout():
  return pathlib.Path(os.environ.get('UPSTREAM') or ROOT.parent / 'dreamer')


def checkout_path(argv):
  """The checkout that --upstream (or $UPSTREAM, or ../dreamer) names."""
  parser = _Parser(prog=PROG, add_help=False, allow_abbrev=False)
  parser.add_argument('--upstream', type=pathlib.Path)
  args, _ = parser.parse_known_args(argv)
  path = args.upstream or default_checkout()
  return path.expanduser().resolve()


def blob_hash(path):
  """Git's hash of a file's content, as `git hash-object` computes it."""
  data = path.read_bytes()
  return hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()


def verify_checkout(path):
  """Raises ValueError unless `path` holds upstream's modules at COMMIT."""
  if not path.is_dir():
    raise ValueError(
        f'no upstream checkout at {path}: set UPSTREAM or --upstream, or '
        f'{CLONE.format(path)}')
  for name, blob in BLOBS.items():
    if not (path / name).is_file():
      raise ValueError(
          f'{path} is no upstream checkout: it has no {name} ('
          f'{CLONE.format(path)})')
    if blob_hash(path / name) != blob:
      raise ValueError(
          f"{path / name} is not upstream's {name} at 56d4d44 (changed, or "
          f'another commit): git -C {path} checkout 56d4d44')


# Imports: this project's helpers first, then upstream's modules under the
# same names (dreamer, models, tools, wrappers).

def import_project():
  """This project's tools, dreamer, wrappers and runs/evaluate.py.

  tools first: it loads TensorFlow with RTLD_LOCAL (TensorFlow loaded the
  default way crashes Mesa's renderer) and Keras 2 (tf_keras, whose layers
  tf.Module tracks, as upstream's checkpoints need). Then they leave
  sys.modules, so that upstream's `import tools` finds upstream's.
  """
  os.environ.setdefault('MUJOCO_GL', 'egl')
  sys.path.insert(0, str(ROOT))
  sys.path.insert(0, str(ROOT / 'runs'))
  project = types.SimpleNamespace(
      tools=importlib.import_module('tools'),
      dreamer=importlib.import_module('dreamer'),
      wrappers=importlib.import_module('wrappers'),
      evaluate=importlib.import_module('evaluate'))
  for path in (ROOT, ROOT / 'runs'):
    while str(path) in sys.path:
      sys.path.remove(str(path))
  for name in ('dreamer', 'models', 'tools', 'wrappers'):
    sys.modules.pop(name, None)
  return project


def patch_stack(project):
  """What upstream imports or calls that today's stack renamed or lacks."""
  import numpy as np
  import tensorflow as tf
  import tf_keras

  # `from tensorflow.keras.mixed_precision import experimental as prec`
  # (dreamer.py, models.py, tools.py): the module is gone since TF 2.11;
  # tf_keras.mixed_precision has its names, set_policy renamed
  # set_global_policy, and LossScaleOptimizer takes no loss scale argument
  # (dynamic is its default, the 'dynamic' upstream passes).
  mixed = tf_keras.mixed_precision
  experimental = types.ModuleType(
      'tensorflow.keras.mixed_precision.experimental')
  experimental.Policy = mixed.Policy
  experimental.global_policy = mixed.global_policy
  experimental.set_policy = mixed.set_global_policy

  def loss_scale_optimizer(optimizer, loss_scale):
    assert loss_scale == 'dynamic', loss_scale
    return mixed.LossScaleOptimizer(optimizer)
  experimental.LossScaleOptimizer = loss_scale_optimizer
  parent = importlib.import_module('tensorflow.keras.mixed_precision')
  parent.experimental = experimental
  sys.modules[experimental.__name__] = experimental

  # `strategy.experimental_run_v2` (dreamer.py's train) was renamed
  # `strategy.run` in TF 2.2 and removed later.
  tf.distribute.Strategy.experimental_run_v2 = tf.distribute.Strategy.run

  # `np.bool` (tools.simulate): removed in NumPy 1.24 and back since 2.0, so
  # missing under the NumPy 1.26 this project allows.
  if not hasattr(np, 'bool'):
    np.bool = np.bool_

  # `import gym` (tools.py, wrappers.py), for its spaces only on the Control
  # Suite: gym is not installed (and its old versions fail on NumPy 2). The
  # spaces come from this project's wrappers (Box, Discrete) and a Dict.
  gym = types.ModuleType('gym')
  gym.spaces = types.ModuleType('gym.spaces')
  gym.spaces.Box = project.wrappers.Box
  gym.spaces.Discrete = project.wrappers.Discrete
  gym.spaces.Dict = SpaceDict
  sys.modules['gym'] = gym
  sys.modules['gym.spaces'] = gym.spaces

  # Upstream's GIF summaries pipe frames to an `ffmpeg` binary on PATH.
  # These machines have none (imageio-ffmpeg's is used), and FFmpeg 7
  # removed the `fifo` filter that upstream's filter graph names.
  put_ffmpeg_on_path()


class SpaceDict:
  """gym.spaces.Dict as upstream uses it: a dict of spaces."""

  def __init__(self, spaces):
    self.spaces = dict(spaces)


# `ffmpeg` for upstream's GIF summaries: the binary on PATH, else
# imageio-ffmpeg's, with `null` for the `fifo` filter, which FFmpeg 7
# removed as needless (both pass the frames on unchanged).
FFMPEG = """#!/bin/sh
for arg do
  shift
  case $arg in
    *fifo*) arg=$(printf '%s\\n' "$arg" | sed 's/fifo/null/g') ;;
  esac
  set -- "$@" "$arg"
done
exec {} "$@"
"""
_FFMPEG_DIR = None  # Removed at the exit.


def put_ffmpeg_on_path():
  global _FFMPEG_DIR
  binary = shutil.which('ffmpeg')
  if not binary:
    try:
      import imageio_ffmpeg
      binary = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
      return  # Upstream then logs a still grid for each GIF, and says so.
  _FFMPEG_DIR = tempfile.TemporaryDirectory(prefix='upstream-ffmpeg-')
  path = pathlib.Path(_FFMPEG_DIR.name) / 'ffmpeg'
  path.write_text(FFMPEG.format(shlex.quote(binary)))
  path.chmod(0o755)
  os.environ['PATH'] = _FFMPEG_DIR.name + os.pathsep + os.environ['PATH']


def import_upstream(checkout):
  """Upstream's dreamer, models, tools and wrappers, from the checkout."""
  # Nothing is written into the checkout: no __pycache__ of its modules.
  sys.dont_write_bytecode = True
  sys.path.insert(0, str(checkout))
  gl = os.environ['MUJOCO_GL']
  upstream = types.SimpleNamespace(
      dreamer=importlib.import_module('dreamer'))
  # dreamer.py sets MUJOCO_GL=egl; this project's setting (the user's, e.g.
  # osmesa, else egl) stays.
  os.environ['MUJOCO_GL'] = gl
  for name in ('models', 'tools', 'wrappers'):
    setattr(upstream, name, sys.modules[name])
  for name, module in vars(upstream).items():
    if pathlib.Path(module.__file__).resolve() != checkout / f'{name}.py':
      raise ImportError(f'{name} came from {module.__file__}, not {checkout}')
  patch_upstream(upstream)
  return upstream


def patch_upstream(upstream):
  """What fails inside upstream's own functions."""
  import numpy as np

  # encode_gif writes each frame with `image.tostring()`, which NumPy 2.3
  # removed (tobytes() is its name since 1.9): the frames come as an ndarray
  # subclass that still has it.
  encode_gif = upstream.tools.encode_gif

  class Frames(np.ndarray):
    def tostring(self):
      return self.tobytes()

  upstream.tools.encode_gif = lambda frames, fps: encode_gif(
      np.asarray(frames).view(Frames), fps)


# Flags: upstream's keys, parsed by upstream's args_type, and the driver's.

def flag_type(upstream, default):
  """Upstream's parser of a key, named for argparse's one-line message."""
  parse = upstream.tools.args_type(default)

  def flag(text):
    return parse(text)
  flag.__name__ = type(default).__name__  # "invalid int value: 'x'"
  return flag


def make_parser(upstream=None, project=None, epilog=None):
  parser = _Parser(
      prog=PROG, description=__doc__.split('\n')[0], epilog=epilog,
      allow_abbrev=False)
  own = parser.add_argument_group('the driver')
  own.add_argument(
      '--upstream', type=pathlib.Path, metavar='PATH',
      help='the upstream checkout at 56d4d44 (default: $UPSTREAM, else '
      f'../dreamer beside this repository; here {default_checkout()})')
  own.add_argument(
      '--evaluate', type=int, metavar='N',
      help="instead of training: N test episodes of LOGDIR's checkpoint, "
      'appended to LOGDIR/final.jsonl; the agent is built from '
      'LOGDIR/config.json, so only --logdir and --precision may be given')
  own.add_argument(
      '--resumable', metavar='BOOL', type=_boolean, default=False,
      help="the driver's stop and resume, not upstream's: SIGINT or SIGTERM "
      "stops after the next update, every save holds Adam's state too, and "
      'the same command continues as if uninterrupted (default: False)')
  own.add_argument(
      '--jit', metavar='False',
      help="only False: this project's flag, accepted so that one FLAGS "
      "string serves both codes; upstream's train step is a tf.function "
      'graph without XLA')
  if upstream is None:
    return parser
  keys = parser.add_argument_group(
      "upstream's config (define_config() of the checkout, parsed by its "
      'args_type)')
  choices = {**project.dreamer.CHOICES, 'precision': [16, 32]}
  for key, value in upstream.dreamer.define_config().items():
    shown = f"upstream's default: {value}"
    if key in choices:
      shown += f'; one of {", ".join(map(str, choices[key]))}'
    keys.add_argument(
        f'--{key}', type=flag_type(upstream, value), metavar='',
        default=argparse.SUPPRESS, choices=choices.get(key),
        help=shown.replace('%', '%%'))
  return parser


def parse_flags(argv, upstream, project):
  """The driver's options, upstream's config and the keys given."""
  args = vars(make_parser(upstream, project).parse_args(argv))
  own = argparse.Namespace(**{
      key: args.pop(key)
      for key in ('upstream', 'evaluate', 'resumable', 'jit')})
  if own.jit not in (None, 'False'):
    fail(f"--jit {own.jit}: upstream's code has no XLA option (its train "
         'step is a plain tf.function graph); only --jit False is accepted')
  config = upstream.dreamer.define_config()
  config.update(args)
  return own, config, set(args)


def check_config(config, project):
  """ValueError for what upstream cannot run here, or would fail on late or
  hang on: this project's checks of the same keys, and upstream's own
  bound on sequences (it skips episodes that cannot hold one, forever)."""
  if config.task.startswith('atari_'):
    raise ValueError(
        f"--task {config.task}: upstream's Atari runs gym's Atari "
        'environments, which this stack does not have; the driver runs '
        'Control Suite tasks (dmc_*)')
  merged = project.dreamer.define_config()
  merged.update(config)
  project.dreamer.check_config(merged)
  transitions = math.ceil(config.time_limit / config.action_repeat)
  if config.batch_length > transitions:
    raise ValueError(
        f'--batch_length must be at most {transitions} for upstream (the '
        'transitions of an episode: time_limit / action_repeat), got '
        f'{config.batch_length}')


# The record.

# describe_run names the agent by its class's module and name.
AGENT_CLASS = type('Dreamer', (), dict(__module__=AGENT.split('.')[0]))


def record_run(config, project, checkout):
  """Writes LOGDIR/config.json as this project's runs do; ValueError or the
  project's RunError if the logdir holds another run."""
  record = project.dreamer.check_record(config, AGENT_CLASS)
  record['upstream'] = dict(
      path=str(checkout), commit=COMMIT,
      verified='git blob hashes of ' + ', '.join(BLOBS))
  step = project.tools.checkpoint_step(config.logdir / 'variables.pkl') or 0
  no_summaries = types.SimpleNamespace(text=lambda *args: None)
  project.dreamer.write_record(config, record, step, no_summaries)


def read_record(logdir):
  """The config of the upstream run in logdir, from its config.json."""
  path = logdir / 'config.json'
  try:
    record = json.loads(path.read_text())
    agent, values = record['agent'], record['config']
  except FileNotFoundError:
    raise ValueError(
        f'{path} does not exist: {logdir} is no run of this driver '
        '(train it first)') from None
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise ValueError(f'{path} is not a readable record ({e})') from e
  if agent != AGENT:
    raise ValueError(
        f'{logdir} holds a run of {agent}, not of {AGENT}: evaluate it with '
        'runs/evaluate.py')
  return values


# Training and evaluation.

def train(config, upstream, project, checkout, resumable):
  """Upstream's main loop, after the logdir's lock and record."""
  logdir = config.logdir
  print(f"Upstream's Dreamer at 56d4d44 from {checkout}.")
  try:
    logdir.mkdir(parents=True, exist_ok=True)
    project.tools.lock(logdir)  # Held until the exit.
    check_resumable(logdir, resumable)
    record_run(config, project, checkout)
  except OSError as e:
    fail(f'cannot write to --logdir {logdir}: {e.strerror or e}')
  except (ValueError, project.tools.RunError) as e:
    fail(e)
  warn_float16(config)
  if resumable:
    make_resumable(upstream, project)
    project.tools.STOP.install()
  upstream.dreamer.main(argparse.Namespace(**config))


def warn_float16(config):
  """Upstream's --precision 16 averages its image log-likelihoods (about
  -11k nats per frame) over the batch in float16, and TensorFlow's CPU
  kernels accumulate that mean in float16: it overflows to -inf (measured
  here), so every model update is non-finite. The run stays upstream's."""
  import tensorflow as tf
  if config.precision == 16 and not tf.config.list_physical_devices('GPU'):
    print(f"{PROG}: warning: --precision 16 (upstream's default) without a "
          "GPU: upstream's image loss overflows float16 on the CPU and its "
          'model does not train; --precision 32 does', file=sys.stderr)


# The driver's stop and resume (--resumable True), not upstream's: upstream
# saves only after each collection of eval_every env steps (hours at its
# defaults on a CPU) and resumes with Adam's state reset, a test at the
# start and a whole collection from there.

RESUME = 'resume.pkl'


def check_resumable(logdir, resumable):
  """ValueError if a run's commands disagree on --resumable."""
  if resumable or not (logdir / RESUME).exists():
    return
  raise ValueError(
      f'{logdir} was trained with --resumable True ({logdir / RESUME} holds '
      "Adam's state and where it stopped): give it again, or remove that "
      'file to resume as upstream does')


def adam_variables(optimizer):
  """The state of upstream's tools.Adam: Adam's step and moments, and the
  dynamic loss scale of the LossScaleOptimizer around it (upstream uses one
  at every precision)."""
  scaled = optimizer._opt
  return [
      *scaled.inner_optimizer.variables,
      scaled._loss_scale._current_loss_scale, scaled.dynamic_counter]


def make_resumable(upstream, project):
  """Puts a resumable subclass in place of upstream's Dreamer, which its
  main() then builds, and tells it what the loop's simulate() calls do."""
  import tensorflow as tf
  base = upstream.dreamer.Dreamer
  stop = project.tools.STOP
  write_atomic = project.tools.write_atomic

  class Dreamer(base):
    """Upstream's agent that saves Adam's state beside its checkpoint and
    stops at an update boundary, recording the phase's progress and the end
    of the collection under way, which the next load continues."""

    def __init__(self, config, datadir, actspace, writer):
      self._phase = None  # The train phase under way (None while building).
      self._block = None  # The env step at which the collection ends.
      self._resume = None  # The stop that the loaded checkpoint came from.
      self._owed = 0  # Updates to add to (or skip of) the resumed phase.
      super().__init__(config, datadir, actspace, writer)

    def __call__(self, obs, reset, state=None, training=True):
      # Upstream trains here when a phase is due, pretraining first.
      n = self._c.pretrain if self._should_pretrain._once else (
          self._c.train_steps)
      self._phase = dict(
          step=int(self._step.numpy()), updates=n, done=0, test=not training)
      if self._resume:  # The first phase after the load is the one stopped.
        stopped, self._resume = self._resume, None
        self._phase.update(updates=stopped['updates'], done=stopped['done'])
        left = stopped['updates'] - stopped['done']
        self._owed = left - n  # Upstream calls train() n times here.
        print(f"Resumed inside the phase at step {stopped['step']}: "
              f"{left} of its {stopped['updates']} updates left.")
      return super().__call__(obs, reset, state, training)

    def train(self, data, log_images=False):
      if self._phase is None:  # The step that builds the variables.
        return super().train(data, log_images)
      if self._owed < 0:  # Done before the stop.
        self._owed += 1
        return
      super().train(data, log_images)
      self._count()
      while self._owed > 0:  # More left than this phase's calls.
        self._owed -= 1
        super().train(next(self._dataset))
        self._count()

    def _count(self):
      self._phase['done'] += 1
      if stop.requested:
        phase = self._phase
        self.save(self._c.logdir / 'variables.pkl', dict(
            phase, block=self._block))
        tf.summary.flush()
        print(f"Stopped at step {phase['step']} after {phase['done']} of "
              f"{phase['updates']} updates of its phase; run the same "
              'command to continue.', flush=True)
        sys.exit(0)

    def simulate(self, policy, envs, steps, episodes, state):
      """Upstream's tools.simulate for the loop's test (policy is not self)
      and collection, the first after a stop made as the loop would have
      gone on."""
      step = int(self._step.numpy())
      stopped = self._resume
      if stopped and not stopped['test']:  # Stopped inside a collection.
        if policy is not self:  # Its test was done before.
          print('Resumed inside a collection: its test was done before.')
          return None
        repeat = self._c.action_repeat
        steps = max(1, -(-(stopped['block'] - step) // repeat))
      if policy is self:
        carried = state[0] if state else 0
        self._block = int(step + (steps - carried) * self._c.action_repeat)
      return simulate(policy, envs, steps, episodes, state)

    def save(self, filename, stopped=None):
      values = dict(
          step=int(self._step.numpy()), stop=stopped, optimizers=[
              [v.numpy() for v in adam_variables(optimizer)]
              for optimizer in self._optimizers()])
      filename = pathlib.Path(filename)
      # Adam's state first: a save cut short leaves it newer than the
      # checkpoint, which the load then tells.
      write_atomic(
          filename.parent / RESUME, lambda f: pickle.dump(values, f))
      weights = tf.nest.map_structure(lambda x: x.numpy(), self.variables)
      write_atomic(filename, lambda f: pickle.dump(weights, f))

    def load(self, filename):
      super().load(filename)
      path = pathlib.Path(filename).parent / RESUME
      step = int(self._step.numpy())
      try:
        with path.open('rb') as f:
          values = pickle.load(f)
        saved = values['step']
      except FileNotFoundError:
        warn(f"no {path}: resuming as upstream does, Adam's state reset")
        return
      except (OSError, ValueError, KeyError, TypeError,
              pickle.UnpicklingError, EOFError) as e:
        fail(f'{path} is not a readable record of Adam\'s state ({e})')
      if saved != step:
        warn(f"{path} is of step {saved}, {filename} of step {step} (a save "
             "cut short): resuming as upstream does, Adam's state reset")
        return
      for optimizer, arrays in zip(self._optimizers(), values['optimizers']):
        variables = adam_variables(optimizer)
        if [v.shape for v in variables] != [a.shape for a in arrays]:
          fail(f"{path} holds Adam's state of another model")
        for variable, array in zip(variables, arrays):
          variable.assign(array)
      self._resume = values['stop']

    def _optimizers(self):
      return [self._model_opt, self._value_opt, self._actor_opt]

  simulate = upstream.tools.simulate

  def loop_simulate(agent, envs, steps=0, episodes=0, state=None):
    target = getattr(agent, 'func', agent)  # The test's partial(agent).
    if isinstance(target, Dreamer):
      return target.simulate(agent, envs, steps, episodes, state)
    return simulate(agent, envs, steps, episodes, state)

  upstream.dreamer.Dreamer = Dreamer
  upstream.tools.simulate = loop_simulate


def evaluate(config, given, episodes, upstream, project):
  """Appends `episodes` test episodes of the checkpoint to final.jsonl."""
  if 'logdir' not in given:
    fail('--evaluate needs --logdir, the run to evaluate')
  extra = sorted(given - {'logdir', 'precision'})
  if extra:
    fail(f'--{extra[0]} cannot be given with --evaluate: the agent is built '
         'from LOGDIR/config.json (only --precision may differ)')
  if episodes < 1:
    fail(f'--evaluate must be positive, got {episodes}')
  logdir = config.logdir
  final = logdir / 'final.jsonl'
  try:
    values = read_record(logdir)
    project.tools.lock(logdir)  # Held until the exit.
    saved = project.tools.checkpoint_step(logdir / 'variables.pkl')
    if saved is None:
      raise ValueError(
          f'no checkpoint {logdir / "variables.pkl"}: train the run first')
  except (ValueError, OSError, project.tools.RunError) as e:
    fail(e)
  recorded = upstream.tools.AttrDict(values)
  # The step of upstream's curves and loop, the env steps of its episodes.
  # Its agent's own counter, restored from the last checkpoint on a resume,
  # lags them by the episodes written after that checkpoint.
  step = upstream.dreamer.count_steps(logdir / 'episodes', recorded)
  if project.evaluate.evaluated(final, step):
    print(f'{logdir} was evaluated at step {step} before; left alone.')
    return
  recorded.logdir = logdir
  recorded.precision = config.precision if 'precision' in given else (
      recorded.precision)
  results = test_episodes(recorded, episodes, saved, upstream)
  for index, (ret, length) in enumerate(results):
    line = dict(step=step, episode=index, length=length, **{'return': ret})
    project.tools.append_line(final, json.dumps(line))
  returns = [ret for ret, _ in results]
  mean = sum(returns) / len(returns)
  std = math.sqrt(sum((r - mean) ** 2 for r in returns) / len(returns))
  print(f'{logdir} at step {step}: final return {mean:.1f} ± {std:.1f} '
        f'over {len(returns)} episodes '
        f'({", ".join(f"{r:.1f}" for r in returns)})')


def test_episodes(config, episodes, saved, upstream):
  """[(return, length)] of upstream's test policy from the checkpoint, whose
  agent's counter is `saved`."""
  import tensorflow as tf
  import tf_keras
  if config.precision == 16:  # As upstream's main sets it.
    tf_keras.mixed_precision.set_global_policy('mixed_float16')
  results = []

  def record(episode, *unused):
    ret, length = float(episode['reward'].sum()), len(episode['reward']) - 1
    print(f'Final evaluation episode {len(results)}: length {length}, '
          f'return {ret:.1f}.', flush=True)
    results.append((ret, length))
  # Upstream's test environment reports each episode to summarize_episode,
  # which writes metrics.jsonl and TensorBoard; these go to final.jsonl.
  upstream.dreamer.summarize_episode = record
  writer = tf.summary.create_noop_writer()
  datadir = config.logdir / 'episodes'
  env = upstream.wrappers.Async(lambda: upstream.dreamer.make_env(
      config, writer, 'test', datadir, store=False), 'none')
  try:
    # Upstream's agent creates its variables by a train step on its replay,
    # then takes every value from the checkpoint.
    agent = upstream.dreamer.Dreamer(
        config, datadir, env.action_space, writer)
    agent.load(config.logdir / 'variables.pkl')
    loaded = int(agent._step.numpy())
    if loaded != saved:
      fail(f'{config.logdir / "variables.pkl"}: its step is {loaded} as '
           f'the agent loads it but {saved} as read before')
    # The agent trains on its first call (upstream's loop evaluates after
    # training); the checkpoint's policy is evaluated as it was saved.
    agent._should_train(loaded)
    policy = functools.partial(agent, training=False)
    upstream.tools.simulate(policy, [env], episodes=episodes)
  finally:
    env.close()
  return results


def main(argv=None):
  argv = sys.argv[1:] if argv is None else list(argv)
  checkout = checkout_path(argv)
  try:
    verify_checkout(checkout)
  except ValueError as e:
    if {'-h', '--help'} & set(argv):
      make_parser(epilog=f"Upstream's config keys are listed once the "
                  f'checkout is there: {e}').print_help()
      return
    fail(e)
  project = import_project()
  patch_stack(project)
  upstream = import_upstream(checkout)
  own, config, given = parse_flags(argv, upstream, project)
  if own.evaluate is not None:
    evaluate(config, given, own.evaluate, upstream, project)
    return
  try:
    check_config(config, project)
  except ValueError as e:
    fail(e)
  train(config, upstream, project, checkout, own.resumable)


if __name__ == '__main__':
  main()
