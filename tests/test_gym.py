"""Gymnasium tasks from pixels (--task gym_<id>): Gymnasium's MuJoCo
HalfCheetah-v5 (continuous) and CartPole-v1 (discrete), and environments
registered here and in gym_fakes.py, to be refused or to check the wrapper."""

import importlib.util
import json

import numpy as np
import pytest

import tools
import wrappers
import dreamer
from helpers import (
    TESTS, TINY, assert_trained, flags, last_line, read_metrics, run_script)

gymnasium = pytest.importorskip('gymnasium')

from gym_fakes import Fake  # noqa: E402  (registers its ids; needs gymnasium)


class _HumanOnly(Fake):
  metadata = {'render_modes': ['human']}


def _needs_a_package(**kwargs):
  raise gymnasium.error.DependencyNotInstalled(
      'Box2D is not installed, you can install it by run `pip install '
      'swig` followed by `pip install "gymnasium[box2d]"`')


gymnasium.register('TestHumanOnly-v0', entry_point=_HumanOnly)
gymnasium.register('TestNeedsPackage-v0', entry_point=_needs_a_package)
gymnasium.register(
    'TestMultiDiscrete-v0', entry_point=Fake,
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


def inner(env):
  """The Gymnasium environment itself, under this project's wrappers and
  Gymnasium's."""
  while not isinstance(env, wrappers.Gym):
    env = env._env
  return env._env.unwrapped


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


def test_discrete_actions_are_offset_by_the_spaces_start():
  env = make('TestStartsAtFive-v0')  # Discrete(3, start=5).
  try:
    assert env.action_space.shape == (3,)
    env.reset()
    for index in range(3):
      env.step(np.eye(3, dtype=np.float32)[index])
    assert inner(env).actions == [5, 6, 7]
  finally:
    env.close()


def test_only_the_first_reset_is_seeded():
  env = make('TestFake-v0', time_limit=2, seed=7)
  try:
    for _ in range(3):
      rollout(env, [np.zeros(2, np.float32)] * 2)
    # Later episodes continue the environment's random state.
    assert inner(env).seeds == [7, None, None]
  finally:
    env.close()


@pytest.mark.parametrize('repeat, dones', [
    (1, [False, False, True]), (2, [False, True])])
def test_gymnasiums_own_truncation_ends_an_episode_with_discount_one(
    repeat, dones):
  # The environment truncates after 3 of its steps, long before --time_limit.
  env = make('TestTruncates-v0', repeat=repeat, time_limit=100)
  try:
    for _ in range(2):  # And again after a reset.
      _, _, ended, discounts = rollout(env, [np.zeros(2, np.float32)] * 9)
      assert ended == dones and discounts == [1.0] * len(dones)
      assert inner(env).steps == 3
  finally:
    env.close()


def test_this_projects_time_limit_ends_an_episode_with_discount_one():
  # --time_limit 5 at action repeat 2: 2 agent steps, 4 env steps, so
  # Gymnasium's limit of 5 env steps never fires; the cut is no termination.
  env = make('TestFake-v0', repeat=2, time_limit=5)
  try:
    for _ in range(2):  # Gymnasium's count restarts with the episode.
      _, _, dones, discounts = rollout(env, [np.zeros(2, np.float32)] * 9)
      assert dones == [False, True] and discounts == [1.0, 1.0]
      assert inner(env).steps == 4
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


@pytest.mark.parametrize('task', ['gym_CartPole-v1', 'gym_Pendulum-v1'])
def test_gym_tasks_learn_terminations_unless_told_not_to(task, tmp_path):
  parse = lambda *argv: dreamer.parse_flags(
      dreamer.define_config(), ['--task', task, *argv])
  assert parse().pcont is True
  config = parse('--pcont', 'False', '--logdir', str(tmp_path))
  assert config.pcont is False
  record = dreamer.describe_run(config, dreamer.Dreamer)
  assert record['config']['pcont'] is False  # What the run used.
  assert 'gym_' in dreamer.describe_config()['pcont'][1]  # Its --help.


def test_a_gym_run_recorded_without_pcont_is_not_flipped_on_resume(
    tmp_path):
  # A run started before pcont was Gymnasium's default recorded False.
  argv = ['--task', 'gym_CartPole-v1', '--logdir', str(tmp_path)]
  config = dreamer.parse_flags(dreamer.define_config(), argv)
  old = dict(config, pcont=False)
  record = dreamer.describe_run(tools.AttrDict(old), dreamer.Dreamer)
  (tmp_path / 'config.json').write_text(json.dumps(record))
  with pytest.raises(tools.ConfigError, match='--pcont False there, True'):
    dreamer.check_record(config, dreamer.Dreamer)
  config = dreamer.parse_flags(
      dreamer.define_config(), [*argv, '--pcont', 'False'])
  assert not dreamer.check_record(config, dreamer.Dreamer)['resumes'][0][
      'changed']


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
    # Any error of an environment's constructor, first reset or first render
    # (the task is checked before a run starts): its type and message.
    ('gym_TestMakeFails-v0', "unknown task 'gym_TestMakeFails-v0': Gymnasium "
     "cannot make 'TestMakeFails-v0': OSError: libsim.so: cannot open shared "
     'object file retry'),
    ('gym_TestResetFails-v0', "Gymnasium's TestResetFails-v0 fails at its "
     'first reset: RuntimeError: no license for the simulator see its manual'),
    ('gym_TestRenderFails-v0', "Gymnasium's TestRenderFails-v0 fails at its "
     'first render: ValueError: no rendering context tried egl'),
    ('gym_TestRendersNone-v0', "Gymnasium's TestRendersNone-v0 renders None, "
     'not RGB frames of shape (height, width, 3)'),
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
  # Gymnasium's default, recorded as used and kept by the resume.
  record = json.loads((logdir / 'config.json').read_text())
  assert record['config']['pcont'] is True
  assert 'pcont' not in record['resumes'][-1]['changed']
  assert tools.checkpoint_step(logdir / 'variables.pkl') >= 240
  assert 'XDG_RUNTIME_DIR' not in process.stderr  # No display looked for.


@pytest.mark.slow
def test_a_gym_run_is_evaluated_from_its_logdir(tmp_path):
  logdir = tmp_path / 'run'
  process = run_script(
      'dreamer.py', *flags(**dict(TINY, task='gym_CartPole-v1', prefill=40,
                                  action_repeat=1)), f'--logdir={logdir}')
  assert process.returncode == 0, process.stderr[-3000:]
  # The record holds the default used; the evaluation builds the agent
  # from it, discount predictor and all, and loads the checkpoint.
  record = json.loads((logdir / 'config.json').read_text())
  assert record['config']['pcont'] is True
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


@pytest.mark.slow
@pytest.mark.parametrize('task, cause', [
    # Gymnasium's compatibility environment needs shimmy.
    ('gym_GymV26Environment-v0', 'ImportError: To use the gym compatibility '
     'environments, run `pip install "shimmy[gym-v21]"`'),
    ('gym_gym_fakes:TestResetFails-v0', 'fails at its first reset: '
     'RuntimeError: no license for the simulator see its manual'),
])
def test_an_environment_that_fails_is_refused_in_one_line(
    task, cause, tmp_path):
  if 'GymV26' in task and importlib.util.find_spec('shimmy'):
    pytest.skip('shimmy is installed: the environment can be made')
  process = run_script(
      'dreamer.py', f'--task={task}', f'--logdir={tmp_path / "run"}',
      env={'PYTHONPATH': str(TESTS)})  # Where gym_fakes registers its ids.
  assert process.returncode == 1, process.stderr[-3000:]
  line = last_line(process)
  assert line.startswith(f"dreamer.py: error: unknown task '{task}': ")
  assert cause in line and 'Traceback' not in process.stderr, line
  assert not (tmp_path / 'run').exists()  # Refused before anything ran.


def test_ones_own_environment_from_its_module(tmp_path, monkeypatch):
  (tmp_path / 'mylab_envs.py').write_text(
      'import gymnasium\n'
      'from gym_fakes import Fake\n'
      "gymnasium.register('Reach-v0', entry_point=Fake)\n")
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


def test_a_missing_entry_point_module_is_named(tmp_path, monkeypatch):
  # The id's module imports; the module of its entry point does not.
  (tmp_path / 'mylab_broken.py').write_text(
      'import gymnasium\n'
      "gymnasium.register('Lift-v0', entry_point='mylab_sim:LiftEnv')\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  with pytest.raises(SystemExit) as error:
    dreamer.parse_flags(
        dreamer.define_config(), ['--task', 'gym_mylab_broken:Lift-v0'])
  assert "cannot import module 'mylab_sim' for Gymnasium id" in str(
      error.value)
