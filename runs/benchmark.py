"""Speed and memory of the agents on this machine: JSON and a markdown table.

  python runs/benchmark.py                # every measure, about 40 minutes on
                                          # 2 CPU cores
  python runs/benchmark.py --only train/dreamer policy
  python runs/benchmark.py --readme       # the table from the JSON

Each measure runs in its own process, so that its peak memory is its own.
Train steps use a random batch of the size's shape; the policy is called
with batch 1 at the default size, in training (sample, noise) and evaluation
(mode of 100 samples) mode; collection runs the untrained agent's policy in
walker_walk at action repeat 2, rendering every agent step, and in Pong at
Atari's frame skip 4 (one-hot actor, epsilon-greedy). A run writes every
number with the machine and the commit that measured it to
runs/results/benchmark.json, and the table between its markers in
runs/README.md.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / 'runs')]
import methods  # noqa: E402  (no TensorFlow)

OUTPUT = ROOT / 'runs' / 'results' / 'benchmark.json'
README = ROOT / 'runs' / 'README.md'
SIZES = {
    'default': dict(batch_size=50, batch_length=50, cnn_depth=32),
    'reduced': dict(batch_size=16, batch_length=50, cnn_depth=16),
}
PRECISIONS = {'32': 32, 'bf16': 'bf16'}
# Train loops at sizes whose steps take milliseconds, as a GPU's do: the
# tests' tiny model, and one between it and the CPU check's reduced one.
LOOP_SIZES = {
    'tiny': dict(
        batch_size=3, batch_length=8, cnn_depth=2, deter_size=8, stoch_size=4,
        num_units=8, horizon=4),
    'small': dict(
        batch_size=16, batch_length=16, cnn_depth=4, deter_size=32,
        stoch_size=8, num_units=64),
}


def measures():
  """Every measure's name: kind/what/precision/..."""
  names = []
  for agent in ('dreamer', 'bird', 'idm'):
    for precision in PRECISIONS:
      for size in SIZES:
        names.append(f'train/{agent}/{precision}/graph/{size}')
  names += [f'train/dreamer/32/xla/{size}' for size in SIZES]
  names += [
      f'policy/{p}/{mode}' for p in PRECISIONS for mode in ('eval', 'train')]
  names += [f'collect/{p}/envs1' for p in PRECISIONS]
  names += ['collect/32/envs2-process']
  names += [f'collect/{p}/atari_pong' for p in PRECISIONS]
  names += [f'loop/{size}/{loop}' for size in LOOP_SIZES
            for loop in ('before', 'prefetch')]
  return names


def peak_rss_gib():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def make_agent(agent, logdir, **overrides):
  import importlib
  import dreamer
  import tools
  import wrappers
  module, name = methods.method(agent)[1].rsplit('.', 1)
  config = importlib.import_module(module).define_config()
  config.update(overrides)
  dreamer.apply_atari(config, set(overrides))
  config.logdir = pathlib.Path(logdir)
  dreamer.setup(config)
  logger = tools.Logger(logdir, config.steps)
  actspace = wrappers.Box(-np.ones(6), np.ones(6))  # Pong has 6 actions too.
  agent_class = getattr(importlib.import_module(module), name)
  agent = agent_class(config, config.logdir / 'episodes', actspace, logger)
  return agent, config


def measure_train(agent, precision, mode, size, steps):
  with tempfile.TemporaryDirectory() as logdir:
    dump = pathlib.Path(logdir) / 'xla'
    if mode == 'xla':  # XLA reads it when TensorFlow starts.
      os.environ['XLA_FLAGS'] = f'--xla_dump_to={dump} --xla_dump_hlo_as_text'
    agent, config = make_agent(
        agent, logdir, jit=mode == 'xla', precision=PRECISIONS[precision],
        **SIZES[size])
    import tools
    batch = tools.random_batch((config.batch_size, config.batch_length), 6)
    times = []
    for _ in range(steps + 2):
      start = time.perf_counter()
      float(agent.train(batch)['model_loss'])  # Waits for the step.
      times.append(time.perf_counter() - start)
    compiled = len(list(dump.glob('*_train_*before_optimizations.txt')))
    return dict(
        first_call_s=times[0], second_call_s=times[1],
        median_s=float(np.median(times[2:])), min_s=float(np.min(times[2:])),
        calls_s=[round(t, 3) for t in times],
        traces=agent._train_fn.experimental_get_tracing_count(),
        xla_compilations=compiled if mode == 'xla' else None,
        peak_rss_gib=peak_rss_gib())


def measure_policy(precision, mode, calls):
  with tempfile.TemporaryDirectory() as logdir:
    agent, _ = make_agent(
        'dreamer', logdir, precision=PRECISIONS[precision], **SIZES['default'])
    agent._train_due = lambda step: 0
    training = mode == 'train'
    obs = {'image': np.zeros((1, 64, 64, 3), np.uint8)}
    _, state = agent(obs, np.array([True]), None, training=training)
    reset = np.array([False])
    times = []
    for index in range(calls + 50):
      start = time.perf_counter()
      _, state = agent(obs, reset, state, training=training)
      times.append(time.perf_counter() - start)
    times = times[50:]
    return dict(
        median_ms=1000 * float(np.median(times)),
        p90_ms=1000 * float(np.percentile(times, 90)), calls=calls,
        traces=agent._policy_fn.experimental_get_tracing_count(),
        peak_rss_gib=peak_rss_gib())


def measure_collect(precision, envs, frames):
  import dreamer
  import tools
  count, parallel = (2, 'process') if envs == 'envs2-process' else (1, 'none')
  task = 'atari_pong' if envs == 'atari_pong' else 'dmc_walker_walk'
  with tempfile.TemporaryDirectory() as logdir:
    # No training and no stored episodes: acting, physics and rendering.
    agent, config = make_agent(
        'dreamer', logdir, task=task, envs=count,
        parallel=parallel, log_images=False, precision=PRECISIONS[precision],
        **SIZES['default'])
    logger = tools.Logger(logdir, 0)
    datadir = pathlib.Path(logdir) / 'unused'
    envs = [
        dreamer.make_env(config, logger, 'train', datadir, False, index)
        for index in range(count)]
    agent._train_due = lambda step: 0
    try:
      tools.simulate(agent, envs, steps=10)  # Traces, opens the renderers.
      start = time.perf_counter()
      tools.simulate(agent, envs, steps=frames // config.action_repeat)
      duration = time.perf_counter() - start
    finally:
      for env in envs:
        env.close()
    return dict(
        env_frames_per_s=frames / duration, frames=frames,
        agent_steps_per_s=frames / config.action_repeat / duration,
        task=task, action_repeat=config.action_repeat,
        envs=count, parallel=parallel, peak_rss_gib=peak_rss_gib())


def measure_loop(size, loop, steps):
  """Train steps per second of a train phase over a replay of real-format
  episodes, and the host's time per step outside the compiled function.

  `before`: the loop before prefetching, kept here for comparison: each
  step sampled in the main thread, then every metric read back (a wait for
  the device each) and the skipped updates checked. `prefetch`: the agent's
  own loop, which samples in a thread and reads nothing per step.
  """
  import dreamer
  import tools
  with tempfile.TemporaryDirectory() as logdir:
    agent, config = make_agent(
        'dreamer', logdir, precision=32, jit=False, **LOOP_SIZES[size])
    random = np.random.RandomState(0)
    for _ in range(10):  # 10 episodes of 500 steps, as a real run stores.
      episode = tools.random_batch((1, 501), 6, random.randint(1000))
      tools.save_episodes(
          config.logdir / 'episodes', [{k: v[0] for k, v in episode.items()}])
    agent._replay.update()
    inside = []
    train_fn = agent._train_fn
    def timed(tensors):
      start = time.perf_counter()
      metrics = train_fn(tensors)
      inside.append(time.perf_counter() - start)
      return metrics
    agent._train_fn = timed
    def before(count):
      for _ in range(count):
        metrics = agent.train(agent._replay.sample(config.batch_size))
        values = {k: float(v) for k, v in metrics.items()}
        assert values['skipped_updates'] == 0
    def prefetch(count):
      batches = agent._replay.prefetch(
          config.batch_size, count, convert=agent._batch)
      with batches as batches:
        for data, tensors in batches:
          agent.train(data, False, tensors)
      agent._check_finite()
      agent._sums.means()
    phase = dict(before=before, prefetch=prefetch)[loop]
    phase(10)  # Traces the step.
    rates, hosts = [], []
    for _ in range(5):
      inside.clear()
      start = time.perf_counter()
      phase(steps)
      duration = time.perf_counter() - start
      rates.append(steps / duration)
      hosts.append((duration - sum(inside)) / steps)
    return dict(
        steps_per_s=float(np.median(rates)),
        host_ms_per_step=1000 * float(np.median(hosts)),
        step_ms=1000 * float(np.median(inside)), steps=steps, phases=5,
        peak_rss_gib=peak_rss_gib())


def run_one(name, args):
  parts = name.split('/')
  if parts[0] == 'train':
    _, agent, precision, mode, size = parts
    steps = args.steps if mode == 'graph' else max(2, args.steps // 2)
    return measure_train(agent, precision, mode, size, steps)
  if parts[0] == 'policy':
    return measure_policy(parts[1], parts[2], args.calls)
  if parts[0] == 'collect':
    return measure_collect(parts[1], parts[2], args.frames)
  if parts[0] == 'loop':
    return measure_loop(parts[1], parts[2], args.loop_steps)
  raise ValueError(name)


def machine():
  import dreamer
  cpu = dreamer.tools.cpuinfo().get('model name', platform.processor())
  memory = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2 ** 30
  return dict(
      cpu=cpu, cores=os.cpu_count(), memory_gib=round(memory, 1),
      gpu=bool(dreamer.tools.gpu_generations()),
      python=platform.python_version(),
      **{k: v for k, v in dreamer.versions().items() if v})


def commit():
  try:
    return subprocess.run(
        ['git', '-C', str(ROOT), 'describe', '--always', '--dirty'],
        capture_output=True, text=True, timeout=10).stdout.strip() or None
  except OSError:
    return None


def cell(results, name, key, unit, scale=1.0, digits=2):
  result = results.get(name)
  if not result or key not in result:
    return '–'
  mark = ' \\*' if 'note' in result else ''  # A note below the table.
  return f'{result[key] * scale:.{digits}f} {unit}'.rstrip() + mark


def provenance(results):
  """Where and when the results were measured, one line per distinct run."""
  seen = {}
  for result in results.values():
    if 'commit' in result:
      machine = result['machine']
      key = (
          f'{result["date"]} at commit `{result["commit"]}` on '
          f'{machine["cpu"]}, {machine["cores"]} cores, '
          f'{machine["memory_gib"]} GiB, {"a" if machine["gpu"] else "no"} '
          f'GPU, TensorFlow {machine.get("tensorflow")}')
      seen[key] = seen.get(key, 0) + 1
  return [f'Measured {key} ({n} measures).' for key, n in seen.items()]


def readme_table(data):
  """The README's benchmark table, from the JSON."""
  results = data['results']
  lines = provenance(results) + [
      '', '| measure | float32 | bfloat16 (`--precision bf16`) |',
      '| --- | --- | --- |']
  for agent in ('dreamer', 'bird', 'idm'):
    for size in SIZES:
      row = [f'{agent} train step, {size} size, graph']
      for precision in PRECISIONS:
        name = f'train/{agent}/{precision}/graph/{size}'
        text = cell(results, name, 'median_s', 's')
        if name in results:
          text += f' (peak {results[name]["peak_rss_gib"]:.1f} GiB)'
        row.append(text)
      lines.append('| ' + ' | '.join(row) + ' |')
  for size in SIZES:
    name = f'train/dreamer/32/xla/{size}'
    result = results.get(name, {})
    lines.append(
        f'| dreamer train step, {size} size, XLA | '
        f'{cell(results, name, "median_s", "s")}; first call '
        f'{cell(results, name, "first_call_s", "s", digits=1)}, '
        f'{result.get("xla_compilations", "–")} compilation | |')
  for mode, what in (('eval', 'evaluation (mode)'), ('train', 'training')):
    lines.append(
        f'| policy call, batch 1, {what} | ' + ' | '.join(
            cell(results, f'policy/{p}/{mode}', 'median_ms', 'ms')
            for p in PRECISIONS) + ' |')
  lines.append(
      '| collection, walker_walk, 1 env | ' + ' | '.join(
          cell(results, f'collect/{p}/envs1', 'env_frames_per_s',
               'env frames/s', digits=1) for p in PRECISIONS) + ' |')
  lines.append(
      '| collection, atari_pong, 1 env, frame skip 4 | ' + ' | '.join(
          cell(results, f'collect/{p}/atari_pong', 'env_frames_per_s',
               'env frames/s', digits=1) for p in PRECISIONS) + ' |')
  lines.append(
      '| collection, 2 envs, `--parallel process` | ' + cell(
          results, 'collect/32/envs2-process', 'env_frames_per_s',
          'env frames/s', digits=1) + ' | |')
  lines += [
      '', '| train phase of 100 steps, float32 graph | steps/s before '
      '→ with prefetch | host time per step outside the step, before → '
      'with prefetch | the step itself |', '| --- | --- | --- | --- |']
  for size, sizes in LOOP_SIZES.items():
    names = [f'loop/{size}/{loop}' for loop in ('before', 'prefetch')]
    shape = f'{sizes["batch_size"]}x{sizes["batch_length"]}'
    lines.append(
        f'| {size} (batch {shape}, cnn_depth {sizes["cnn_depth"]}) | ' +
        ' → '.join(cell(results, n, 'steps_per_s', '', digits=0)
                   for n in names) + ' | ' +
        ' → '.join(cell(results, n, 'host_ms_per_step', 'ms')
                   for n in names) + ' | ' +
        cell(results, names[1], 'step_ms', 'ms') + ' |')
  notes = [
      f'\\* `{name}`: {result["note"]}' for name, result in results.items()
      if 'note' in result]
  return '\n'.join(lines + ([''] + notes if notes else [])) + '\n'


def write_readme(data):
  begin, end = '<!-- benchmark:begin -->\n', '<!-- benchmark:end -->'
  text = README.read_text()
  if begin not in text or end not in text:
    sys.exit(f'benchmark.py: error: {README} lacks the benchmark markers')
  head, rest = text.split(begin, 1)
  tail = rest.split(end, 1)[1]
  README.write_text(head + begin + readme_table(data) + end + tail)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument(
      '--only', nargs='*', default=[],
      help='measures whose names start with one of these')
  parser.add_argument('--steps', type=int, default=6, help='train steps timed')
  parser.add_argument('--calls', type=int, default=300, help='policy calls')
  parser.add_argument('--frames', type=int, default=1000, help='env frames')
  parser.add_argument(
      '--loop_steps', type=int, default=100, help='train steps of a phase')
  parser.add_argument(
      '--readme', action='store_true', help='only rewrite the table')
  parser.add_argument('--child', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    print('RESULT ' + json.dumps(run_one(args.child, args)), flush=True)
    return
  if args.readme:
    write_readme(json.loads(OUTPUT.read_text()))
    return
  names = [
      n for n in measures()
      if not args.only or any(n.startswith(p) for p in args.only)]
  data = json.loads(OUTPUT.read_text()) if OUTPUT.exists() else {}
  data.setdefault('results', {})
  provenance = dict(
      commit=commit(), machine=machine(),
      date=datetime.date.today().isoformat())
  for name in names:
    print(f'--- {name}', flush=True)
    command = [sys.executable, __file__, '--child', name] + [
        f'--{k}={getattr(args, k)}'
        for k in ('steps', 'calls', 'frames', 'loop_steps')]
    process = subprocess.run(command, capture_output=True, text=True)
    lines = [l for l in process.stdout.splitlines() if l.startswith('RESULT ')]
    if process.returncode or not lines:
      print(process.stderr[-3000:], file=sys.stderr)
      data['results'][name] = {'error': f'exit code {process.returncode}'}
      continue
    data['results'][name] = dict(
        json.loads(lines[-1][len('RESULT '):]), **provenance)
    print(json.dumps(data['results'][name]), flush=True)
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(data, indent=1) + '\n')
  write_readme(data)
  print(f'Wrote {OUTPUT} and the table in {README}')


if __name__ == '__main__':
  main()
