"""Speed and memory of the agent on this machine; prints and writes JSON.

  python runs/benchmark.py                      # everything, about 15 minutes on 2 CPU cores
  python runs/benchmark.py --only train_graph_reduced policy collect

Each measurement runs in its own process so that peak memory is its own. Train steps use
random batches of the configured size; collection runs the untrained agent's policy with
exploration noise in a real environment, rendering every agent step.
"""

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = {
    'default': dict(batch_size=50, batch_length=50, cnn_depth=32),
    'reduced': dict(batch_size=16, batch_length=50, cnn_depth=16),
}

MEASURES = [
    'train_graph_default', 'train_graph_reduced', 'train_xla_default', 'train_xla_reduced',
    'policy', 'collect']


def peak_rss_gib():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def make_agent(overrides, logdir, agent='dreamer'):
  import dreamer
  import tools
  import wrappers
  module = __import__(agent)
  config = module.define_config()
  config.update(overrides)
  config.logdir = pathlib.Path(logdir)
  dreamer.setup(config)
  logger = tools.Logger(logdir, config.steps)
  actspace = wrappers.Box(-np.ones(6), np.ones(6))
  agent_class = {'dreamer': 'Dreamer', 'bird': 'BIRD', 'idm': 'IDM'}[agent]
  return getattr(module, agent_class)(config, pathlib.Path(logdir) / 'episodes', actspace,
                                      logger), config


def measure_train(size, jit, steps, agent):
  with tempfile.TemporaryDirectory() as logdir:
    if jit:
      # XLA dumps each module it compiles (before TensorFlow starts in this process).
      dump = pathlib.Path(logdir) / 'xla'
      os.environ['XLA_FLAGS'] = f'--xla_dump_to={dump} --xla_dump_hlo_as_text'
    agent, config = make_agent(dict(SIZES[size], jit=jit, precision=32), logdir, agent)
    import tools  # After XLA_FLAGS: TensorFlow reads them at import.
    batch = tools.random_batch((config.batch_size, config.batch_length), 6)
    times = []
    for _ in range(steps + 2):
      start = time.time()
      metrics = agent.train(batch)
      float(metrics['model_loss'])  # Wait for the step to finish.
      times.append(time.time() - start)
    return dict(
        first_call_s=times[0], second_call_s=times[1],
        steady_median_s=float(np.median(times[2:])), steady_min_s=float(np.min(times[2:])),
        call_times_s=[round(t, 3) for t in times], steps=steps,
        traces=agent._train_fn.experimental_get_tracing_count(), peak_rss_gib=peak_rss_gib(),
        xla_compilations=(
            len(list(dump.glob('*_train_*before_optimizations.txt'))) if jit else None))


def measure_policy(calls):
  with tempfile.TemporaryDirectory() as logdir:
    agent, config = make_agent(dict(SIZES['default']), logdir)
    obs = {'image': np.zeros((1, 64, 64, 3), np.uint8)}
    reset = np.array([False])
    _, state = agent(obs, np.array([True]), None, training=False)
    for _ in range(20):
      _, state = agent(obs, reset, state, training=False)
    times = []
    for _ in range(calls):
      start = time.time()
      _, state = agent(obs, reset, state, training=False)
      times.append(time.time() - start)
    return dict(
        median_ms=1000 * float(np.median(times)), calls=calls, peak_rss_gib=peak_rss_gib())


def measure_collect(task, frames, parallel):
  import dreamer
  import tools
  with tempfile.TemporaryDirectory() as logdir:
    # No training and no stored episodes: this times acting, physics and rendering.
    agent, config = make_agent(dict(
        SIZES['default'], task=task, parallel=parallel, log_images=False), logdir)
    logger = tools.Logger(logdir, 0)
    env = dreamer.make_env(config, logger, 'bench', pathlib.Path(logdir) / 'x', store=False)
    agent._should_train = lambda step: False
    try:
      tools.simulate(agent, [env], steps=10)  # Warm up: trace the policy, open the renderer.
      start = time.time()
      tools.simulate(agent, [env], steps=frames // config.action_repeat)
      duration = time.time() - start
    finally:
      env.close()
    return dict(
        env_frames_per_s=frames / duration, frames=frames, task=task, parallel=parallel,
        action_repeat=config.action_repeat, peak_rss_gib=peak_rss_gib())


def run_one(name, args):
  if name.startswith('train_'):
    _, mode, size = name.split('_')
    steps = args.steps if size == 'reduced' or mode == 'graph' else max(2, args.steps // 3)
    return measure_train(size, mode == 'xla', steps, args.agent)
  if name == 'policy':
    return measure_policy(args.calls)
  if name == 'collect':
    return measure_collect(args.task, args.frames, args.parallel)
  raise ValueError(name)


UPSTREAM = {
    'train_graph_default': 'steady 7.1 s (6.7-8.5), first trace + step 39 s, peak 6.5 GiB',
    'train_graph_reduced': 'steady 1.30 s, peak 2.9 GiB',
    'train_xla_default': 'steady 17.4 s, compile 86 s',
    'train_xla_reduced': 'steady 2.84 s, compile 57 s',
    'policy': '2.0 ms',
    'collect': '39 env frames/s (walker_walk, repeat 2)',
}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--only', nargs='*', choices=MEASURES, default=MEASURES)
  parser.add_argument('--steps', type=int, default=6, help='steady train steps to time')
  parser.add_argument('--calls', type=int, default=200, help='policy calls to time')
  parser.add_argument('--frames', type=int, default=1000, help='env frames to collect')
  parser.add_argument('--task', default='dmc_walker_walk')
  parser.add_argument('--parallel', default='none', choices=['none', 'thread', 'process'])
  parser.add_argument('--agent', default='dreamer', choices=['dreamer', 'bird', 'idm'])
  parser.add_argument('--output', default=str(ROOT / 'runs' / 'results' / 'benchmark.json'))
  parser.add_argument('--child', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    print('RESULT ' + json.dumps(run_one(args.child, args)), flush=True)
    return
  results = {}
  for name in args.only:
    print(f'--- {name}', flush=True)
    command = [sys.executable, __file__, '--child', name] + [
        f'--{k}={v}' for k, v in vars(args).items()
        if k in ('steps', 'calls', 'frames', 'task', 'parallel', 'agent')]
    process = subprocess.run(command, capture_output=True, text=True)
    lines = [l for l in process.stdout.splitlines() if l.startswith('RESULT ')]
    if process.returncode or not lines:
      print(process.stdout[-2000:], process.stderr[-4000:], file=sys.stderr)
      results[name] = {'error': f'exit code {process.returncode}'}
      continue
    key = name if args.agent == 'dreamer' or not name.startswith('train_') else (
        f'{args.agent}/{name}')
    results[key] = json.loads(lines[-1][len('RESULT '):])
    print(f'{key}: {json.dumps(results[key])}')
    print(f'  upstream (Dreamer): {UPSTREAM[name]}', flush=True)
  output = pathlib.Path(args.output)
  output.parent.mkdir(parents=True, exist_ok=True)
  previous = json.loads(output.read_text()) if output.exists() else {}
  previous.update(results)
  output.write_text(json.dumps(previous, indent=2) + '\n')
  print(f'Wrote {output}')


if __name__ == '__main__':
  main()
