import functools

import numpy as np
import pytest

import fakes
import wrappers


def test_action_repeat_sums_rewards_renders_once_and_stops_at_done():
  inner = fakes.CountingEnv(length=5)
  env = wrappers.ActionRepeat(inner, 3)
  env.reset()
  inner.renders = 0
  obs, reward, done, _ = env.step(np.zeros(2))
  assert (reward, done, inner.steps, inner.renders) == (3.0, False, 3, 1)
  assert obs['image'][0, 0, 0] == 3  # The frame after the last repeat.
  obs, reward, done, _ = env.step(np.zeros(2))
  assert (reward, done, inner.steps, inner.renders) == (2.0, True, 5, 2)


def test_time_limit_ends_episode_without_terminal_discount():
  env = wrappers.TimeLimit(fakes.CountingEnv(length=100), 3)
  env.reset()
  results = [env.step(np.zeros(2)) for _ in range(3)]
  assert [r[2] for r in results] == [False, False, True]
  assert results[-1][3]['discount'] == 1.0
  with pytest.raises(AssertionError, match='reset'):
    env.step(np.zeros(2))
  env.reset()
  assert env.step(np.zeros(2))[2] is False


def test_normalize_actions_maps_unit_box_to_bounds():
  inner = fakes.CountingEnv()
  env = wrappers.NormalizeActions(inner)
  np.testing.assert_array_equal(env.action_space.low, [-1, -1])
  np.testing.assert_array_equal(env.action_space.high, [1, 1])
  env.reset()
  pairs = (([-1, 1], [-2, 4]), ([0, 0], [1, 1]), ([0.5, -0.5], [2.5, -0.5]))
  for action, expected in pairs:
    env.step(np.array(action, np.float32))
    np.testing.assert_allclose(inner.actions[-1], expected)


@pytest.mark.parametrize('strategy', ['none', 'thread', 'process'])
def test_collect_records_episodes_through_async(strategy):
  episodes = []
  env = wrappers.Collect(
      wrappers.Async(functools.partial(fakes.make_counting, 4), strategy),
      [episodes.append])
  try:
    for _ in range(2):
      env.reset()
      done = False
      while not done:
        promise = env.step(np.ones(2, np.float32), blocking=False)
        _, _, done, info = promise()
    assert len(episodes) == 2 and 'episode' in info
    episode = episodes[0]
    assert len(episode['reward']) == 5  # The reset step and 4 steps.
    np.testing.assert_array_equal(episode['action'][0], [0, 0])
    np.testing.assert_array_equal(episode['reward'], [0, 1, 1, 1, 1])
    np.testing.assert_array_equal(episode['discount'], [1, 1, 1, 1, 0])
    np.testing.assert_array_equal(episode['image'][:, 0, 0, 0], [0, 1, 2, 3, 4])
    assert episode['image'].dtype == np.uint8
    assert episode['reward'].dtype == np.float32
  finally:
    env.close()


@pytest.mark.parametrize('idle', [False, True])
def test_async_process_reports_death_through_the_promise(idle):
  import os
  import time
  env = wrappers.Async(functools.partial(fakes.make_counting, 4), 'process')
  try:
    pid = env.call('pid')
    assert pid != os.getpid()
    env.reset()
    if idle:  # Dead before the call is sent: sending must not raise.
      os.kill(pid, 9)
      time.sleep(0.5)
      promise = env.step(np.zeros(2), blocking=False)
    else:  # Dies while the call is in flight.
      env.call('sleep', 1.0, blocking=False)
      promise = env.step(np.zeros(2), blocking=False)
      time.sleep(0.3)
      os.kill(pid, 9)
    with pytest.raises(wrappers.WorkerDied):
      promise()
    assert not env.alive
    env.reset()  # Starts a new worker.
    assert env.call('pid') != pid
    assert env.step(np.zeros(2))[1] == 1.0
  finally:
    env.close()


def test_parse_task():
  assert wrappers.parse_task('walker_walk') == ('walker', 'walk')
  assert wrappers.parse_task('cartpole_swingup_sparse') == (
      'cartpole', 'swingup_sparse')
  assert wrappers.parse_task('point_mass_easy') == ('point_mass', 'easy')
  assert wrappers.parse_task('cup_catch') == ('ball_in_cup', 'catch')
  with pytest.raises(
      ValueError, match='valid domains are: acrobot, ball_in_cup'):
    wrappers.parse_task('walkerr_walk')
  with pytest.raises(ValueError, match="its tasks are: .*walk"):
    wrappers.parse_task('walker_fly')


def test_dmc_observations_have_fixed_dtypes():
  env = wrappers.make_dmc(
      'cartpole_balance', action_repeat=2, time_limit=6, seed=0)
  try:
    obs = env.reset()
    assert obs['image'].shape == (64, 64, 3) and obs['image'].dtype == np.uint8
    rewards = []
    for _ in range(3):
      obs, reward, done, info = env.step(np.zeros(1, np.float32))
      assert obs['image'].dtype == np.uint8 and isinstance(reward, np.float32)
      assert info['discount'].dtype == np.float32
      rewards.append(reward)
    assert done  # time_limit 6 with repeat 2 is three agent steps.
    assert 0 < sum(rewards) <= 6
  finally:
    env.close()


def test_dmc_seed_reproduces_episodes():
  images = []
  for _ in range(2):
    env = wrappers.make_dmc('cartpole_swingup', 2, 20, seed=3)
    images.append(env.reset()['image'])
    env.close()
  np.testing.assert_array_equal(*images)


def test_env_seeds_differ_by_role_index_and_run_seed():
  seeds = [
      wrappers.env_seed(s, role, i) for s in (0, 1)
      for role in ('train', 'test') for i in (0, 1)]
  seeds += [wrappers.env_seed(s, 'final') for s in (0, 1)]
  assert len(set(seeds)) == len(seeds)
  assert wrappers.env_seed(0, 'test', 1) == wrappers.env_seed(0, 'test', 1)
  with pytest.raises(KeyError):
    wrappers.env_seed(0, 'eval')
