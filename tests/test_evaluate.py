"""runs/evaluate.py on every suite, its videos and episodes, and the test
episodes of an evaluation during training (--eval_episodes)."""

import json
import pickle
import shutil
import sys
import types

import numpy as np
import pytest

import tools
from helpers import ROOT, TINY, flags, last_line, read_metrics, run_script
from test_atari import ATARI_TINY

sys.path.insert(0, str(ROOT / 'runs'))
import evaluate  # noqa: E402


def read_video(path):
  """The frames of an MP4 or GIF file, decoded, as uint8 (T, H, W, 3)."""
  if path.suffix == '.gif':
    from PIL import Image, ImageSequence
    with Image.open(path) as image:
      return np.stack([
          np.array(frame.convert('RGB'))
          for frame in ImageSequence.Iterator(image)])
  import imageio_ffmpeg
  reader = imageio_ffmpeg.read_frames(str(path))
  meta = next(reader)
  width, height = meta['size']
  return np.stack([
      np.frombuffer(frame, np.uint8).reshape(height, width, 3)
      for frame in reader])


def video_fps(path):
  """Frames per second of an MP4 file, or of a GIF file by its first
  frame's duration (whole milliseconds)."""
  if path.suffix == '.gif':
    from PIL import Image
    with Image.open(path) as image:
      return 1000 / image.info['duration']
  import imageio_ffmpeg
  return next(imageio_ffmpeg.read_frames(str(path)))['fps']


def error(a, b):
  return np.abs(a.astype(float) - b.astype(float)).mean()


def test_videos_hold_the_frames_they_are_given(tmp_path):
  random = np.random.RandomState(0)
  # Smooth frames, as rendered ones are: H.264 keeps them nearly exact.
  base = random.randint(0, 256, (9, 8, 8, 3)).astype(np.uint8)
  frames = base.repeat(8, 1).repeat(8, 2)
  for suffix in ('mp4', 'gif'):
    path = tmp_path / f'video.{suffix}'
    tools.write_video(path, frames, fps=20)
    decoded = read_video(path)
    assert decoded.shape == frames.shape
    assert error(decoded, frames) < 3, suffix
    # Each frame is its own, not a neighbour's.
    assert error(decoded[1:], frames[:-1]) > 30, suffix
  gray = frames[..., :1]
  tools.write_video(tmp_path / 'gray.mp4', gray, fps=20)
  decoded = read_video(tmp_path / 'gray.mp4')
  assert decoded.shape == frames.shape[:3] + (3,)
  assert error(decoded, np.repeat(gray, 3, -1)) < 3
  assert not list(tmp_path.glob('.*.tmp'))


def test_options_are_checked_in_one_line(capsys):
  def refused(*argv):
    with pytest.raises(SystemExit) as exit:
      evaluate.parse_args(['/nonexistent', *argv])
    assert exit.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]
  assert refused('--video', '3', '--episodes', '2').endswith(
      'error: --video must lie between 0 and --episodes 2, got 3')
  for fps in ('0', 'nan'):
    assert refused('--fps', fps).endswith(
        f'error: --fps must be a positive number, got {float(fps)}')
  with pytest.raises(SystemExit):
    evaluate.parse_args(['--help'])
  text = capsys.readouterr().out
  for option in (
      '--episodes', '--video', '--openl', '--openl_length',
      '--save_episodes', '--format', '--fps', '--scale', '--precision',
      '--jit'):
    assert option in text, option
  assert '(default: None)' not in text  # Its help says what.
  text = ' '.join(text.split())
  assert 'render_fps' in text  # --fps's default.
  assert '15 after 10 adds 5' in text  # An evaluation extended.


def test_videos_default_to_the_environments_own_frame_rate():
  rate = lambda task, repeat: evaluate.frame_rate(
      types.SimpleNamespace(task=task, action_repeat=repeat))
  # dm_control's control timesteps: cartpole 0.01 s, walker 0.025 s (10
  # physics substeps of 0.0025 s).
  assert rate('dmc_cartpole_balance', 2) == pytest.approx(50)
  assert rate('dmc_walker_walk', 2) == pytest.approx(20)
  assert rate('dmc_cup_catch', 4) == pytest.approx(12.5)  # 0.02 s.
  assert rate('atari_pong', 4) == 15  # 60 Hz, every fourth frame seen.
  assert rate('gym_CartPole-v1', 1) == 50  # Its render_fps.
  assert rate('gym_Pendulum-v1', 2) == 15  # 30 Hz.
  import gymnasium

  class NoFrameRate(gymnasium.Env):
    metadata = {'render_modes': ['rgb_array']}  # No render_fps.

    def __init__(self, render_mode=None):
      self.action_space = gymnasium.spaces.Discrete(2)
      self.observation_space = gymnasium.spaces.Discrete(1)
      self.render_mode = render_mode

  gymnasium.register('NoFrameRate-v0', entry_point=NoFrameRate)
  with pytest.raises(tools.ConfigError, match='give the videos. frame rate '
                     'with --fps'):
    rate('gym_NoFrameRate-v0', 1)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A tiny run of the control suite, trained once; each test copies it."""
  logdir = tmp_path_factory.mktemp('trained') / 'run'
  process = run_script(
      'dreamer.py', *flags(**TINY), '--eval_episodes=3', f'--logdir={logdir}')
  assert process.returncode == 0, process.stderr[-2000:]
  return logdir


def copy_run(trained, tmp_path):
  logdir = tmp_path / 'cartpole_balance' / 'dreamer' / '0'
  shutil.copytree(trained, logdir)
  return logdir


@pytest.mark.slow
def test_a_control_suite_run_is_evaluated_and_shown(trained, tmp_path):
  logdir = copy_run(trained, tmp_path)
  # Three test episodes per evaluation: one point, their mean.
  tests = [m for m in read_metrics(logdir) if 'test/return' in m]
  assert [m['step'] for m in tests] == [80]
  for entry in tests:
    each = [entry[f'test/return_{i}'] for i in range(3)]
    assert entry['test/return'] == pytest.approx(np.mean(each))
    assert entry['test/return_std'] == pytest.approx(np.std(each, ddof=1))
    assert entry['test/length'] == 20
    assert 'test/return_3' not in entry
  replayed = sorted((logdir / 'episodes').glob('*.npz'))
  process = run_script(
      'runs/evaluate.py', str(logdir), '--episodes', '3', '--video', '2',
      '--openl', '--openl_length', '12', '--save_episodes', '--scale', '2')
  assert process.returncode == 0, process.stderr[-2000:]
  finals = read_metrics(logdir, 'final.jsonl')
  assert [e['episode'] for e in finals] == [0, 1, 2]
  eval_dir = logdir / 'eval'
  assert sorted(p.name for p in eval_dir.iterdir()) == [
      '160-episode0.mp4', '160-episode1.mp4', '160-openl.mp4', 'episodes']
  # The saved episodes in upstream's format, their returns as logged.
  saved = [
      tools.load_episode(f)
      for f in tools.episode_files(eval_dir / 'episodes' / '160')]
  assert [float(e['reward'].sum()) for e in saved] == pytest.approx(
      [e['return'] for e in finals])
  # Not replayed: the run's episodes are those it had.
  assert sorted((logdir / 'episodes').glob('*.npz')) == replayed
  # Each video shows its episode's frames, as the agent saw them, enlarged.
  for index in range(2):
    video = read_video(eval_dir / f'160-episode{index}.mp4')
    frames = saved[index]['image'].repeat(2, 1).repeat(2, 2)
    assert video.shape == (21, 128, 128, 3)  # 20 steps and the reset.
    assert error(video, frames) < 3
    # cartpole's 100 Hz control, every second step seen.
    assert video_fps(eval_dir / f'160-episode{index}.mp4') == 50
    other = saved[1 - index]['image'].repeat(2, 1).repeat(2, 2)
    assert error(video, other) > 2 * error(video, frames)
  # The open-loop video: truth above model above error, 12 steps.
  openl = read_video(eval_dir / '160-openl.mp4')
  assert openl.shape == (12, 3 * 128, 128, 3)
  truth = saved[0]['image'][:12].repeat(2, 1).repeat(2, 2)
  assert error(openl[:, :128], truth) < 3
  assert error(openl[:, 128:256], truth) > 10  # A tiny model's guess.
  # Evaluated at this step: shown again, but final.jsonl keeps 3 lines.
  process = run_script(
      'runs/evaluate.py', str(logdir), '--episodes', '1', '--video', '1',
      '--format', 'gif', '--fps', '10')
  assert process.returncode == 0, process.stderr[-2000:]
  assert 'not appended again' in process.stdout
  assert len(read_metrics(logdir, 'final.jsonl')) == 3
  gif = read_video(eval_dir / '160-episode0.gif')
  assert gif.shape == (21, 64, 64, 3)
  assert error(gif, saved[0]['image']) < 3  # The same episode again.
  assert video_fps(eval_dir / '160-episode0.gif') == 10


@pytest.mark.slow
def test_an_evaluation_is_extended_and_its_episodes_stored_once(
    trained, tmp_path):
  logdir = copy_run(trained, tmp_path)
  directory = logdir / 'eval' / 'episodes' / '160'

  def run(*args):
    process = run_script('runs/evaluate.py', str(logdir), *args)
    assert process.returncode == 0, process.stderr[-2000:]
    finals = read_metrics(logdir, 'final.jsonl')
    assert all(e['step'] == 160 for e in finals)
    return process, finals

  def saved():
    """The stored episodes in order; each index stored once."""
    files = tools.episode_files(directory)
    assert evaluate.stored(directory) == set(range(len(files)))
    episodes = {
        int(f.name.split('-')[1][len('episode'):]): tools.load_episode(f)
        for f in files}
    return [episodes[i] for i in sorted(episodes)]

  run('--episodes', '2')
  # Two more: the episodes continue, with seeds of their own, once.
  process, finals = run('--episodes', '4')
  assert 'Added episodes 2 to 3 to the 2 at step 160.' in process.stdout
  assert 'over 4 episodes' in process.stdout
  assert [e['episode'] for e in finals] == [0, 1, 2, 3]
  returns = [e['return'] for e in finals]
  process, finals = run('--episodes', '4')
  assert 'left alone' in process.stdout
  assert len(finals) == 4
  # Stored later, all in one call: the episodes recorded, each once.
  store = ('--episodes', '4', '--save_episodes', '--video', '1')
  process, finals = run(*store)
  assert 'not appended again' in process.stdout
  episodes = saved()
  assert [float(e['reward'].sum()) for e in episodes] == pytest.approx(
      returns)
  # Each from an initial state of its own: no environment seed repeated.
  assert len({e['image'][0].tobytes() for e in episodes}) == 4
  # Episode 0 shown again, but none stored again.
  process, finals = run(*store)
  assert 'holds episodes 0, 1, 2, 3 already; not saved again' in (
      process.stdout)
  assert 'episodes 0 run again' in process.stdout
  assert len(finals) == 4 and len(saved()) == 4


@pytest.mark.slow
def test_an_atari_run_is_evaluated_with_its_own_wrappers(tmp_path):
  logdir = tmp_path / 'atari_pong' / 'dreamer' / '0'
  process = run_script(
      'dreamer.py', *flags(**ATARI_TINY), '--grayscale=True',
      f'--logdir={logdir}')
  assert process.returncode == 0, process.stderr[-3000:]
  process = run_script(
      'runs/evaluate.py', str(logdir), '--episodes', '2', '--video', '1')
  assert process.returncode == 0, process.stderr[-3000:]
  finals = read_metrics(logdir, 'final.jsonl')
  # 160 frames at a frame skip of 4, one-hot actions on the ALE.
  assert [(e['step'], e['length']) for e in finals] == [(320, 40)] * 2
  video = read_video(logdir / 'eval' / '320-episode0.mp4')
  assert video.shape == (41, 64, 64, 3)  # One channel shown as gray.
  assert video.std() > 1


@pytest.mark.slow
def test_a_task_no_factory_builds_is_refused_naming_it(tmp_path):
  logdir = tmp_path / 'run'
  logdir.mkdir()
  (logdir / 'config.json').write_text(json.dumps(
      {'agent': 'dreamer.Dreamer', 'config': dict(TINY, task='mw_reach')}))
  process = run_script('runs/evaluate.py', str(logdir))
  assert process.returncode == 1
  assert last_line(process) == (
      f"evaluate.py: error: cannot evaluate {logdir}: unknown task "
      "'mw_reach': tasks are named dmc_<domain>_<task>, atari_<game> or "
      "gym_<Gymnasium id>")


@pytest.mark.slow
def test_the_actor_probe_reads_the_actor_and_the_models_returns(
    trained, tmp_path):
  logdir = copy_run(trained, tmp_path)
  args = ['--batch', '3', '--length', '8', '--actions', '-1', '0', '1']
  process = run_script(
      'runs/actor_probe.py', str(logdir), *args, '--json', str(tmp_path / 'a'))
  assert process.returncode == 0, process.stderr[-2000:]
  probed = json.loads((tmp_path / 'a').read_text())
  assert probed['step'] == 160
  assert list(probed['constant']) == ['-1.0', '0.0', '1.0']
  returns = [e['return_'] for e in probed['constant'].values()]
  assert np.all(np.isfinite(returns + [probed['actor_return']]))
  assert 'Checkpoint at 160 env steps.' in process.stdout
  # Planted: an actor whose pre-tanh mean is pinned far above 0 and whose
  # std is at its floor, whatever the state.
  path = logdir / 'variables.pkl'
  values = pickle.loads(path.read_bytes())
  kernel, bias = '_actor/_modules/hout/kernel', '_actor/_modules/hout/bias'
  values[kernel] = np.zeros_like(values[kernel])
  half = len(values[bias]) // 2
  values[bias] = np.concatenate([
      np.full(half, 1e3), np.full(half, -1e3)]).astype(values[bias].dtype)
  path.write_bytes(pickle.dumps(values))
  process = run_script(
      'runs/actor_probe.py', str(logdir), *args, '--json', str(tmp_path / 'b'))
  assert process.returncode == 0, process.stderr[-2000:]
  pinned = json.loads((tmp_path / 'b').read_text())
  assert pinned['mean_above_0'] == pinned['mean_at_bound'] == 1.0
  assert pinned['std_median'] == pytest.approx(pinned['min_std'], rel=1e-3)
  # Its policy is the constant +1, so the two imagine alike.
  assert pinned['actor_return'] == pytest.approx(
      pinned['constant']['1.0']['return_'], rel=1e-3, abs=1e-4)


@pytest.mark.slow
def test_the_actor_probe_refuses_what_it_cannot_read(trained, tmp_path):
  logdir = copy_run(trained, tmp_path)
  process = run_script('runs/actor_probe.py', str(logdir), '--length', '99')
  assert process.returncode != 0
  assert last_line(process) == (
      f'actor_probe.py: error: {logdir / "episodes"} holds no episode of 99 '
      'steps (--length)')
  (logdir / 'variables.pkl').unlink()
  process = run_script('runs/actor_probe.py', str(logdir))
  assert process.returncode != 0
  assert last_line(process) == (
      f'actor_probe.py: error: {logdir / "variables.pkl"} does not exist')
