"""Environment wrappers in upstream's order; additions at the end.

This module never imports TensorFlow: `--parallel process` workers are spawned
with only this module imported, so they can render with Mesa's software
renderer, which segfaults on its first frame in a process that loaded
TensorFlow the default way (RTLD_GLOBAL: TensorFlow's LLVM symbols then bind
Mesa's llvmpipe).
"""

import contextlib
import difflib
import functools
import importlib.machinery
import multiprocessing
import multiprocessing.dummy
import os
import signal
import sys
import threading
import traceback

# Headless rendering; a user's own choice (e.g. osmesa) wins. SDL's dummy
# video driver keeps pygame (Gymnasium's classic control) from looking for a
# display.
os.environ.setdefault('MUJOCO_GL', 'egl')
os.environ.setdefault('SDL_VIDEODRIVER', 'dummy')

import numpy as np
from PIL import Image


class DeepMindControl:

  def __init__(self, name, size=(64, 64), camera=None, seed=None):
    domain, task = parse_task(name)
    if isinstance(domain, str):
      from dm_control import suite
      self._env = suite.load(domain, task, task_kwargs={'random': seed})
    else:
      assert task is None
      self._env = domain()
    self._size = size
    if camera is None:
      camera = dict(quadruped=2).get(domain, 0)
    self._camera = camera

  @property
  def observation_space(self):
    spaces = {}
    spaces['image'] = Box(
        0, 255, self._size + (3,), dtype=np.uint8)
    return spaces

  @property
  def action_space(self):
    spec = self._env.action_spec()
    return Box(spec.minimum, spec.maximum, dtype=np.float32)

  def step(self, action, render=True):
    time_step = self._env.step(action)
    obs = {}
    if render:  # ActionRepeat renders only the frame that is observed.
      obs['image'] = self.render()
    reward = np.float32(time_step.reward or 0)
    done = time_step.last()
    info = {'discount': np.array(time_step.discount, np.float32)}
    return obs, reward, done, info

  def reset(self):
    self._env.reset()
    obs = {}
    obs['image'] = self.render()
    return obs

  def render(self, *args, **kwargs):
    if kwargs.get('mode', 'rgb_array') != 'rgb_array':
      raise ValueError("Only render mode 'rgb_array' is supported.")
    return self._env.physics.render(*self._size, camera_id=self._camera)

  def close(self):
    # Free the rendering context now: at interpreter exit its cleanup races
    # the executor's shutdown and prints "RuntimeError: cannot schedule new
    # futures after shutdown" tracebacks (dm_control 1.0.50).
    self._env.physics.free()


class Atari:
  """Upstream's wrapper on the Arcade Learning Environment itself, which
  ships the ROMs: gym's <Game>NoFrameskip-v0 (sticky actions) or -v4 with
  the minimal action set, seeded."""

  LOCK = threading.Lock()

  def __init__(
      self, name, action_repeat=4, size=(84, 84), grayscale=True, noops=30,
      life_done=False, sticky_actions=True, seed=None):
    import ale_py
    import ale_py.roms
    self._random = np.random.RandomState(seed)
    with self.LOCK:
      self._env = ale_py.ALEInterface()
      self._env.setLoggerMode(ale_py.LoggerMode.Error)
      self._env.setInt('random_seed', self._random.randint(2 ** 31))
      # ALE makes actions sticky unless told otherwise; v4 did not.
      self._env.setFloat(
          'repeat_action_probability', 0.25 if sticky_actions else 0.0)
      self._env.loadROM(ale_py.roms.get_rom_path(parse_game(name)))
    self._actions = self._env.getMinimalActionSet()
    self._action_repeat = action_repeat
    self._size = size
    self._grayscale = grayscale
    self._noops = noops
    self._life_done = life_done
    self._lives = None
    shape = self._env.getScreenDims() + (() if grayscale else (3,))
    self._buffers = [np.empty(shape, dtype=np.uint8) for _ in range(2)]

  @property
  def observation_space(self):
    shape = self._size + (1 if self._grayscale else 3,)
    space = Box(low=0, high=255, shape=shape, dtype=np.uint8)
    return {'image': space}

  @property
  def action_space(self):
    return Discrete(len(self._actions))

  def close(self):
    pass  # The emulator has nothing to free before it is collected.

  def reset(self):
    with self.LOCK:
      self._env.reset_game()
    noops = self._random.randint(1, self._noops + 1)
    for _ in range(noops):
      self._env.act(self._actions[0])
      if self._env.game_over():
        with self.LOCK:
          self._env.reset_game()
    self._lives = self._env.lives()
    if self._grayscale:
      self._env.getScreenGrayscale(self._buffers[0])
    else:
      self._env.getScreenRGB(self._buffers[0])
    self._buffers[1].fill(0)
    return self._get_obs()

  def step(self, action):
    total_reward = 0.0
    for step in range(self._action_repeat):
      reward = self._env.act(self._actions[action])
      done = self._env.game_over()
      total_reward += reward
      if self._life_done:
        lives = self._env.lives()
        done = done or lives < self._lives
        self._lives = lives
      if done:
        break
      elif step >= self._action_repeat - 2:
        # Upstream's index is 1 for a repeat of 1, which froze the frame.
        index = step - max(0, self._action_repeat - 2)
        if self._grayscale:
          self._env.getScreenGrayscale(self._buffers[index])
        else:
          self._env.getScreenRGB(self._buffers[index])
    obs = self._get_obs()
    return obs, np.float32(total_reward), done, {}

  def _get_obs(self):
    if self._action_repeat > 1:
      np.maximum(self._buffers[0], self._buffers[1], out=self._buffers[0])
    image = np.array(Image.fromarray(self._buffers[0]).resize(
        self._size, Image.BILINEAR))
    image = np.clip(image, 0, 255).astype(np.uint8)
    image = image[:, :, None] if self._grayscale else image
    return {'image': image}


class Gym:
  """Any Gymnasium environment from pixels: its rgb_array render, resized to
  `size` as Atari's frames are, is the observation; the agent sees nothing
  else. `terminated` ends an episode with discount 0, `truncated` (a time
  limit) with discount 1. Seeded at its first reset; later resets continue
  the environment's own random state, as Gymnasium means them to."""

  def __init__(self, name, size=(64, 64), time_limit=None, seed=None):
    self._env = make_gym_env(name, size, time_limit)
    self._size = size
    self._seed = seed
    space = self._env.action_space
    if type(space).__name__ == 'Discrete':
      self._start = int(space.start)
      self._action_space = Discrete(int(space.n))
    else:
      self._action_space = Box(space.low, space.high, dtype=np.float32)
      self._dtype = space.dtype

  @property
  def observation_space(self):
    return {'image': Box(0, 255, self._size + (3,), dtype=np.uint8)}

  @property
  def action_space(self):
    return self._action_space

  def step(self, action, render=True):
    if isinstance(self._action_space, Discrete):
      action = int(action) + self._start
    else:
      action = np.asarray(action, self._dtype)
    _, reward, terminated, truncated, _ = self._env.step(action)
    obs = {}
    if render:  # ActionRepeat renders only the frame that is observed.
      obs['image'] = self.render()
    done = terminated or truncated
    info = {'discount': np.array(0.0 if terminated else 1.0, np.float32)}
    return obs, np.float32(reward), done, info

  def reset(self):
    seed, self._seed = self._seed, None  # Seeded once, as Gymnasium's own.
    self._env.reset(seed=seed)
    return {'image': self.render()}

  def render(self, *args, **kwargs):
    frame = np.asarray(self._env.render())[..., :3]
    if frame.shape[:2] != self._size:
      frame = np.array(Image.fromarray(frame).resize(
          self._size[::-1], Image.BILINEAR))
    return frame.astype(np.uint8)

  def close(self):
    self._env.close()


class Collect:
  """Records transitions and hands each finished episode to the callbacks.

  Index t of an episode holds observation t, the action that led to it and
  the reward received on arriving there; index 0 is the reset. Wraps an
  `Async`, so that several environments can step at once.
  """

  def __init__(self, env, callbacks=None):
    self._env = env
    self._callbacks = callbacks or ()
    self._episode = None

  def __getattr__(self, name):
    return getattr(self._env, name)

  def step(self, action, blocking=True):
    promise = self._env.step(action, blocking=False)
    receive = lambda: self._step(action, *promise())
    return receive() if blocking else receive

  def _step(self, action, obs, reward, done, info):
    transition = obs.copy()
    transition['action'] = np.asarray(action, np.float32)
    transition['reward'] = np.float32(reward)
    transition['discount'] = np.float32(info.get('discount', 1 - float(done)))
    self._episode.append(transition)
    if done:
      episode = self.flush()
      info['episode'] = episode
      for callback in self._callbacks:
        callback(episode)
    return obs, reward, done, info

  def reset(self, blocking=True):
    promise = self._env.reset(blocking=False)
    receive = lambda: self._reset(promise())
    return receive() if blocking else receive

  def _reset(self, obs):
    transition = obs.copy()
    transition['action'] = np.zeros(self._env.action_space.shape, np.float32)
    transition['reward'] = np.float32(0.0)
    transition['discount'] = np.float32(1.0)
    # Drops any unfinished episode.
    self._episode = [transition]
    return obs

  def flush(self):
    """The unfinished episode so far, if it has a step; None otherwise."""
    episode, self._episode = self._episode, None
    if not episode or len(episode) < 2:
      return None
    return {k: np.stack([t[k] for t in episode]) for k in episode[0]}


class TimeLimit:

  def __init__(self, env, duration):
    self._env = env
    self._duration = duration
    self._step = None

  def __getattr__(self, name):
    return getattr(self._env, name)

  def step(self, action):
    assert self._step is not None, 'Must reset environment.'
    obs, reward, done, info = self._env.step(action)
    self._step += 1
    if self._step >= self._duration:
      done = True
      if 'discount' not in info:
        info['discount'] = np.array(1.0).astype(np.float32)
      self._step = None
    return obs, reward, done, info

  def reset(self):
    self._step = 0
    return self._env.reset()


class ActionRepeat:

  def __init__(self, env, amount):
    self._env = env
    self._amount = amount

  def __getattr__(self, name):
    return getattr(self._env, name)

  def step(self, action):
    done = False
    total_reward = 0
    current_step = 0
    while current_step < self._amount and not done:
      obs, reward, done, info = self._env.step(action, render=False)
      total_reward += reward
      current_step += 1
    obs['image'] = self._env.render()
    return obs, np.float32(total_reward), done, info


class NormalizeActions:

  def __init__(self, env):
    self._env = env
    self._mask = np.logical_and(
        np.isfinite(env.action_space.low),
        np.isfinite(env.action_space.high))
    self._low = np.where(self._mask, env.action_space.low, -1)
    self._high = np.where(self._mask, env.action_space.high, 1)

  def __getattr__(self, name):
    return getattr(self._env, name)

  @property
  def action_space(self):
    low = np.where(self._mask, -np.ones_like(self._low), self._low)
    high = np.where(self._mask, np.ones_like(self._low), self._high)
    return Box(low, high, dtype=np.float32)

  def step(self, action):
    original = (action + 1) / 2 * (self._high - self._low) + self._low
    original = np.where(self._mask, original, action)
    return self._env.step(original)


class OneHotAction:

  def __init__(self, env):
    assert isinstance(env.action_space, Discrete)
    self._env = env

  def __getattr__(self, name):
    return getattr(self._env, name)

  @property
  def action_space(self):
    shape = (self._env.action_space.n,)
    space = Box(low=0, high=1, shape=shape, dtype=np.float32)
    # Without the env, so that the space pickles out of a worker process.
    space.sample = functools.partial(self._sample_action, shape[0])
    return space

  def step(self, action):
    index = np.argmax(action).astype(int)
    reference = np.zeros_like(action)
    reference[index] = 1
    if not np.allclose(reference, action):
      raise ValueError(f'Invalid one-hot action:\n{action}')
    return self._env.step(index)

  def reset(self):
    return self._env.reset()

  @staticmethod
  def _sample_action(actions, random=np.random):
    # The caller's random state, which upstream's left to the Atari env's.
    index = random.randint(0, actions)
    reference = np.zeros(actions, dtype=np.float32)
    reference[index] = 1.0
    return reference


class Async:
  """An environment in this thread ('none'), a thread or a spawned process.

  `step` and `reset` take blocking=False to return a promise, so that several
  environments step at once. A worker that dies raises `WorkerDied`, and the
  next `reset` starts a new one.
  """

  _ACCESS = 1
  _CALL = 2
  _RESULT = 3
  _EXCEPTION = 4
  _CLOSE = 5

  def __init__(self, ctor, strategy='process'):
    self._strategy = strategy
    if strategy not in ('none', 'thread', 'process'):
      raise NotImplementedError(strategy)
    self._ctor = ctor
    self._start()
    self._obs_space = None
    self._action_space = None

  def _start(self):
    self._failed = False
    if self._strategy == 'none':
      self._env = self._ctor()
      return
    if self._strategy == 'process':
      # Spawned, not forked: the child starts without TensorFlow (see the
      # module docstring).
      mp = multiprocessing.get_context('spawn')
    else:
      mp = multiprocessing.dummy
    self._conn, conn = mp.Pipe()
    self._process = mp.Process(target=self._worker, args=(self._ctor, conn))
    self._process.daemon = True  # Never outlives the main process.
    with _main_not_imported():
      self._process.start()

  @property
  def observation_space(self):
    if not self._obs_space:
      self._obs_space = self.__getattr__('observation_space')
    return self._obs_space

  @property
  def action_space(self):
    if not self._action_space:
      self._action_space = self.__getattr__('action_space')
    return self._action_space

  def __getattr__(self, name):
    if name.startswith('_'):  # Not set yet, or asked by pickle: not the env's.
      raise AttributeError(name)
    if self._strategy == 'none':
      return getattr(self._env, name)
    self._send(self._ACCESS, name)
    return self._receive()

  def call(self, name, *args, **kwargs):
    blocking = kwargs.pop('blocking', True)
    if self._strategy == 'none':
      # A promise, called when blocking (upstream returned it uncalled).
      promise = functools.partial(getattr(self._env, name), *args, **kwargs)
    else:
      payload = name, args, kwargs
      self._send(self._CALL, payload)
      promise = self._receive
    return promise() if blocking else promise

  def close(self):
    if self._strategy == 'none':
      try:
        self._env.close()
      except AttributeError:
        pass
      return
    try:
      self._conn.send((self._CLOSE, None))
      self._conn.close()
    except IOError:
      # The connection was already closed.
      pass
    self._process.join(5)
    if self._strategy == 'process' and self._process.is_alive():
      self._process.kill()
      self._process.join()

  def step(self, action, blocking=True):
    return self.call('step', action, blocking=blocking)

  def reset(self, blocking=True):
    if not self.alive:
      print('Environment worker died; starting a new one.', file=sys.stderr)
      self.close()
      self._start()
    return self.call('reset', blocking=blocking)

  @property
  def alive(self):
    # The pipe can report a dead worker before the process is reaped.
    if self._strategy == 'none':
      return True
    return not self._failed and self._process.is_alive()

  def _send(self, message, payload):
    try:
      self._conn.send((message, payload))
    except IOError:
      # The worker is gone. The promise raises, like for a worker that dies
      # during a call, so that callers handle one case.
      self._failed = True

  def _receive(self):
    try:
      if self._failed:
        code = getattr(self._process, 'exitcode', None)
        raise WorkerDied(f'environment worker is gone (exit code {code})')
      # Poll, so that a worker killed mid-call is noticed.
      while not self._conn.poll(0.1):
        if not self._process.is_alive():
          code = getattr(self._process, 'exitcode', None)
          raise WorkerDied(f'environment worker exited (exit code {code})')
      try:
        message, payload = self._conn.recv()
      except (EOFError, OSError) as e:
        raise WorkerDied('environment worker closed its connection') from e
      # Re-raise exceptions in the main process.
      if message == self._EXCEPTION:
        stacktrace = payload
        raise WorkerDied(f'environment worker raised:\n{stacktrace}')
    except WorkerDied:
      self._failed = True
      raise
    if message == self._RESULT:
      return payload
    raise KeyError(f'Received message of unexpected type {message}')

  # Static: spawning pickles the target, and a bound method would pickle the
  # Async with its Process object, which refuses to be pickled.
  @staticmethod
  def _worker(ctor, conn):
    if threading.current_thread() is threading.main_thread():
      # A worker process: signals to the process group reach it too, but the
      # main process decides when workers stop.
      signal.signal(signal.SIGINT, signal.SIG_IGN)
      signal.signal(signal.SIGTERM, signal.SIG_IGN)
    env = None
    try:
      env = ctor()
      while True:
        try:
          # Only block for short times to notice a closed connection.
          if not conn.poll(0.1):
            continue
          message, payload = conn.recv()
        except (EOFError, OSError):
          break  # The main process is gone.
        if message == Async._ACCESS:
          name = payload
          result = getattr(env, name)
          conn.send((Async._RESULT, result))
          continue
        if message == Async._CALL:
          name, args, kwargs = payload
          result = getattr(env, name)(*args, **kwargs)
          conn.send((Async._RESULT, result))
          continue
        if message == Async._CLOSE:
          assert payload is None
          break
        raise KeyError(f'Received message of unknown type {message}')
    except Exception:
      stacktrace = ''.join(traceback.format_exception(*sys.exc_info()))
      print(f'Error in environment process: {stacktrace}')
      try:
        conn.send((Async._EXCEPTION, stacktrace))
      except IOError:
        pass
    finally:
      if env is not None:
        env.close()
      conn.close()


# Added: spaces without gym, task and game names, seeds, the environment
# stacks.

class Box:
  """The part of gym.spaces.Box the agent uses: bounded float actions."""

  def __init__(self, low, high, shape=None, dtype=np.float32):
    shape = np.broadcast(low, high).shape if shape is None else shape
    self.low = np.broadcast_to(low, shape).astype(dtype)
    self.high = np.broadcast_to(high, shape).astype(dtype)
    self.shape = tuple(shape)
    self.dtype = dtype

  def sample(self, random=np.random):
    return random.uniform(self.low, self.high).astype(self.dtype)


class Discrete:
  """The part of gym.spaces.Discrete that OneHotAction uses."""

  def __init__(self, n):
    self.n = n
    self.shape = ()


def dmc_tasks():
  from dm_control import suite
  return suite.ALL_TASKS


def parse_task(name):
  """'<domain>_<task>' in suite names; upstream's 'cup' is ball_in_cup."""
  if name.startswith('cup_'):
    name = 'ball_in_' + name
  tasks = dmc_tasks()
  domains = sorted({domain for domain, _ in tasks})
  # Domains contain underscores (point_mass, ball_in_cup): longest first.
  for domain in sorted(domains, key=len, reverse=True):
    if name.startswith(domain + '_'):
      task = name[len(domain) + 1:]
      if (domain, task) in tasks:
        return domain, task
      valid = ', '.join(t for d, t in tasks if d == domain)
      raise ValueError(
          f"unknown task '{task}' of domain '{domain}'; "
          f'its tasks are: {valid}')
  raise ValueError(
      f"unknown domain in '{name}'; "
      f"valid domains are: {', '.join(domains)}")


def atari_games():
  import ale_py.roms
  return ale_py.roms.get_all_rom_ids()


def parse_game(name):
  """Upstream's game names, which are ALE's ROM names: atari_ms_pacman."""
  games = atari_games()
  if name not in games:
    raise ValueError(
        f"unknown game '{name}'; valid games are: {', '.join(games)}")
  return name


def gym_module():
  try:
    import gymnasium
  except ImportError:
    raise ValueError(
        "gym_ tasks need Gymnasium: pip install -e '.[gym]'") from None
  return gymnasium


def make_gym_env(name, size=(64, 64), time_limit=None):
  """Gymnasium's environment `name` rendering rgb_array frames; ValueError,
  in one line, for what cannot be made."""
  gym = gym_module()
  module, _, env_id = name.rpartition(':')
  if env_id.startswith('ALE/') and not module:
    import ale_py  # Registers the ALE's ids; a dependency already.
    gym.register_envs(ale_py)
  kwargs = dict(render_mode='rgb_array')
  if time_limit:  # --time_limit replaces the registered limit.
    kwargs['max_episode_steps'] = time_limit
  try:
    try:  # MuJoCo's environments render at the size itself: faster.
      env = gym.make(name, width=size[1], height=size[0], **kwargs)
    except TypeError as e:
      if 'width' not in str(e) and 'height' not in str(e):
        raise
      env = gym.make(name, **kwargs)
  except Exception as e:  # Constructors are anyone's code: any error.
    raise ValueError(_cannot_make(gym, name, e)) from None
  modes = env.metadata.get('render_modes') or []
  if 'rgb_array' not in modes:
    env.close()
    raise ValueError(
        f"Gymnasium's {name} cannot render rgb_array frames (its render "
        f"modes: {', '.join(modes) or 'none'})")
  space = env.action_space
  if type(space).__name__ not in ('Box', 'Discrete'):
    env.close()
    raise ValueError(
        f"Gymnasium's {name} has actions {space}: only Box and Discrete "
        'action spaces are supported')
  return env


def _cannot_make(gym, name, error):
  """The one line for an error of gym.make: what to do, where it is known,
  else the error's type and message."""
  module, _, env_id = name.rpartition(':')
  unknown = (
      gym.error.NameNotFound, gym.error.VersionNotFound,
      gym.error.NamespaceNotFound, gym.error.UnregisteredEnv)
  # Gymnasium's error for the id's own module has no name; an entry point's
  # or a constructor's names the module that is missing.
  missing = isinstance(error, ModuleNotFoundError) and (error.name or module)
  if missing:
    return (
        f"cannot import module '{missing}' for Gymnasium id '{name}' "
        f'({_one_line(error)})')
  if isinstance(error, gym.error.DependencyNotInstalled):
    return (
        f"Gymnasium's {name} needs a package that is not installed: "
        f'{_one_line(error)}')
  if isinstance(error, unknown):
    matches = difflib.get_close_matches(env_id, gym.registry.keys(), 5)
    return (
        f"unknown Gymnasium id '{name}'; close matches: "
        f"{', '.join(matches) or 'none'}")
  return f"Gymnasium cannot make '{name}': {_cause(error)}"


def _one_line(error):
  """An exception's message on one line, as the command line's error is."""
  return ' '.join(str(error).split())


def _cause(error):
  """An exception's type and message, on one line."""
  text = _one_line(error)
  return f'{type(error).__name__}: {text}' if text else type(error).__name__


@functools.lru_cache(maxsize=None)
def parse_gym(name):
  """Whether the Gymnasium environment's actions are 'discrete' or
  'continuous'; ValueError for an id that cannot be made, reset or render
  RGB frames, so that the command line refuses it before a run starts."""
  env = make_gym_env(name, time_limit=None)
  try:
    kind = type(env.action_space).__name__
    _first(name, 'reset', lambda: env.reset(seed=0))
    frame = _first(name, 'render', env.render)
  finally:
    env.close()
  shape = np.shape(frame)
  if len(shape) != 3 or shape[-1] < 3:
    got = 'None' if frame is None else f'arrays of shape {shape}'
    raise ValueError(
        f"Gymnasium's {name} renders {got}, not RGB frames of shape "
        '(height, width, 3)')
  return 'discrete' if kind == 'Discrete' else 'continuous'


def _first(name, what, call):
  """call(), the environment's first `what`; any error as a ValueError."""
  try:
    return call()
  except Exception as e:  # The environment's own code: any error.
    raise ValueError(
        f"Gymnasium's {name} fails at its first {what}: {_cause(e)}") from None


# Environments of one run draw apart: training, evaluation, and the final
# evaluation of runs/evaluate.py.
SEED_ROLES = {'train': 0, 'test': 1, 'final': 2}


def env_seed(seed, role, *index):
  """A reproducible seed, distinct for every run seed, role and index."""
  entropy = [seed, SEED_ROLES[role], *index]
  return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def make_dmc(task, action_repeat, time_limit, seed, size=(64, 64)):
  """The environment below episode collection, built where it runs."""
  env = DeepMindControl(task, size, seed=seed)
  env = ActionRepeat(env, action_repeat)
  env = NormalizeActions(env)
  env = TimeLimit(env, time_limit // action_repeat)
  return env


def make_atari(
    task, action_repeat, time_limit, seed, size=(64, 64), grayscale=False):
  """Upstream's Atari branch of make_env: frames skipped by the wrapper,
  life loss ends an episode, sticky actions, one-hot actions."""
  env = Atari(
      task, action_repeat, size, grayscale=grayscale, life_done=True,
      sticky_actions=True, seed=seed)
  env = OneHotAction(env)
  env = TimeLimit(env, time_limit // action_repeat)
  return env


def make_gym(task, action_repeat, time_limit, seed, size=(64, 64)):
  """A Gymnasium environment from pixels, its actions normalized (Box) or
  one-hot (Discrete), as the other suites'."""
  env = Gym(task, size, time_limit, seed=seed)
  env = ActionRepeat(env, action_repeat)
  if isinstance(env.action_space, Discrete):
    env = OneHotAction(env)
  else:
    env = NormalizeActions(env)
  env = TimeLimit(env, time_limit // action_repeat)
  return env


@contextlib.contextmanager
def _main_not_imported():
  """Spawned processes import the main script, and with it TensorFlow, unless
  its module spec is named __main__; a worker needs only this module."""
  main = sys.modules['__main__']
  spec = getattr(main, '__spec__', None)
  main.__spec__ = importlib.machinery.ModuleSpec('__main__', None)
  try:
    yield
  finally:
    main.__spec__ = spec


class WorkerDied(RuntimeError):
  """An environment worker exited or raised; its episode in flight is lost."""
