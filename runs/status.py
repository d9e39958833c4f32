"""Where the runs of a figure are: step, last test return, state.

  python runs/status.py runs/logdir/bird_figure2     # one line per run
  python runs/status.py --finished 1e6 LOGDIR...     # the finished ones

A run's state is `running` while a process holds its logdir, `finished` once
its checkpoint reached the steps it was started with (config.json; for an
upstream run, the env steps of its episodes, as its own loop counts), `failed`
when the last process that ran it exited with an error (LOGDIR/exit_code,
written by the figure scripts), and `stopped` otherwise: started, resumable.
"""

import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import tools  # noqa: E402


def record(logdir):
  """The run's config.json as a dict, or {}."""
  try:
    values = json.loads((pathlib.Path(logdir) / 'config.json').read_text())
  except (OSError, ValueError):
    return {}
  return values if isinstance(values, dict) else {}


def run_step(logdir, values):
  """The step of the run's checkpoint, or None without one. An upstream run's
  (runs/upstream.py) is the step its own loop counts, the env steps of its
  episodes: its agent's counter, restored from the last checkpoint on a
  resume, lags them by the episodes written after that checkpoint."""
  logdir = pathlib.Path(logdir)
  try:
    step = tools.checkpoint_step(logdir / 'variables.pkl')
  except tools.CheckpointError:
    return None
  if step is not None and 'upstream' in values:
    try:
      repeat = int(values['config']['action_repeat'])
    except (KeyError, TypeError, ValueError):
      return step
    step = tools.count_episodes(logdir / 'episodes')[1] * repeat
  return step


def status(logdir):
  """A dict of the run's method path, step, steps, last test return, state."""
  logdir = pathlib.Path(logdir)
  values = record(logdir)
  step = run_step(logdir, values)
  steps = None
  try:
    steps = values['config']['steps']
  except (KeyError, TypeError):
    pass
  last = None
  if (logdir / 'metrics.jsonl').exists():
    for line in (logdir / 'metrics.jsonl').read_text().splitlines():
      try:
        entry = json.loads(line)
      except ValueError:
        continue
      if 'test/return' in entry and not entry.get('final'):
        last = entry['test/return']
  exit_code = None
  if (logdir / 'exit_code').exists():
    text = (logdir / 'exit_code').read_text().strip()
    exit_code = int(text) if text.lstrip('-').isdigit() else None
  if tools.locked(logdir) is not None:
    state = 'running'
  elif step is not None and steps is not None and step >= steps:
    state = 'finished'
  elif exit_code:
    state = 'failed'
  else:
    state = 'stopped'
  return dict(
      logdir=str(logdir), step=step, steps=steps, last_return=last,
      state=state, exit_code=exit_code)


def runs_below(root):
  return sorted({
      p.parent for name in ('config.json', 'variables.pkl', 'exit_code')
      for p in pathlib.Path(root).rglob(name)})


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('paths', nargs='+', type=pathlib.Path)
  parser.add_argument(
      '--finished', type=float, metavar='STEPS',
      help='print the given logdirs whose checkpoint reached STEPS')
  args = parser.parse_args(argv)
  if args.finished is not None:
    for logdir in args.paths:
      step = run_step(logdir, record(logdir))
      if step is not None and step >= args.finished:
        print(logdir)
    return
  rows = [status(logdir) for root in args.paths for logdir in runs_below(root)]
  if not rows:
    paths = ' '.join(map(str, args.paths))
    sys.exit(f'status.py: error: no runs below {paths}')
  counts = {}
  for row in rows:
    counts[row['state']] = counts.get(row['state'], 0) + 1
    step = '-' if row['step'] is None else row['step']
    steps = '?' if row['steps'] is None else f'{float(row["steps"]):.0f}'
    ret = '-' if row['last_return'] is None else f'{row["last_return"]:.1f}'
    code = ''
    if row['state'] == 'failed':
      code = f' (exit code {row["exit_code"]})'
    print(f'{row["state"]:8} {step:>9} / {steps:<9} return {ret:>7}  '
          f'{row["logdir"]}{code}')
  print(', '.join(f'{n} {state}' for state, n in sorted(counts.items())))


if __name__ == '__main__':
  main()
