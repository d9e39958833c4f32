"""Gymnasium tasks from pixels (--task gym_<id>): Gymnasium's MuJoCo
HalfCheetah-v5 (continuous) and CartPole-v1 (discrete), and environments
registered here to be refused."""

import numpy as np
import pytest

import tools
import wrappers
import dreamer
from helpers import (
    TINY, assert_trained, flags, last_line, read_metrics, run_script)

gymnasium = pytest.importorskip('gymnasium')


class _Fake(gymnasium.Env):
  """A tiny environment whose spaces and render modes the tests choose."""

  metadata = {'render_modes': ['rgb_array']}

  def __init__(self, render_mode=None, action_space=None):
    self.render_mode = render_mode
    self.action_space = action_space or gymnasium.spaces.Box(-1, 1, (2,))
    self.observation_space = gymnasium.spaces.Box(-1, 1, (1,))

  def reset(self, seed=None, options=None):
    super().reset(seed=seed)
    return np.zeros(1, np.float32), {}

  def step(self, action):
    return np.zeros(1, np.float32), 0.0, False, False, {}

  def render(self):
    return np.zeros((8, 8, 3), np.uint8)


class _HumanOnly(_Fake):
  metadata = {'render_modes': ['human']}


def _needs_a_package(**kwargs):
  raise gymnasium.error.DependencyNotInstalled(
      'Box2D is not installed, you can install it by run `pip install '
      'swig` followed by `pip install "gymnasium[box2d]"`')


gymnasium.register('TestHumanOnly-v0', entry_point=_HumanOnly)
gymnasium.register('TestNeedsPackage-v0', entry_point=_needs_a_package)
gymnasium.register(
    'TestMultiDiscrete-v0', entry_point=_Fake,
    kwargs=dict(action_space=gymnasium.spaces.MultiDiscrete([2, 3])))


def make(task, repeat=1, time_limit=1000, seed=0):
  return wrappers.make_gym(task, repeat, time_limit, seed)


def rollout(env, actions):
  """Observations, rewards, dones and discounts of a run of actions."""
  obs = [env.reset()['image']]
  rewards, dones, discounts = [], [], []
  for action in actions:
    o, reward, done, info = env.step(action)
    obs.append(o['image'])
    rewards.append(reward)
    dones.append(done)
    discounts.append(float(info['discount']))
    if done:
      break
  return np.stack(obs), rewards, dones, discounts


def test_half_cheetah_from_pixels_with_normalized_actions():
  env = make('HalfCheetah-v5', repeat=2)
  try:
    assert env.observation_space['image'].shape == (64, 64, 3)
    space = env.action_space
    assert space.shape == (6,)
    np.testing.assert_array_equal(space.low, -1)
    np.testing.assert_array_equal(space.high, 1)
    random = np.random.RandomState(0)
    obs, rewards, _, discounts = rollout(
        env, [space.sample(random) for _ in range(5)])
    assert obs.shape == (6, 64, 64, 3) and obs.dtype == np.uint8
    assert obs.std() > 5  # A rendered scene, not a blank frame.
    assert np.abs(obs[-1].astype(int) - obs[0]).mean() > 0.1  # It moves.
    assert all(np.isfinite(rewards)) and discounts == [1.0] * 5
  finally:
    env.close()


def test_box_actions_are_mapped_from_minus_one_to_one():
  env = wrappers.Gym('Pendulum-v1', time_limit=100, seed=0)
  try:
    np.testing.assert_array_equal(env.action_space.low, [-2])
    np.testing.assert_array_equal(env.action_space.high, [2])
    normalized = wrappers.NormalizeActions(env)
    np.testing.assert_array_equal(normalized.action_space.low, [-1])
    np.testing.assert_array_equal(normalized.action_space.high, [1])
    sent = []
    step = env._env.step
    env._env.step = lambda action: sent.append(action) or step(action)
    normalized.reset()
    normalized.step(np.array([0.5], np.float32))
    np.testing.assert_allclose(sent[-1], [1.0])  # 0.5 of [-2, 2].
  finally:
    env.close()


def test_same_seed_same_first_frames():
  def first_frames(seed):
    env = make('HalfCheetah-v5', seed=seed)
    try:
      return rollout(env, [np.zeros(6, np.float32)] * 3)[0]
    finally:
      env.close()
  np.testing.assert_array_equal(first_frames(1), first_frames(1))
  assert np.any(first_frames(1) != first_frames(2))


def test_cart_pole_acts_one_hot_and_ends_as_gymnasium_means():
  env = make('CartPole-v1', time_limit=500)
  try:
    space = env.action_space
    assert space.shape == (2,)
    assert env.observation_space['image'].shape == (64, 64, 3)
    with pytest.raises(ValueError, match='Invalid one-hot action'):
      env.reset()
      env.step(np.array([0.5, 0.5], np.float32))
    # Always pushing left topples the pole: terminated, discount 0.
    obs, _, dones, discounts = rollout(
        env, [np.array([1, 0], np.float32)] * 100)
    assert dones[-1] and len(dones) < 100
    assert discounts[:-1] == [1.0] * (len(dones) - 1) and discounts[-1] == 0
    assert obs.std() > 5
  finally:
    env.close()
  # A time limit first: truncated, discount 1.
  env = make('CartPole-v1', time_limit=3)
  try:
    _, _, dones, discounts = rollout(env, [np.array([1, 0], np.float32)] * 5)
    assert dones == [False, False, True] and discounts == [1.0] * 3
  finally:
    env.close()


def test_the_discrete_defaults_switch_and_mismatches_are_refused():
  config = dreamer.parse_flags(
      dreamer.define_config(), ['--task', 'gym_CartPole-v1'])
  assert (config.action_dist, config.expl) == ('onehot', 'epsilon_greedy')
  assert config.action_repeat == 2  # Only the action keys switch.
  config = dreamer.parse_flags(
      dreamer.define_config(), ['--task', 'gym_Pendulum-v1'])
  assert (config.action_dist, config.expl) == (
      'tanh_normal', 'additive_gaussian')
  with pytest.raises(SystemExit, match=(
      'error: --action_dist tanh_normal cannot act in '
      'gym_CartPole-v1, whose actions are discrete')):
    dreamer.parse_flags(dreamer.define_config(), [
        '--task', 'gym_CartPole-v1', '--action_dist', 'tanh_normal'])


@pytest.mark.parametrize('task, message', [
    ('gym_HalfCheetah-v9', "unknown task 'gym_HalfCheetah-v9': unknown "
     "Gymnasium id 'HalfCheetah-v9'; close matches: HalfCheetah-v5"),
    ('gym_CartPol-v1', "unknown Gymnasium id 'CartPol-v1'; close matches: "
     'CartPole-v1'),
    ('gym_TestHumanOnly-v0', "Gymnasium's TestHumanOnly-v0 cannot render "
     "rgb_array frames (its render modes: human)"),
    ('gym_TestNeedsPackage-v0', "Gymnasium's TestNeedsPackage-v0 needs a "
     'package that is not installed: Box2D is not installed'),
    ('gym_TestMultiDiscrete-v0', "Gymnasium's TestMultiDiscrete-v0 has "
     'actions MultiDiscrete([2 3]): only Box and Discrete'),
    ('gym_nomodule:Foo-v0', "cannot import module 'nomodule' for Gymnasium "
     "id 'nomodule:Foo-v0'"),
])
def test_bad_tasks_are_refused_in_one_line(task, message):
  with pytest.raises(SystemExit) as error:
    dreamer.parse_flags(dreamer.define_config(), ['--task', task])
  text = str(error.value)
  assert message in text and '\n' not in text, text


@pytest.mark.slow
@pytest.mark.parametrize('script, task', [
    ('dreamer.py', 'gym_HalfCheetah-v5'), ('bird.py', 'gym_CartPole-v1'),
    ('idm.py', 'gym_CartPole-v1')])
def test_tiny_runs_train_and_resume(script, task, tmp_path):
  logdir = tmp_path / 'run'
  config = dict(TINY, task=task, action_repeat=1, prefill=40)
  if script == 'idm.py':
    config['evaluator_units'] = 16
  command = [*flags(**config), f'--logdir={logdir}']
  process = run_script(script, *command)
  assert_trained(process, logdir)
  episodes = [
      tools.load_episode(f) for f in tools.episode_files(logdir / 'episodes')]
  for episode in episodes:
    assert episode['image'].shape[1:] == (64, 64, 3)
    assert set(episode) == set(tools.EPISODE_KEYS)  # The image only.
  if task == 'gym_CartPole-v1':
    # Random and early policies topple the pole: discount 0 at the end.
    assert any(e['discount'][-1] == 0 for e in episodes)
    np.testing.assert_array_equal(
        np.concatenate([e['action'][1:].sum(-1) for e in episodes]), 1)
  step = tools.checkpoint_step(logdir / 'variables.pkl')
  assert step >= 160
  process = run_script(script, *command, '--steps=240')
  assert process.returncode == 0, process.stderr[-3000:]
  assert f'Loaded checkpoint at step {step}.' in process.stdout
  assert tools.checkpoint_step(logdir / 'variables.pkl') >= 240
  assert 'XDG_RUNTIME_DIR' not in process.stderr  # No display looked for.


@pytest.mark.slow
def test_a_gym_run_is_evaluated_from_its_logdir(tmp_path):
  logdir = tmp_path / 'run'
  process = run_script(
      'dreamer.py', *flags(**dict(TINY, task='gym_CartPole-v1', prefill=40,
                                  action_repeat=1)), f'--logdir={logdir}')
  assert process.returncode == 0, process.stderr[-3000:]
  process = run_script('runs/evaluate.py', str(logdir), '--episodes', '2')
  assert process.returncode == 0, process.stderr[-3000:]
  assert len(read_metrics(logdir, 'final.jsonl')) == 2


@pytest.mark.slow
def test_without_gymnasium_the_task_says_how_to_install_it(tmp_path):
  # A directory that shadows the package with one that cannot import.
  shadow = tmp_path / 'gymnasium'
  shadow.mkdir()
  (shadow / '__init__.py').write_text(
      "raise ImportError('No module named gymnasium')\n")
  process = run_script(
      'dreamer.py', '--task=gym_CartPole-v1', f'--logdir={tmp_path / "r"}',
      env={'PYTHONPATH': str(tmp_path)})
  assert process.returncode == 1
  assert last_line(process) == (
      "dreamer.py: error: unknown task 'gym_CartPole-v1': gym_ tasks need "
      "Gymnasium: pip install -e '.[gym]'")


def test_ones_own_environment_from_its_module(tmp_path, monkeypatch):
  (tmp_path / 'mylab_envs.py').write_text(
      'import gymnasium\n'
      'from test_gym import _Fake\n'
      "gymnasium.register('Reach-v0', entry_point=_Fake)\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  config = dreamer.parse_flags(
      dreamer.define_config(), ['--task', 'gym_mylab_envs:Reach-v0'])
  assert config.action_dist == 'tanh_normal'  # Its Box actions.
  env = make('mylab_envs:Reach-v0', time_limit=4)
  try:
    obs, _, dones, discounts = rollout(env, [np.zeros(2, np.float32)] * 9)
    assert obs.shape == (5, 64, 64, 3)  # Its 8x8 frames, resized.
    assert dones == [False] * 3 + [True] and discounts == [1.0] * 4
  finally:
    env.close()
