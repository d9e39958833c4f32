"""The fork's runs at upstream's defaults beside upstream's published curves.

  python runs/published_check.py runs/logdir/published_check \
      --output runs/results/published_check/figure    # --upstream ../dreamer

Reads every `<task>/<method>/<seed>/` run below the root (runs/
published_check.sh makes them) and upstream's `scores/dreamer.json` from
the upstream checkout (--upstream, else $UPSTREAM, else ../dreamer beside
this repository, as runs/upstream.py finds it; the file is verified by its
git hash at 56d4d44 and never copied here). Each run's test returns are
binned as upstream's plotting.py bins the runs behind that file: bin edges
every 100k env steps from the first evaluation (5k), each edge's value the
mean of the evaluations at steps in (previous edge, edge], the first edge's
those up to it. So 5k is the first evaluation and 105k the mean of the ten
at 15k, 25k, ..., 105k.

Upstream's loop tests before it collects, so a run trained to 105k has no
test at 105k in its curve; the first episode of its final evaluation
(runs/evaluate.py, the checkpoint at 105k, one noise-free episode as each
test of the curve) stands in for it, and the table also gives the bin with
the final evaluation's mean instead.

A run still short of 105k gets the range its (5k, 105k] value can still
reach: its tests so far with each missing one at 0 or at --max_return. With
--floor F, the table also says how many of each published seed's tests in
that bin can have scored F or less (the rest at most --max_return): the
latest a published run can have left a floor.

Writes `<output>.md` (each run's binned values beside each of upstream's
seeds, their range, and whether each value lies inside it), `<output>.json`
and `<output>.png`.
"""

import argparse
import collections
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import upstream  # noqa: E402  (no TensorFlow)
from plot import read_lines  # noqa: E402

PROG = 'published_check.py'
SCORES = pathlib.Path('scores') / 'dreamer.json'
SCORES_BLOB = 'ab35b223497127c8eb4cf1b17db7afd4389c4faf'  # At 56d4d44.
BINS = 100000  # Upstream's published curves: one point per 100k env steps.
EVAL_EVERY = 10000  # Upstream's default, for a run without its config.json.
MAX_RETURN = 1000  # A Control Suite task's: 1000 env steps, rewards in [0, 1].


def fail(message):
  sys.exit(f'{PROG}: error: {message}')


def binning(xs, ys, bins=BINS):
  """Upstream's plotting.py `binning` with its nanmean reducer: edges every
  `bins` from the first step; the values at each step in (previous edge,
  edge] averaged (every value up to the first edge for the first)."""
  order = np.argsort(xs, kind='stable')
  xs, ys = np.asarray(xs, float)[order], np.asarray(ys, float)[order]
  edges = np.arange(xs.min(), xs.max() + 1e-10, bins)
  values = []
  for start, stop in zip([-np.inf] + list(edges), edges):
    inside = (xs > start) & (xs <= stop)
    values.append(float(ys[inside].mean()) if inside.any() else None)
  return edges.astype(int).tolist(), values


def load_scores(checkout, task):
  """{seed: {step: value}} of upstream's Dreamer on the task."""
  path = checkout / SCORES
  if not path.is_file():
    raise ValueError(
        f'{checkout} has no {SCORES}: '
        f'{upstream.CLONE.format(checkout)}')
  if upstream.blob_hash(path) != SCORES_BLOB:
    raise ValueError(
        f"{path} is not upstream's at 56d4d44 (changed, or another "
        f'commit): git -C {checkout} checkout 56d4d44')
  seeds = {}
  for entry in json.loads(path.read_text()):
    if entry['task'] == f'dmc_{task}' and entry['method'] == 'dreamer':
      seeds[int(entry['seed'])] = dict(
          zip((int(x) for x in entry['xs']), entry['ys']))
  return dict(sorted(seeds.items()))


def load_run(logdir):
  """The run's test returns by step, its final evaluation and the env steps
  between its tests."""
  curve = {}
  if (logdir / 'metrics.jsonl').exists():
    for entry in read_lines(logdir / 'metrics.jsonl'):
      if 'test/return' in entry and not entry.get('final'):
        curve[int(entry['step'])] = float(entry['test/return'])
  eval_every = EVAL_EVERY
  if (logdir / 'config.json').exists():
    record = json.loads((logdir / 'config.json').read_text())
    eval_every = int(record.get('config', {}).get('eval_every', eval_every))
  final = None
  if (logdir / 'final.jsonl').exists():
    lines = list(read_lines(logdir / 'final.jsonl'))
    if lines:
      step = max(e['step'] for e in lines)
      returns = [e['return'] for e in lines if e['step'] == step]
      final = dict(step=int(step), returns=returns)
  return curve, final, eval_every


def on_grid(curve, eval_every):
  """The tests on the run's grid, the first in each `eval_every` window from
  its first test, and the steps of the others: tests at the start of a
  resume, which this project's loop made before 2026-12-07, as upstream's
  does (whose later tests shift too, which this cannot undo). Upstream's
  published runs, unbroken, have none."""
  kept, dropped, windows = {}, [], set()
  first = min(curve)
  for step in sorted(curve):
    window = (step - first) // eval_every
    if window in windows:
      dropped.append(step)
    else:
      windows.add(window)
      kept[step] = curve[step]
  return kept, dropped


def reachable(points, eval_every, max_return):
  """The range the (first, first + BINS] bin can still reach, with each of
  its tests not yet run at 0 or at max_return; None once it is complete."""
  first = min(points)
  inside = [v for s, v in points.items() if first < s <= first + BINS]
  total = BINS // eval_every
  if len(inside) >= total:
    return None
  missing = total - len(inside)
  return dict(
      edge=first + BINS, tests=len(inside), of=total,
      low=sum(inside) / total,
      high=(sum(inside) + missing * max_return) / total)


def most_at_floor(value, tests, floor, max_return):
  """How many of `tests` evaluations averaging `value` can have scored
  `floor` or less, the others scoring at most max_return."""
  return int(np.floor(tests * (max_return - value) / (max_return - floor)))


def check_run(logdir, task, seeds, max_return=MAX_RETURN):
  """Binned values of one run, with the final evaluation's stand-in."""
  curve, final, eval_every = load_run(logdir)
  if not curve:
    raise ValueError(f'{logdir} has no test returns in its metrics.jsonl')
  points, dropped = on_grid(curve, eval_every)
  result = dict(
      logdir=str(logdir), curve=sorted(curve.items()), final=final,
      stand_in=None, left_out=dropped, eval_every=eval_every)
  if final and final['step'] not in points and final['step'] > max(points):
    # The test the loop would run next, of the same checkpoint.
    points[final['step']] = final['returns'][0]
    result['stand_in'] = final['step']
  edges, values = binning(list(points), list(points.values()))
  result.update(edges=edges, values=values)
  if result['stand_in']:
    points[final['step']] = float(np.mean(final['returns']))
    result['values_with_final_mean'] = binning(
        list(points), list(points.values()))[1]
  result['upstream'] = upstream_range(seeds, edges, values)
  reach = result['reachable'] = reachable(points, eval_every, max_return)
  if reach:
    theirs = [s[reach['edge']] for s in seeds.values() if reach['edge'] in s]
    reach['can_reach_range'] = (
        reach['high'] >= min(theirs) and reach['low'] <= max(theirs)
        if theirs else None)
  return result


def upstream_range(seeds, edges, values):
  """Per edge: upstream's seeds' values, their range and mean ± std
  (ddof=1), and whether the run's value lies inside the range."""
  result = []
  for edge, value in zip(edges, values):
    theirs = [s[edge] for s in seeds.values() if edge in s]
    entry = dict(edge=edge, seeds=theirs)
    if theirs:
      entry.update(
          low=min(theirs), high=max(theirs), mean=float(np.mean(theirs)),
          std=float(np.std(theirs, ddof=1)) if len(theirs) > 1 else None,
          inside=value is not None and min(theirs) <= value <= max(theirs))
    result.append(entry)
  return result


def bin_name(edge, first):
  if edge == first:
    return f'{edge // 1000}k'
  return f'({(edge - BINS) // 1000}k, {edge // 1000}k]'


def table(task, runs, seeds, floor=None, max_return=MAX_RETURN):
  edges = sorted({e for run in runs.values() for e in run['edges']})
  names = [bin_name(e, edges[0]) for e in edges]
  lines = [
      f'### {task}', '',
      '| run | ' + ' | '.join(names) + ' | final evaluation |',
      '| --- | ' + ' | '.join('---' for _ in edges) + ' | --- |']
  number = lambda v: '' if v is None else f'{v:.1f}'
  for name, run in runs.items():
    values = dict(zip(run['edges'], run['values']))
    final = run['final']
    final = (
        f'{np.mean(final["returns"]):.1f} ± '
        f'{np.std(final["returns"], ddof=1):.1f} ({len(final["returns"])} '
        f'episodes at {final["step"]})' if final and len(final['returns']) > 1
        else '')
    lines.append(
        f'| {name} | ' + ' | '.join(number(values.get(e)) for e in edges) +
        f' | {final} |')
    if run.get('values_with_final_mean'):
      alternative = dict(zip(run['edges'], run['values_with_final_mean']))
      lines.append(
          f'| {name}, the final evaluation\'s mean at {run["stand_in"]} | ' +
          ' | '.join(number(alternative.get(e)) for e in edges) + ' | |')
  for seed, values in seeds.items():
    lines.append(
        f'| published seed {seed} | ' +
        ' | '.join(number(values.get(e)) for e in edges) + ' | |')
  ranges = {
      e: [s[e] for s in seeds.values() if e in s] for e in edges}
  lines.append(
      '| published range | ' + ' | '.join(
          f'{min(v):.0f} to {max(v):.0f}' if v else '' for v in
          ranges.values()) + ' | |')
  lines.append(
      '| published mean ± std | ' + ' | '.join(
          f'{np.mean(v):.1f} ± {np.std(v, ddof=1):.1f}' if len(v) > 1 else ''
          for v in ranges.values()) + ' | |')
  lines.append('')
  for name, run in runs.items():
    for entry, value in zip(run['upstream'], run['values']):
      if 'inside' not in entry or value is None:
        continue
      where = 'inside' if entry['inside'] else 'OUTSIDE'
      lines.append(
          f'- {name}, {bin_name(entry["edge"], edges[0])}: {value:.1f}, '
          f'{where} upstream\'s range {entry["low"]:.0f} to '
          f'{entry["high"]:.0f}.')
    if run['left_out']:
      lines.append(
          f'- {name}: left out, the tests at the start of a resume '
          f'(off the run\'s grid): {", ".join(map(str, run["left_out"]))}.')
    if run['stand_in']:
      lines.append(
          f'- {name}: the test at {run["stand_in"]} is the first episode of '
          'the final evaluation of the checkpoint there.')
    reach = run['reachable']
    if reach:
      lines.append(
          f'- {name}: {reach["tests"]} of the {reach["of"]} tests of '
          f'{bin_name(reach["edge"], edges[0])} so far; its value can still '
          f'be {reach["low"]:.1f} to {reach["high"]:.1f} (each test to come '
          f'at 0 to {max_return:g})' + {
              None: '.', True: ': it can still land in upstream\'s range.',
              False: ': it can no longer land in upstream\'s range.'}[
                  reach['can_reach_range']])
  if floor is not None:
    edge = edges[0] + BINS
    tests = BINS // min(run['eval_every'] for run in runs.values())
    counts = [
        f'seed {seed} ({values[edge]:.0f}): '
        f'{most_at_floor(values[edge], tests, floor, max_return)}'
        for seed, values in seeds.items() if edge in values]
    lines.append(
        f'- At most this many of the {tests} tests in each published seed\'s '
        f'{bin_name(edge, edges[0])} can have scored {floor:g} or less (the '
        f'others at most {max_return}): ' + ', '.join(counts) + '.')
  lines += [
      '', 'Bins as upstream\'s plotting.py makes them: 5k is the first '
      'evaluation, each later edge the mean of the evaluations after the '
      'previous edge up to it. Standard deviations are ddof=1.', '']
  return '\n'.join(lines)


def plot(task, runs, seeds, filename):
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(7, 4.5))
  last = max(max(run['edges']) for run in runs.values())
  for seed, values in seeds.items():
    xs = [x for x in sorted(values) if x <= last]
    ax.plot(xs, [values[x] for x in xs], '--', marker='s', color='gray',
            alpha=0.6, label='upstream, its 5 seeds (binned)' if seed == min(
                seeds) else None)
  cycle = plt.rcParams['axes.prop_cycle'].by_key()['color']
  for color, (name, run) in zip(cycle, runs.items()):
    steps, returns = zip(*run['curve'])
    ax.plot(steps, returns, '-', marker='.', color=color, alpha=0.4,
            label=f'{name}, each test episode')
    ax.plot(run['edges'], run['values'], '-', marker='o', color=color,
            label=f'{name}, binned as upstream')
    if run['final']:
      returns = run['final']['returns']
      ax.errorbar(
          run['final']['step'], np.mean(returns),
          np.std(returns, ddof=1) if len(returns) > 1 else 0, marker='D',
          color=color, capsize=3,
          label=f'{name}, final evaluation ({len(returns)} episodes)')
  ax.set_title(f'{task}: the fork at upstream\'s defaults and upstream')
  ax.set_xlabel('environment steps')
  ax.set_ylabel('test return')
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(filename, dpi=100)
  plt.close(fig)


def main(argv=None):
  parser = argparse.ArgumentParser(
      prog=PROG, description=__doc__.split('\n')[0])
  parser.add_argument('root', type=pathlib.Path)
  parser.add_argument(
      '--output', type=pathlib.Path, required=True, help='without suffix')
  parser.add_argument(
      '--upstream', type=pathlib.Path,
      help='the upstream checkout (default: $UPSTREAM, else ../dreamer)')
  parser.add_argument(
      '--max_return', type=float, default=MAX_RETURN,
      help="an episode's highest return (default: a Control Suite task's)")
  parser.add_argument(
      '--floor', type=float,
      help='also count the tests of each published seed that can have scored '
      'this or less')
  args = parser.parse_args(argv)
  checkout = upstream.checkout_path(
      ['--upstream', str(args.upstream)] if args.upstream else [])
  logdirs = sorted(
      p.parent for p in args.root.rglob('metrics.jsonl')
      if len(p.parent.relative_to(args.root).parts) == 3)
  if not logdirs:
    fail(f'no <task>/<method>/<seed> run below {args.root}')
  tasks = collections.defaultdict(dict)
  for logdir in logdirs:
    task, method, seed = logdir.relative_to(args.root).parts
    tasks[task][f'{method} seed {seed}'] = logdir
  results, text = {}, []
  args.output.parent.mkdir(parents=True, exist_ok=True)
  for task, named in sorted(tasks.items()):
    try:
      seeds = load_scores(checkout, task)
      if not seeds:
        raise ValueError(f'{checkout / SCORES} has no dreamer runs of {task}')
      runs = {
          name: check_run(logdir, task, seeds, args.max_return)
          for name, logdir in named.items()}
    except ValueError as e:
      fail(str(e))
    results[task] = dict(runs=runs, upstream={
        str(seed): values for seed, values in seeds.items()})
    text.append(table(task, runs, seeds, args.floor, args.max_return))
    suffix = '' if len(tasks) == 1 else f'_{task}'
    plot(task, runs, seeds, f'{args.output}{suffix}.png')
  args.output.with_suffix('.md').write_text('\n'.join(text))
  args.output.with_suffix('.json').write_text(
      json.dumps(results, indent=1) + '\n')
  print('\n'.join(text))
  print(f'Wrote {args.output}.md, .json and .png')


if __name__ == '__main__':
  main()
