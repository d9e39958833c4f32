"""The replay at the papers' scales: memory, update and sample times, disk.

  python runs/replay_scale.py --frames_from LOGDIR/episodes/<episode>.npz \
      [--upstream ../dreamer] [--steps 1e5 1e6] [--dir /tmp/replay_scale]

Writes episodes in the real format (upstream's .npz: image, action, reward,
discount; 1001 entries of 64x64x3 frames at action repeat 2) until each of
`--steps` env steps is reached, and measures there, each in a fresh process:
this project's `tools.Replay` (the first `update()`, which writes the raw
image files; a second replay's, as after a restart; one new episode; the
resident anonymous memory it adds, not counting the kernel's page cache; a
50x50 batch's `sample()`) and, with `--upstream`, upstream's
`tools.load_episodes` on the same files (read from that checkout, not copied
here: loading everything, its memory, 50 sequences stacked into a batch).
Frames are a real episode's (`--frames_from`), rolled in time and shifted
in brightness per episode, so that they compress as real ones do. Prints
one JSON line per measure and writes them to `--output`.
"""

import argparse
import ast
import json
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent


def rss_anon_mib():
  for line in pathlib.Path('/proc/self/status').read_text().splitlines():
    if line.startswith('RssAnon:'):
      return int(line.split()[1]) / 1024
  raise RuntimeError('no RssAnon in /proc/self/status')


def write_episodes(directory, frames, start, count, length, actdim=6):
  """`count` episodes of `length` entries from rolled, shifted frames."""
  sys.path.insert(0, str(ROOT))
  import tools
  for index in range(start, start + count):
    random = np.random.RandomState(index)
    shift = random.randint(-20, 21)
    image = np.roll(frames, random.randint(len(frames)), 0)[:length]
    image = np.clip(image.astype(np.int16) + shift, 0, 255).astype(np.uint8)
    episode = dict(
        image=image,
        action=random.uniform(-1, 1, (length, actdim)).astype(np.float32),
        reward=random.uniform(0, 1, length).astype(np.float32),
        discount=np.ones(length, np.float32))
    tools.save_episodes(directory, [episode])


def measure_ours(directory, batches):
  sys.path.insert(0, str(ROOT))
  import tools
  before = rss_anon_mib()
  replay = tools.Replay(directory, 50)
  start = time.perf_counter()
  replay.update()
  first = time.perf_counter() - start
  memory = rss_anon_mib() - before
  raw = sum(f.stat().st_size for f in (directory / 'raw').glob('*.npy'))
  episodes = len(replay.episodes)
  again = tools.Replay(directory, 50)
  start = time.perf_counter()
  again.update()
  restart = time.perf_counter() - start
  del again
  times = []
  for _ in range(batches):
    start = time.perf_counter()
    replay.sample(50)
    times.append(time.perf_counter() - start)
  # One more episode, as after a collection phase.
  newest = max(tools.episode_files(directory), key=lambda f: f.stat().st_size)
  episode = tools.load_episode(newest)
  added, = tools.save_episodes(directory, [episode])
  start = time.perf_counter()
  replay.update()
  incremental = time.perf_counter() - start
  added.unlink()
  return dict(
      first_update_s=first, restart_update_s=restart,
      new_episode_update_s=incremental, rss_anon_mib=memory,
      sample_ms=1000 * float(np.median(times)), raw_bytes=raw,
      episodes=episodes)


def upstream_load_episodes(upstream):
  """Upstream's load_episodes, read from its checkout's tools.py."""
  source = (pathlib.Path(upstream) / 'tools.py').read_text()
  tree = ast.parse(source)
  function = next(
      node for node in tree.body
      if isinstance(node, ast.FunctionDef) and node.name == 'load_episodes')
  namespace = dict(np=np, pathlib=pathlib)
  exec(compile(ast.Module([function], []), 'upstream/tools.py', 'exec'),
       namespace)
  return namespace['load_episodes']


def measure_upstream(directory, batches, upstream):
  load_episodes = upstream_load_episodes(upstream)
  before = rss_anon_mib()
  start = time.perf_counter()
  # Its generator loads every episode, then draws `rescan` sequences.
  dataset = load_episodes(directory, rescan=batches * 50, length=50)
  next(dataset)
  first = time.perf_counter() - start
  memory = rss_anon_mib() - before
  times = []
  for _ in range(batches):
    start = time.perf_counter()
    chunks = [next(dataset) for _ in range(50)]
    {k: np.stack([c[k] for c in chunks]) for k in chunks[0]}
    times.append(time.perf_counter() - start)
  return dict(
      first_update_s=first, rss_anon_mib=memory,
      sample_ms=1000 * float(np.median(times)))


def child(args):
  directory = pathlib.Path(args.child_dir)
  if args.child == 'ours':
    result = measure_ours(directory, args.batches)
  elif args.child == 'checkpoint':
    result = checkpoint_save(directory)
  else:
    result = measure_upstream(directory, args.batches, args.upstream)
  print('RESULT ' + json.dumps(result), flush=True)


def logdir_sizes(logdir):
  """metrics.jsonl and event files of a run, scaled to 1M env steps; the
  events split into images (GIFs) and the rest."""
  sys.path.insert(0, str(ROOT))
  import tools  # noqa: F401  (TensorFlow's import flags first)
  import tensorflow as tf
  logdir = pathlib.Path(logdir)
  lines = (logdir / 'metrics.jsonl').read_text().splitlines()
  steps = max(json.loads(line)['step'] for line in lines)
  images = other = 0
  for path in logdir.glob('events.out.tfevents.*'):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      size = event.ByteSize()
      if any(v.HasField('image') for v in event.summary.value):
        images += size
      else:
        other += size
  scale = 1e6 / steps
  config = json.loads((logdir / 'config.json').read_text())['config']
  return dict(
      logdir=str(logdir), env_steps=steps,
      log_every=config['log_every'], eval_every=config['eval_every'],
      metrics_jsonl_mib_per_1m=(logdir / 'metrics.jsonl').stat().st_size *
      scale / 2 ** 20,
      events_images_mib_per_1m=images * scale / 2 ** 20,
      events_other_mib_per_1m=other * scale / 2 ** 20)


def checkpoint_save(logdir, saves=3):
  """Seconds to save a default-size agent's checkpoint, and its size."""
  sys.path.insert(0, str(ROOT))
  sys.path.insert(0, str(ROOT / 'runs'))
  import benchmark
  pathlib.Path(logdir).mkdir(parents=True, exist_ok=True)
  agent, _ = benchmark.make_agent('dreamer', logdir, precision=32)
  times = []
  for _ in range(saves):
    start = time.perf_counter()
    agent.save(pathlib.Path(logdir) / 'variables.pkl')
    times.append(time.perf_counter() - start)
  size = (pathlib.Path(logdir) / 'variables.pkl').stat().st_size
  return dict(save_s=float(np.median(times)), mib=size / 2 ** 20)


def machine():
  sys.path.insert(0, str(ROOT))
  import tools
  return tools.cpuinfo().get('model name', 'unknown CPU')


def measure(kind, directory, args):
  command = [
      sys.executable, __file__, '--child', kind, '--child_dir',
      str(directory), '--batches', str(args.batches)]
  if args.upstream:
    command += ['--upstream', str(args.upstream)]
  process = subprocess.run(command, capture_output=True, text=True)
  lines = [l for l in process.stdout.splitlines() if l.startswith('RESULT ')]
  if process.returncode or not lines:
    sys.exit(f'replay_scale.py: error: {kind} failed:\n{process.stderr}')
  return json.loads(lines[-1][len('RESULT '):])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--frames_from', type=pathlib.Path)
  parser.add_argument('--upstream', type=pathlib.Path)
  parser.add_argument('--steps', nargs='+', type=float, default=[1e5, 1e6])
  parser.add_argument('--action_repeat', type=int, default=2)
  parser.add_argument('--length', type=int, default=1001)
  parser.add_argument('--batches', type=int, default=20)
  parser.add_argument(
      '--dir', type=pathlib.Path, default=pathlib.Path('/tmp/replay_scale'))
  parser.add_argument(
      '--output', type=pathlib.Path,
      default=ROOT / 'runs' / 'results' / 'replay_scale.json')
  parser.add_argument(
      '--logdir', type=pathlib.Path,
      help="a run whose metrics.jsonl and events to scale to 1M env steps")
  parser.add_argument('--child', help=argparse.SUPPRESS)
  parser.add_argument('--child_dir', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    return child(args)
  if not args.frames_from:
    parser.error('--frames_from is required')
  with np.load(args.frames_from) as episode:
    frames = episode['image']
  frames = np.concatenate([frames] * -(-args.length // len(frames)))
  directory = args.dir / 'episodes'
  if args.dir.exists():
    shutil.rmtree(args.dir)
  directory.mkdir(parents=True)
  results, written = [], 0
  steps_per_episode = (args.length - 1) * args.action_repeat
  for steps in sorted(args.steps):
    episodes = int(round(steps / steps_per_episode))
    start = time.perf_counter()
    write_episodes(directory, frames, written, episodes - written, args.length)
    print(f'Wrote {episodes - written} episodes in '
          f'{time.perf_counter() - start:.0f} s.', flush=True)
    written = episodes
    npz = sum(f.stat().st_size for f in directory.glob('*.npz'))
    raw_frames = episodes * args.length * frames[0].nbytes
    result = dict(
        env_steps=episodes * steps_per_episode, episodes=episodes,
        raw_frame_bytes=raw_frames, npz_bytes=npz,
        npz_bytes_per_env_step=npz / (episodes * steps_per_episode))
    if args.upstream:
      result['upstream'] = measure('upstream', directory, args)
    result['ours'] = measure('ours', directory, args)
    shutil.rmtree(directory / 'raw')  # The next scale builds it anew.
    result['ours']['raw_bytes_per_env_step'] = (
        result['ours']['raw_bytes'] / result['env_steps'])
    result['ours']['rss_anon_of_raw_frames'] = (
        result['ours']['rss_anon_mib'] * 2 ** 20 / raw_frames)
    print(json.dumps(result), flush=True)
    results.append(result)
  shutil.rmtree(directory)
  extra = dict(checkpoint=measure('checkpoint', args.dir / 'agent', args))
  print(json.dumps(extra['checkpoint']), flush=True)
  if args.logdir:
    extra['logdir'] = logdir_sizes(args.logdir)
    print(json.dumps(extra['logdir']), flush=True)
  args.output.parent.mkdir(parents=True, exist_ok=True)
  args.output.write_text(json.dumps(dict(
      results=results, action_repeat=args.action_repeat,
      frames_from=str(args.frames_from), machine=machine(), **extra),
      indent=1) + '\n')


if __name__ == '__main__':
  main()
