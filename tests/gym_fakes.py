"""Gymnasium environments for tests/test_gym.py, registered on import: a
script run with tests/ on its PYTHONPATH names them gym_gym_fakes:<id>."""

import gymnasium
import numpy as np


class Fake(gymnasium.Env):
  """A tiny environment whose spaces and render modes the tests choose; it
  keeps the seeds of its resets and the actions it is sent, and truncates
  its episodes itself after `truncate` steps, if given."""

  metadata = {'render_modes': ['rgb_array'], 'render_fps': 30}

  def __init__(self, render_mode=None, action_space=None, truncate=None):
    self.render_mode = render_mode
    self.action_space = action_space or gymnasium.spaces.Box(-1, 1, (2,))
    self.observation_space = gymnasium.spaces.Box(-1, 1, (1,))
    self.truncate = truncate
    self.seeds, self.actions, self.steps = [], [], 0

  def reset(self, seed=None, options=None):
    super().reset(seed=seed)
    self.seeds.append(seed)
    self.steps = 0
    return np.zeros(1, np.float32), {}

  def step(self, action):
    self.actions.append(action)
    self.steps += 1
    truncated = self.truncate is not None and self.steps >= self.truncate
    return np.zeros(1, np.float32), 0.0, False, truncated, {}

  def render(self):
    return np.zeros((8, 8, 3), np.uint8)


# Messages of two lines: the command line's error must still be one.
class ResetFails(Fake):

  def reset(self, seed=None, options=None):
    raise RuntimeError('no license for the simulator\nsee its manual')


class RenderFails(Fake):

  def render(self):
    raise ValueError('no rendering context\ntried egl')


class RendersNone(Fake):

  def render(self):
    return None


def make_fails(**kwargs):
  raise OSError('libsim.so: cannot open shared object file\nretry')


gymnasium.register('TestFake-v0', entry_point=Fake)
gymnasium.register('TestMakeFails-v0', entry_point=make_fails)
gymnasium.register('TestResetFails-v0', entry_point=ResetFails)
gymnasium.register('TestRenderFails-v0', entry_point=RenderFails)
gymnasium.register('TestRendersNone-v0', entry_point=RendersNone)
gymnasium.register(
    'TestTruncates-v0', entry_point=Fake, kwargs=dict(truncate=3))
gymnasium.register(
    'TestStartsAtFive-v0', entry_point=Fake,
    kwargs=dict(action_space=gymnasium.spaces.Discrete(3, start=5)))
