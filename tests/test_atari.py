"""Atari: the wrapper on real ROMs, one-hot actions, epsilon-greedy, runs."""

import functools
import types

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import dreamer
import tools
import wrappers
from helpers import TINY, assert_trained, flags, read_metrics, run_script

# Forty agent steps per episode, four frames each.
ATARI_TINY = dict(
    TINY, task='atari_pong', time_limit=160, prefill=160, steps=320,
    eval_every=160, log_every=160, train_every=160)


def test_frames_are_skipped_and_the_last_two_max_pooled():
  env = wrappers.Atari(
      'pong', 4, (64, 64), grayscale=False, sticky_actions=False, seed=5)
  reference = wrappers.Atari(
      'pong', 1, (64, 64), grayscale=False, sticky_actions=False, seed=5)
  env.reset(), reference.reset()
  ale = reference._env
  random, flicker = np.random.RandomState(0), 0
  for _ in range(100):
    action = random.randint(env.action_space.n)
    obs, reward, done, _ = env.step(action)
    frames, total = [], 0.0
    for _ in range(4):
      total += ale.act(reference._actions[action])
      frames.append(ale.getScreenRGB())
    pooled = np.maximum(frames[2], frames[3])
    expected = np.array(
        Image.fromarray(pooled).resize((64, 64), Image.BILINEAR))
    np.testing.assert_array_equal(obs['image'], expected)
    assert reward == total and not done
    flicker += (pooled != frames[3]).any()
  assert flicker > 10  # Steps where the pooling shows, e.g. the ball.
  assert obs['image'].shape == (64, 64, 3) and obs['image'].dtype == np.uint8


def test_without_frame_skip_each_step_observes_its_frame():
  env = wrappers.Atari('pong', 1, (64, 64), grayscale=False, seed=5)
  env.reset()
  for _ in range(30):
    obs, _, _, _ = env.step(2)
    frame = Image.fromarray(env._env.getScreenRGB())
    expected = np.array(frame.resize((64, 64), Image.BILINEAR))
    np.testing.assert_array_equal(obs['image'], expected)


def test_grayscale_has_one_channel_and_the_minimal_action_set():
  env = wrappers.Atari('breakout', 4, (64, 64), grayscale=True, seed=0)
  assert env.observation_space['image'].shape == (64, 64, 1)
  assert env.reset()['image'].shape == (64, 64, 1)
  assert env.action_space.n == 4  # NOOP, FIRE, RIGHT, LEFT.


def test_resets_start_after_one_to_thirty_noops():
  env = wrappers.Atari('pong', 4, (64, 64), seed=1)
  frames = []
  for _ in range(20):
    env.reset()
    frames.append(env._env.getEpisodeFrameNumber())
  assert 1 <= min(frames) and max(frames) <= 30 and len(set(frames)) > 5


@pytest.mark.parametrize('life_done', [True, False])
def test_a_lost_life_ends_the_episode_only_with_life_done(life_done):
  env = wrappers.Atari('breakout', 4, (64, 64), life_done=life_done, seed=0)
  env.reset()
  lives = env._env.lives()
  random = np.random.RandomState(0)
  done = False
  while not done:
    _, _, done, _ = env.step(random.randint(env.action_space.n))
  assert env._env.game_over() != life_done
  assert env._env.lives() == (lives - 1 if life_done else 0)


def test_sticky_actions_as_gym_v0_and_v4():
  for sticky, probability in [(True, 0.25), (False, 0.0)]:
    env = wrappers.Atari('pong', sticky_actions=sticky, seed=0)
    assert env._env.getFloat('repeat_action_probability') == probability


def test_make_atari_seeds_limits_time_in_agent_steps_and_takes_one_hots():
  episodes = []
  for _ in range(2):
    env = wrappers.make_atari('pong', 4, time_limit=40, seed=3)
    space = env.action_space
    assert space.shape == (6,)
    random = np.random.RandomState(0)
    images, done, steps = [env.reset()['image']], False, 0
    while not done:
      action = space.sample(random)
      assert action.sum() == 1 and set(np.unique(action)) == {0, 1}
      obs, _, done, info = env.step(action)
      images.append(obs['image'])
      steps += 1
    assert steps == 10 and info['discount'] == 1  # A timeout, not an end.
    episodes.append(np.stack(images))
    with pytest.raises(ValueError, match='Invalid one-hot action'):
      env.reset()
      env.step(np.full(6, 1 / 6, np.float32))
  np.testing.assert_array_equal(*episodes)
  assert episodes[0].std() > 1


@pytest.mark.slow
def test_atari_steps_in_a_worker_process():
  ctor = functools.partial(wrappers.make_atari, 'pong', 4, 40, 3)
  env = wrappers.Async(ctor, 'process')
  try:
    space = env.action_space
    reference = wrappers.make_atari('pong', 4, 40, 3)
    obs, expected = env.reset(), reference.reset()
    np.testing.assert_array_equal(obs['image'], expected['image'])
    action = space.sample(np.random.RandomState(0))
    obs, _, _, _ = env.step(action)
    expected, _, _, _ = reference.step(action)
    np.testing.assert_array_equal(obs['image'], expected['image'])
  finally:
    env.close()


def test_a_bad_game_is_rejected_with_the_list_of_games():
  with pytest.raises(ValueError, match='valid games are: adventure, air_raid'):
    wrappers.parse_game('pongg')
  with pytest.raises(SystemExit, match="unknown task 'atari_pongg'"):
    dreamer.parse_flags(dreamer.define_config(), ['--task', 'atari_pongg'])


def test_atari_defaults_apply_to_keys_not_given():
  config = dreamer.parse_flags(
      dreamer.define_config(), ['--task', 'atari_pong', '--time_limit', '800'])
  assert config.action_dist == 'onehot' and config.expl == 'epsilon_greedy'
  assert config.action_repeat == 4 and config.pcont
  assert config.time_limit == 800
  config = dreamer.parse_flags(dreamer.define_config(), [])
  assert config.action_dist == 'tanh_normal' and config.action_repeat == 2


@pytest.mark.parametrize('args, message', [
    (['--task', 'atari_pong', '--action_dist', 'tanh_normal'],
     'cannot act in atari_pong, whose actions are discrete'),
    (['--task', 'atari_pong', '--expl', 'additive_gaussian'],
     'does not fit --action_dist onehot; use epsilon_greedy'),
    (['--action_dist', 'onehot'],
     'cannot act in dmc_walker_walk, whose actions are continuous'),
    (['--expl', 'epsilon_greedy'], 'does not fit --action_dist tanh_normal'),
    (['--grayscale', 'True'], '--grayscale applies to Atari tasks only'),
])
def test_actions_that_cannot_act_are_refused(args, message):
  with pytest.raises(SystemExit) as error:
    dreamer.parse_flags(dreamer.define_config(), args)
  assert message in str(error.value) and '\n' not in str(error.value)


def test_one_hot_dist_samples_the_categorical():
  logits = tf.constant([[0.5, -1.0, 2.0, 0.0]] * 40000)
  dist = tools.OneHotDist(logits)
  sample = dist.sample(seed=tf.constant([1, 2])).numpy()
  assert set(np.unique(sample)) == {0, 1}
  np.testing.assert_array_equal(sample.sum(-1), 1)
  probs = np.exp(logits[0].numpy()) / np.exp(logits[0].numpy()).sum()
  std = np.sqrt(probs * (1 - probs) / len(sample))
  assert np.all(np.abs(sample.mean(0) - probs) < 5 * std)
  np.testing.assert_array_equal(dist.mode()[0], np.eye(4)[2])
  np.testing.assert_allclose(dist.mean()[0], probs, rtol=1e-6)
  np.testing.assert_allclose(
      tools.OneHotDist(logits[:3]).log_prob(sample[:3]),
      np.log(probs[sample[:3].argmax(-1)]),
      rtol=1e-5)
  np.testing.assert_allclose(
      dist.entropy()[0], -(probs * np.log(probs)).sum(), rtol=1e-6)


def test_one_hot_dist_passes_straight_through_gradients():
  logits = tf.Variable([[0.3, -0.7, 1.1], [2.0, 0.0, -1.0]])
  weights = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], np.float32)
  with tf.GradientTape() as tape:
    sample = tools.OneHotDist(logits).sample(seed=tf.constant([0, 1]))
    loss = tf.reduce_sum(weights * sample)
  grad = tape.gradient(loss, logits).numpy()
  probs = tf.nn.softmax(logits).numpy()
  for p, w, g in zip(probs, weights, grad):
    jacobian = np.diag(p) - np.outer(p, p)  # d softmax / d logits.
    np.testing.assert_allclose(g, jacobian @ w, rtol=1e-5, atol=1e-7)


def test_epsilon_greedy_decays_and_replaces_that_share_of_actions():
  config = dreamer.define_config()
  config.update(
      expl='epsilon_greedy', expl_amount=0.4, expl_decay=1000, expl_min=0.1)
  agent = types.SimpleNamespace(_c=config)
  amount = lambda step: dreamer.Dreamer._expl_amount(agent, step, True)
  np.testing.assert_allclose(
      [amount(0), amount(1000), amount(2000), amount(5000)],
      [0.4, 0.2, 0.1, 0.1])
  greedy = tf.one_hot(tf.zeros(40000, tf.int32), 4)
  explore = lambda amount, seed: dreamer.Dreamer._exploration(
      agent, greedy, True, tf.constant(amount), tf.constant([seed, 0])).numpy()
  actions = explore(0.3, 0)
  np.testing.assert_array_equal(actions.sum(-1), 1)
  changed = (actions.argmax(-1) != 0).mean()
  assert abs(changed - 0.3 * 3 / 4) < 0.01  # A random action may be greedy.
  np.testing.assert_array_equal(explore(0.0, 1), greedy)
  np.testing.assert_allclose(explore(1.0, 2).mean(0), 0.25, atol=0.01)


@pytest.mark.slow
@pytest.mark.parametrize('script, args', [
    ('dreamer.py', []), ('bird.py', ['--grayscale=True']),
    ('bird.py', ['--soft=True']), ('idm.py', [])])
def test_tiny_atari_runs_and_resumes(script, args, tmp_path):
  logdir = tmp_path / 'logdir'
  command = [f'--logdir={logdir}', *flags(**ATARI_TINY), *args]
  process = run_script(script, *command)
  metrics = assert_trained(process, logdir)
  ent = [m['action_ent'] for m in metrics if 'action_ent' in m]
  assert 0 < min(ent) and max(ent) <= np.log(6) + 1e-4  # Exact, not sampled.
  channels = 1 if '--grayscale=True' in args else 3
  for filename in tools.episode_files(logdir / 'episodes'):
    episode = tools.load_episode(filename)
    assert episode['image'].shape[1:] == (64, 64, channels)
    assert episode['image'].std() > 1
    actions = episode['action'][1:]
    np.testing.assert_array_equal(actions.sum(-1), 1)
  if script != 'dreamer.py':
    return
  process = run_script(script, *command, '--steps=480')
  assert process.returncode == 0, process.stderr[-3000:]
  assert 'Loaded checkpoint at step 320.' in process.stdout
  assert max(m['step'] for m in read_metrics(logdir)) == 480
