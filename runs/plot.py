"""Learning curves and final returns of every run under a root.

  python runs/plot.py runs/logdir/bird_figure2 --output runs/results/bird_figure2

Reads every `<task>/<method>/<seed>/metrics.jsonl` below the root, bins each run's values of
`--metric` by env step, and draws the mean over seeds with a band of one standard deviation,
one panel per task. Writes `<output>.png`; `<output>.md`, a table of final returns: per
seed the mean of its last `--last` values, then mean and standard deviation over seeds; and
`<output>.json`, the numbers drawn (each curve's points and each final return). The figure
marks each final return as a dot with its standard deviation at the last step.

A method whose values all share one step (e.g. a random policy's episodes) is drawn as a
horizontal line with its band. `--baseline FILE` overlays curves in upstream's scores format
(a JSON list of {task, method, seed, xs, ys}). With `--above METHOD`, the script exits 1
unless every other method's final mean exceeds METHOD's mean + `--sigmas` standard deviations.
"""

import argparse
import collections
import json
import pathlib
import sys
import warnings

import numpy as np


def load_runs(root, metric):
  """{(task, method): {seed: (steps, values)}} from the metrics.jsonl files below root."""
  runs = collections.defaultdict(dict)
  for path in sorted(pathlib.Path(root).rglob('metrics.jsonl')):
    parts = path.relative_to(root).parts
    if len(parts) < 4:
      warnings.warn(f'{path}: expected <task>/<method>/<seed>/metrics.jsonl; skipped')
      continue
    task, method, seed = parts[-4:-1]
    steps, values = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
      try:
        entry = json.loads(line)
      except json.JSONDecodeError:
        warnings.warn(f'{path}:{number}: not JSON; skipped')
        continue
      if metric in entry:
        steps.append(entry['step'])
        values.append(entry[metric])
    if steps:
      runs[normalize(task), method][seed] = (np.array(steps), np.array(values, float))
  return runs


def load_baseline(filename):
  runs = collections.defaultdict(dict)
  for entry in json.loads(pathlib.Path(filename).read_text()):
    key = normalize(entry['task']), f"{entry['method']} (baseline)"
    runs[key][str(entry['seed'])] = (np.array(entry['xs']), np.array(entry['ys'], float))
  return runs


def normalize(task):
  return task[len('dmc_'):] if task.startswith('dmc_') else task


def constant(seeds):
  return len({float(s) for steps, _ in seeds.values() for s in steps}) == 1


def binned(seeds, edges):
  """Mean over seeds (and std) of each seed's mean value within each bin of steps."""
  table = np.full((len(seeds), len(edges) - 1), np.nan)
  for row, (steps, values) in enumerate(seeds.values()):
    index = np.clip(np.digitize(steps, edges) - 1, 0, len(edges) - 2)
    for column in np.unique(index):
      table[row, column] = values[index == column].mean()
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', RuntimeWarning)  # Bins no seed reached.
    return np.nanmean(table, 0), np.nanstd(table, 0)


def curve(seeds, edges):
  """Bin centers, mean and std of the bins that hold values: a line without gaps."""
  mean, std = binned(seeds, edges)
  centers = (edges[:-1] + edges[1:]) / 2
  valid = np.isfinite(mean)
  return centers[valid], mean[valid], std[valid]


def final(seeds, last):
  """Per seed the mean of its last values; for a constant method, every value."""
  if constant(seeds):
    values = np.concatenate([v for _, v in seeds.values()])
  else:
    values = np.array([v[np.argsort(s, kind='stable')][-last:].mean() for s, v in seeds.values()])
  return values.mean(), values.std(), len(values)


def table(runs, last):
  lines = [
      '| task | method | final return (mean ± std) | n | last step |',
      '| --- | --- | --- | --- | --- |']
  for (task, method), seeds in sorted(runs.items()):
    mean, std, count = final(seeds, last)
    step = max(int(s.max()) for s, _ in seeds.values())
    unit = 'episodes' if constant(seeds) else 'seeds'
    lines.append(f'| {task} | {method} | {mean:.1f} ± {std:.1f} | {count} {unit} | {step} |')
  return '\n'.join(lines) + '\n'


def edges_of(runs, task, bins):
  """Bin edges from 0 to the last step of the task's runs that are curves."""
  end = max(s.max() for (t, _), seeds in runs.items()
            if t == task and not constant(seeds) for s, _ in seeds.values())
  return np.linspace(0, end, bins + 1)


def numbers(runs, bins, last):
  """What the figure and the table show, as plain numbers."""
  result = collections.defaultdict(dict)
  for (task, method), seeds in sorted(runs.items()):
    mean, std, count = final(seeds, last)
    entry = dict(
        final=dict(mean=mean, std=std, n=count),
        last_step=int(max(s.max() for s, _ in seeds.values())))
    if not constant(seeds):
      x, mean, std = curve(seeds, edges_of(runs, task, bins))
      entry.update(x=x.tolist(), mean=mean.tolist(), std=std.tolist())
    result[task][method] = entry
  return dict(result)


def plot(runs, bins, last, metric, filename):
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  tasks = sorted({task for task, _ in runs})
  methods = sorted({method for _, method in runs})
  colors = dict(zip(methods, plt.rcParams['axes.prop_cycle'].by_key()['color'] * 4))
  columns = min(4, len(tasks))
  rows = -(-len(tasks) // columns)
  fig, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.5 * rows), squeeze=False)
  for ax, task in zip(axes.flat, tasks):
    keys = [(t, m) for t, m in sorted(runs) if t == task]
    edges = edges_of(runs, task, bins)
    for key in keys:
      seeds, method = runs[key], key[1]
      style = dict(color=colors[method], linestyle='--' if 'baseline' in method else '-')
      if constant(seeds):
        mean, std, count = final(seeds, 1)
        ax.axhline(mean, label=f'{method} (n={count})', **style)
        ax.axhspan(mean - std, mean + std, color=colors[method], alpha=0.15)
        continue
      x, mean, std = curve(seeds, edges)
      ax.plot(x, mean, label=f'{method} (n={len(seeds)})', **style)
      ax.fill_between(x, mean - std, mean + std, color=colors[method], alpha=0.2)
      # The table's final return, so the figure shows what the check compares.
      mean, std, _ = final(seeds, last)
      step = max(s.max() for s, _ in seeds.values())
      ax.errorbar(step, mean, std, color=colors[method], marker='o', capsize=3)
    ax.set_title(task)
    ax.set_xlabel('environment steps')
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  for ax in axes.flat[len(tasks):]:
    ax.axis('off')
  fig.tight_layout()
  fig.savefig(filename, dpi=100)
  plt.close(fig)


def check(runs, above, sigmas, last):
  """Lines of a verdict, and whether every method is above the `above` method."""
  lines, passed = [], True
  for task in sorted({task for task, _ in runs}):
    if (task, above) not in runs:
      lines.append(f'FAIL {task}: no runs of {above}')
      passed = False
      continue
    mean, std, count = final(runs[task, above], last)
    threshold = mean + sigmas * std
    for (other, method), seeds in sorted(runs.items()):
      if other != task or method == above:
        continue
      value = final(seeds, last)[0]
      ok = value > threshold
      passed &= ok
      lines.append(
          f'{"PASS" if ok else "FAIL"} {task} {method}: {value:.1f} '
          f'{">" if ok else "<="} {above} {mean:.1f} + {sigmas:g} x {std:.1f} = {threshold:.1f}')
  return lines, passed


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('root', type=pathlib.Path)
  parser.add_argument('--output', type=pathlib.Path, required=True, help='path without suffix')
  parser.add_argument('--metric', default='test/return')
  parser.add_argument('--bins', type=int, default=20)
  parser.add_argument('--last', type=int, default=3, help='final values averaged per seed')
  parser.add_argument('--baseline', type=pathlib.Path, help="upstream's scores format")
  parser.add_argument('--above', help='method every other method must beat')
  parser.add_argument('--sigmas', type=float, default=3.0)
  args = parser.parse_args(argv)
  runs = load_runs(args.root, args.metric)
  if not runs:
    sys.exit(f'plot.py: error: no metrics.jsonl with {args.metric} under {args.root}')
  if args.baseline:
    tasks = {task for task, _ in runs}
    runs.update({k: v for k, v in load_baseline(args.baseline).items() if k[0] in tasks})
  args.output.parent.mkdir(parents=True, exist_ok=True)
  plot(runs, args.bins, args.last, args.metric, args.output.with_suffix('.png'))
  text = table(runs, args.last)
  if args.above:
    lines, passed = check(runs, args.above, args.sigmas, args.last)
    text += '\n' + '\n'.join(f'- {line}' for line in lines) + '\n'
  args.output.with_suffix('.md').write_text(text)
  args.output.with_suffix('.json').write_text(
      json.dumps(numbers(runs, args.bins, args.last), indent=1) + '\n')
  print(text, end='')
  print(f'Wrote {args.output}.png, .md and .json')
  if args.above and not passed:
    sys.exit(1)


if __name__ == '__main__':
  main()
