import hashlib
import io
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tools
from helpers import ROOT, random_episode


def numpy_lambda_return(reward, value, pcont, bootstrap, lambda_):
  """R_t = r_t + g_t ((1 - l) v_{t+1} + l R_{t+1}), v_T = R_T = bootstrap;
  time first."""
  returns = np.zeros_like(reward)
  following = bootstrap
  for t in reversed(range(len(reward))):
    next_value = value[t + 1] if t + 1 < len(reward) else bootstrap
    following = reward[t] + pcont[t] * (
        (1 - lambda_) * next_value + lambda_ * following)
    returns[t] = following
  return returns


@pytest.mark.parametrize('lambda_', [0.0, 0.95, 1.0])
def test_lambda_return_matches_numpy(lambda_):
  random = np.random.RandomState(0)
  reward, value = random.normal(size=(2, 7, 5)).astype(np.float32)
  pcont = random.uniform(0.5, 1, (7, 5)).astype(np.float32)
  bootstrap = random.normal(size=5).astype(np.float32)
  expected = numpy_lambda_return(reward, value, pcont, bootstrap, lambda_)
  actual = tools.lambda_return(reward, value, pcont, bootstrap, lambda_, axis=0)
  np.testing.assert_allclose(actual.numpy(), expected, rtol=1e-5, atol=1e-5)
  # The same along axis 1 (batch first).
  actual = tools.lambda_return(
      reward.T, value.T, pcont.T, bootstrap, lambda_, axis=1)
  np.testing.assert_allclose(actual.numpy().T, expected, rtol=1e-5, atol=1e-5)


def test_lambda_return_limits():
  reward = np.ones((3, 1), np.float32)
  value = 10 * np.ones((3, 1), np.float32)
  bootstrap = np.array([20.0], np.float32)
  # lambda 1: discounted Monte Carlo return with the bootstrap at the end.
  mc = tools.lambda_return(reward, value, 0.5, bootstrap, 1.0, axis=0)
  np.testing.assert_allclose(mc.numpy()[:, 0], [
      1 + 0.5 * (1 + 0.5 * (1 + 0.5 * 20)), 1 + 0.5 * (1 + 0.5 * 20),
      1 + 0.5 * 20])
  # lambda 0: one-step targets.
  td = tools.lambda_return(reward, value, 0.5, bootstrap, 0.0, axis=0)
  td = td.numpy()[:, 0]
  np.testing.assert_allclose(td, [6, 6, 11])


def test_static_scan_nested_and_reverse():
  inputs = tf.constant([1.0, 2.0, 3.0])
  fn = lambda last, x: {'sum': last['sum'] + x, 'count': last['count'] + 1}
  out = tools.static_scan(fn, inputs, {'sum': 0.0, 'count': 0.0})
  np.testing.assert_allclose(out['sum'].numpy(), [1, 3, 6])
  np.testing.assert_allclose(out['count'].numpy(), [1, 2, 3])
  out = tools.static_scan(fn, inputs, {'sum': 0.0, 'count': 0.0}, reverse=True)
  np.testing.assert_allclose(out['sum'].numpy(), [6, 5, 3])
  # Outputs may carry more keys than the start.
  fn = lambda last, x: {'a': last['a'] + x, 'b': x}
  out = tools.static_scan(fn, inputs, {'a': 0.0})
  np.testing.assert_allclose(out['b'].numpy(), [1, 2, 3])


def test_tanh_bijector_log_det_matches_numeric_derivative():
  bijector = tools.TanhBijector()
  x = np.linspace(-4, 4, 41)
  eps = 1e-5
  numeric = np.log((np.tanh(x + eps) - np.tanh(x - eps)) / (2 * eps))
  actual = bijector.forward_log_det_jacobian(tf.constant(x), event_ndims=0)
  np.testing.assert_allclose(actual, numeric, rtol=1e-5, atol=1e-6)
  # Inverse log-det is the negative at the preimage.
  y = np.tanh(x[5:-5]).astype(np.float32)
  inverse = bijector.inverse_log_det_jacobian(tf.constant(y), event_ndims=0)
  np.testing.assert_allclose(inverse, -numeric[5:-5], rtol=1e-3, atol=1e-3)


def test_tanh_normal_entropy_and_mode_finite_when_saturated():
  tfd = tools.tfd
  # std 20 before the tanh: most float32 samples are exactly +-1.
  mean = tf.constant([[0.0, 0.0], [3.0, -3.0]])
  dist = tfd.Independent(tfd.TransformedDistribution(
      tfd.Normal(mean, 20.0), tools.TanhBijector()), 1)
  dist = tools.SampleDist(dist)
  assert np.all(np.isfinite(dist.entropy().numpy()))
  assert np.all(np.abs(dist.mode().numpy()) <= 1)
  assert np.all(np.isfinite(dist.log_prob(tf.ones([2, 2])).numpy()))


def test_sample_dist_mode_is_chosen_per_batch_element():
  tfd = tools.tfd
  dist = tfd.Independent(tfd.Normal([[-3.0], [5.0]], 0.01), 1)
  dist = tools.SampleDist(dist, samples=50)
  np.testing.assert_allclose(dist.mode().numpy(), [[-3.0], [5.0]], atol=0.05)


def test_wide_tanh_normal_mode_is_the_full_action_on_the_means_side():
  # The actor's initial std is 5: about a tenth of 100 samples saturate tanh
  # in float32, their densities are taken at one clipped pre-image, and the
  # normal's term breaks the tie toward the mean. So a test policy's action
  # is +-1 with the sign of its mean, however small the mean.
  tfd = tools.tfd
  means = tf.constant([[0.5]] * 200 + [[-2.0]] * 200)
  dist = tfd.Independent(tfd.TransformedDistribution(
      tfd.Normal(means, 5.0), tools.TanhBijector()), 1)
  mode = tools.SampleDist(dist).mode(seed=(0, 1)).numpy()[:, 0]
  np.testing.assert_array_equal(np.abs(mode), 1.0)
  assert np.mean(mode[:200] > 0) >= 0.98 and np.mean(mode[200:] < 0) >= 0.98


def test_args_type():
  assert tools.args_type(True)('False') is False
  assert tools.args_type(5)('1e6') == 1000000
  assert tools.args_type(0.5)('1e-3') == 0.001
  home = pathlib.Path('~/x').expanduser()
  assert tools.args_type(pathlib.Path('.'))('~/x') == home
  with pytest.raises(Exception, match='True or False'):
    tools.args_type(True)('yes')
  with pytest.raises(Exception, match='integer'):
    tools.args_type(5)('1.5')


def test_parse_flags_one_line_errors(capsys):
  config = tools.AttrDict(steps=10, parallel='none', flag=True)
  argv = ['--steps', '2e3', '--flag', 'False']
  parsed, given = tools.parse_flags(config, argv, prog='x')
  assert parsed == {'steps': 2000, 'parallel': 'none', 'flag': False}
  assert given == {'steps', 'flag'}
  for argv in (
      ['--unknown', '1'], ['--steps', 'many'], ['--parallel', 'gpu'],
      ['--step', '1']):
    with pytest.raises(SystemExit) as error:
      choices = {'parallel': ['none', 'thread']}
      tools.parse_flags(config, argv, choices, prog='x')
    assert str(error.value).startswith('x: error: ')
    assert '\n' not in str(error.value)


def test_episode_round_trip_and_count(tmp_path):
  episodes = [random_episode(11, seed=0), random_episode(21, seed=1)]
  filenames = tools.save_episodes(tmp_path, episodes)
  assert [tools.episode_length(f) for f in filenames] == [11, 21]
  assert tools.count_episodes(tmp_path) == (2, 10 + 20)
  for filename, episode in zip(filenames, episodes):
    loaded = tools.load_episode(filename)
    assert set(loaded) == set(tools.EPISODE_KEYS)
    for key in episode:
      np.testing.assert_array_equal(loaded[key], episode[key])
      assert loaded[key].dtype == episode[key].dtype
  assert not list(tmp_path.glob('.*.tmp'))


def test_write_atomic_keeps_old_file_when_writing_fails(tmp_path):
  target = tmp_path / 'file.pkl'
  tools.write_atomic(target, lambda f: f.write(b'old'))
  def broken(f):
    f.write(b'partial')
    raise RuntimeError('killed')
  with pytest.raises(RuntimeError):
    tools.write_atomic(target, broken)
  assert target.read_bytes() == b'old'
  assert list(tmp_path.iterdir()) == [target]


def test_replay_skips_corrupt_files(tmp_path, capsys):
  good = tools.save_episodes(tmp_path, [random_episode(11, seed=0)])[0]
  truncated = tools.save_episodes(tmp_path, [random_episode(11, seed=1)])[0]
  truncated.write_bytes(truncated.read_bytes()[:300])
  (tmp_path / '20200101T000000-garbage-11.npz').write_bytes(b'not a zip file')
  missing = tmp_path / '20200101T000001-missing-11.npz'
  np.savez(missing, image=np.zeros((11, 64, 64, 3), np.uint8))
  replay = tools.Replay(tmp_path, length=5)
  replay.update()
  assert list(replay.episodes) == [good]
  assert capsys.readouterr().err.count('Warning: skipping episode') == 3
  replay.update()  # Known bad files are not read and reported again.
  assert capsys.readouterr().err == ''
  batch = replay.sample(4)
  assert batch['image'].shape == (4, 5, 64, 64, 3)
  assert batch['action'].shape == (4, 5, 2)


def test_replay_samples_contiguous_sequences(tmp_path):
  episode = random_episode(30, seed=0)
  episode['reward'] = np.arange(30, dtype=np.float32)
  tools.save_episodes(tmp_path, [episode])
  replay = tools.Replay(tmp_path, length=6, seed=1)
  replay.update()
  rewards = replay.sample(200)['reward']
  np.testing.assert_array_equal(np.diff(rewards, axis=1), 1)
  starts = rewards[:, 0]
  assert starts.min() == 0 and starts.max() == 24  # Both ends are reachable.


def test_replay_capacity_keeps_newest_episodes(tmp_path):
  for index in range(5):
    episode = random_episode(11, seed=index)
    episode['reward'][:] = index
    tools.save_episodes(tmp_path, [episode])
  replay = tools.Replay(tmp_path, length=5, capacity=25)
  replay.update()
  assert len(replay.episodes) == 2  # 10 steps each: the newest two fit in 25.
  assert set(np.unique(replay.sample(100)['reward'])) == {3.0, 4.0}
  for index in range(5, 7):
    episode = random_episode(11, seed=index)
    episode['reward'][:] = index
    tools.save_episodes(tmp_path, [episode])
  replay.update()
  assert set(np.unique(replay.sample(100)['reward'])) == {5.0, 6.0}


def test_replay_rejects_short_episodes(tmp_path):
  tools.save_episodes(tmp_path, [random_episode(4)])
  replay = tools.Replay(tmp_path, length=5)
  replay.update()
  with pytest.raises(ValueError, match='batch_length=5'):
    replay.sample(2)


def replay_files(directory):
  """Episodes of several lengths, one shorter than the sequences."""
  for index, length in enumerate((30, 12, 45, 8, 21)):
    tools.save_episodes(directory, [random_episode(length, seed=index)])


def digest(batches):
  digest = hashlib.sha256()
  for batch in batches:
    for key in sorted(batch):
      digest.update(key.encode())
      digest.update(np.ascontiguousarray(batch[key]).tobytes())
  return digest.hexdigest()


# Recorded with the replay that held every episode in memory (commit
# 4ce6f18): the memory-mapped one samples the same bytes.
REPLAY_DIGESTS = {
    (0, False):
        '378c6c7c9869887edd0cb12f4f6087f07210e922bbd0a25d9a1c577e1d6a4ae0',
    (0, True):
        'ea39dd1ec4bd72562fe290f2c3772e9bb4a3a6b168451829878f77392fee1eac',
    (60, False):
        '3a2928225df273267c44bc736f6784e5b06aa52af1d1007ec281acd5baa645e5',
}


@pytest.mark.parametrize('capacity, balance', sorted(REPLAY_DIGESTS))
def test_replay_samples_what_the_in_memory_replay_sampled(
    tmp_path, capacity, balance):
  replay_files(tmp_path)
  replay = tools.Replay(tmp_path, 7, capacity, balance, seed=3)
  replay.update()
  batches = [replay.sample(16) for _ in range(3)]
  assert digest(batches) == REPLAY_DIGESTS[capacity, balance]
  images = [e['image'] for e in replay.episodes.values()]
  assert all(isinstance(image, np.memmap) for image in images)


def test_replay_images_are_mapped_from_raw_files_rebuilt_when_needed(
    tmp_path):
  replay_files(tmp_path)
  replay = tools.Replay(tmp_path, 7, seed=3)
  replay.update()
  raw = sorted((tmp_path / 'raw').glob('*.npy'))
  assert [f.stem for f in raw] == sorted(f.stem for f in replay.episodes)
  for filename, episode in replay.episodes.items():
    np.testing.assert_array_equal(
        episode['image'], tools.load_episode(filename)['image'])
  expected = digest(replay.sample(16) for _ in range(3))
  # A torn raw file, a missing one and a temporary left by a kill: the
  # next replay rebuilds them from the episodes and samples the same.
  raw[0].write_bytes(raw[0].read_bytes()[:1000])
  raw[1].unlink()
  (tmp_path / 'raw' / '.x.npy.1234.tmp').write_bytes(b'torn')
  replay = tools.Replay(tmp_path, 7, seed=3)
  replay.update()
  assert digest(replay.sample(16) for _ in range(3)) == expected
  assert sorted((tmp_path / 'raw').iterdir()) == raw
  # An episode the FIFO drops takes its raw file with it.
  replay = tools.Replay(tmp_path, 7, capacity=30, seed=3)
  replay.update()
  assert len(replay.episodes) == 2
  assert sorted(f.stem for f in (tmp_path / 'raw').iterdir()) == sorted(
      f.stem for f in replay.episodes)


def test_prefetch_draws_the_batches_sample_draws(tmp_path):
  replay_files(tmp_path)
  replay = tools.Replay(tmp_path, 7, seed=3)
  replay.update()
  expected = [replay.sample(4) for _ in range(5)]
  replay = tools.Replay(tmp_path, 7, seed=3)
  replay.update()
  with replay.prefetch(4, 5, convert=lambda b: (b, 1)) as batches:
    got = list(batches)
  assert [one for _, one in got] == [1] * 5
  assert digest(b for b, _ in got) == digest(expected)
  # Nothing drawn beyond the count: the next sample is the sixth.
  sixth = replay.sample(4)
  reference = tools.Replay(tmp_path, 7, seed=3)
  reference.update()
  for _ in range(5):
    reference.sample(4)
  assert digest([sixth]) == digest([reference.sample(4)])


def test_prefetch_stops_early_and_raises_where_the_batch_is_taken(tmp_path):
  replay_files(tmp_path)
  replay = tools.Replay(tmp_path, 7, seed=3)
  replay.update()
  prefetch = replay.prefetch(4, 1000)
  with prefetch as batches:
    next(batches)
  assert not prefetch._thread.is_alive()  # Left at once, not 1000 later.
  short = tools.Replay(tmp_path, 100)
  short.update()
  with pytest.raises(ValueError, match='batch_length=100'):
    with short.prefetch(4, 3) as batches:
      next(batches)


def test_every_and_once():
  every = tools.Every(10)
  assert [every(s) for s in (0, 5, 10, 15, 20, 35)] == [
      True, False, True, False, True, True]
  once = tools.Once()
  assert [once(), once()] == [True, False]


def test_video_summary_writes_a_gif_grid(tmp_path):
  from PIL import Image
  video = np.random.RandomState(0).uniform(0, 1, (2, 5, 8, 8, 3))
  with tf.summary.create_file_writer(str(tmp_path)).as_default():
    tools.video_summary('agent/openl', video, step=3, fps=10)
  events = [
      value for path in tmp_path.glob('events.out.tfevents.*')
      for event in tf.compat.v1.train.summary_iterator(str(path))
      for value in event.summary.value]
  assert [value.tag for value in events] == ['agent/openl']
  image = Image.open(io.BytesIO(events[0].image.encoded_image_string))
  # Batch elements side by side: 5 frames of 8 x (2 x 8) pixels.
  assert image.format == 'GIF' and image.size == (16, 8) and image.n_frames == 5


def test_lock_holds_a_directory_until_released(tmp_path):
  import os
  assert tools.locked(tmp_path) is None
  handle = tools.lock(tmp_path)
  try:
    assert tools.locked(tmp_path) == os.getpid()
    message = f'in use by process {os.getpid()}'
    with pytest.raises(tools.LockedError, match=message):
      tools.lock(tmp_path)
  finally:
    os.close(handle)
  assert tools.locked(tmp_path) is None
  os.close(tools.lock(tmp_path))  # Free again: no clean-up needed.


def test_checkpoint_step(tmp_path):
  import pickle
  assert tools.checkpoint_step(tmp_path / 'none.pkl') is None
  (tmp_path / 'a.pkl').write_bytes(pickle.dumps({'_step': np.int64(120)}))
  assert tools.checkpoint_step(tmp_path / 'a.pkl') == 120
  (tmp_path / 'b.pkl').write_bytes(b'torn')
  with pytest.raises(tools.CheckpointError, match='not a readable'):
    tools.checkpoint_step(tmp_path / 'b.pkl')


def test_full_disk_keeps_the_old_file_and_says_so(tmp_path, monkeypatch):
  import errno
  target = tmp_path / 'variables.pkl'
  tools.write_atomic(target, lambda f: f.write(b'old'))
  def full(f):
    f.write(b'partial')
    raise OSError(errno.ENOSPC, 'No space left on device')
  with pytest.raises(tools.DiskFullError, match='no space left .*variables'):
    tools.write_atomic(target, full)
  assert target.read_bytes() == b'old'
  assert list(tmp_path.iterdir()) == [target]
  # Other errors are not a full disk.
  def other(f):
    raise OSError(errno.EIO, 'I/O error')
  with pytest.raises(OSError) as error:
    tools.write_atomic(target, other)
  assert not isinstance(error.value, tools.DiskFullError)


class FakeTerminal(io.StringIO):

  def isatty(self):
    return True


def test_progress_on_a_terminal_stays_below_what_is_printed(monkeypatch):
  monkeypatch.setenv('PROGRESS_SECONDS', '0')
  terminal = FakeTerminal()
  monkeypatch.setattr('sys.stdout', terminal)
  with tools.Progress('Training', 4, 'train steps') as progress:
    for step in range(4):
      progress.update()
      if step == 1:
        print('Train episode of length 40.')
  output = terminal.getvalue()
  # Redrawn in place; what is printed stands on its own line, the progress
  # line below it; the end is one line of what was done.
  assert '\r\x1b[KTraining: 2 / 4 train steps' in output
  assert '\r\x1b[KTrain episode of length 40.\nTraining: 2 / 4' in output
  assert output.endswith('\r\x1b[KTraining: 4 train steps in 0s.\n')


def test_a_phase_counts_its_own_time_apart_from_nested_ones(
    monkeypatch, capsys):
  clock = [1000.0]
  monkeypatch.setattr(tools.time, 'time', lambda: clock[0])
  monkeypatch.setenv('PROGRESS_SECONDS', '0')
  with tools.Progress('Collection', 100, 'env steps') as collection:
    clock[0] += 10
    collection.update(20)
    with tools.Progress('Pretraining', 5, 'train steps') as training:
      clock[0] += 240
      training.update(5)
    clock[0] += 10
    collection.update(20)
    with tools.Progress('Training', 5, 'train steps') as training:
      clock[0] += 60
      training.update(5)
    clock[0] += 5
    collection.update(10)
  lines = capsys.readouterr().out.splitlines()
  assert 'Pretraining: 5 train steps in 4m00s, 48.0s each.' in lines
  assert 'Training: 5 train steps in 1m00s, 12.0s each.' in lines
  # 50 env steps in 25 s of its own, at 2.0/s; the time left at the pace
  # of the 325 s so far, training included.
  assert 'Collection: 50 / 100 env steps, 2.0/s, 5m25s left' in lines
  assert lines[-1] == (
      'Collection: 50 env steps in 25s, 2.0/s (besides pretraining 4m00s, '
      'training 1m00s).')


def test_progress_without_terminal_prints_plain_lines(monkeypatch, capsys):
  monkeypatch.setenv('PROGRESS_SECONDS', '0')
  with tools.Progress('Prefill', 6, 'env steps') as progress:
    for _ in range(3):
      progress.update(2)
  lines = capsys.readouterr().out.splitlines()
  assert lines[0].startswith('Prefill: 2 / 6 env steps, ')
  assert 's left' in lines[0]
  assert lines[-1] == 'Prefill: 6 env steps in 0s.'
  assert '\r' not in ''.join(lines)


@pytest.mark.parametrize('given, enabled', [
    (None, 'True'), ('0', 'False')])
def test_onednn_kernels_on_unless_the_user_says(given, enabled):
  env = {k: v for k, v in os.environ.items() if k != 'TF_ENABLE_ONEDNN_OPTS'}
  if given is not None:
    env['TF_ENABLE_ONEDNN_OPTS'] = given
  code = ('import tools\n'
          'from tensorflow.python.util import _pywrap_util_port as port\n'
          'print(port.IsMklEnabled())')
  process = subprocess.run(
      [sys.executable, '-c', code], capture_output=True, text=True,
      cwd=ROOT, env=env, timeout=300)
  assert process.returncode == 0, process.stderr[-2000:]
  assert process.stdout.split()[-1] == enabled
