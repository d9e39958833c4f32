"""Stand-in environments for wrapper tests; numpy only, so that spawned
workers can import them."""

import os
import time

import numpy as np

import wrappers


class CountingEnv:
  """Rewards 1 per step, ends after `length` steps, counts renders; its
  images show the step."""

  def __init__(self, length=10):
    self.length = length
    self.renders = 0
    self.steps = 0
    self.actions = []

  @property
  def action_space(self):
    return wrappers.Box(-2 * np.ones(2), 4 * np.ones(2))

  @property
  def observation_space(self):
    return {'image': wrappers.Box(0, 255, (4, 4, 3), dtype=np.uint8)}

  def reset(self):
    self.steps = 0
    return {'image': self.render()}

  def step(self, action, render=True):
    self.steps += 1
    self.actions.append(np.array(action))
    done = self.steps >= self.length
    obs = {'image': self.render()} if render else {}
    info = {'discount': np.float32(0.0 if done else 1.0)}
    return obs, np.float32(1.0), done, info

  def render(self):
    self.renders += 1
    return np.full((4, 4, 3), self.steps % 256, np.uint8)

  def pid(self):
    return os.getpid()

  def sleep(self, seconds):
    time.sleep(seconds)

  def close(self):
    pass


def make_counting(length=10):
  return wrappers.TimeLimit(CountingEnv(length), 1000)
