"""Learning curves and final returns of every run under a root.

  python runs/plot.py runs/logdir/bird_figure2 \
      --output runs/results/bird_figure2

Reads every `<task>/<method>/<seed>/` run below the root: the training curve
from its metrics.jsonl (`--metric` by env step; several give one row of
panels each, e.g. model_error or evaluator_accuracy), and its final evaluation
from final.jsonl (runs/evaluate.py; the random baseline's episodes too).
Curves are binned by env step, and drawn as the mean over seeds with a band
of one standard deviation, one panel per task; a method's final evaluation
is drawn beside its curve, at the last step, as a diamond with the standard
deviation over its runs; a method with a final evaluation but no curve (the
random baseline) as a horizontal band over its episodes.

Writes `<output>.png`; `<output>.md`, a table with per method the end of the
training curve (per seed the mean of its last `--last` values) and the final
evaluation, each as mean ± standard deviation over seeds; and `<output>.json`
with the numbers drawn.

`--baseline FILE` (repeatable) adds upstream's published results: a list of
{task, method, seed, xs, ys} (scores/dreamer.json) as dashed curves cut to
the runs' steps, or a dict of final scores per task and method
(scores/baselines.json) as dotted lines. With `--above METHOD`, the script
exits 1 unless every other method's final return (its final evaluation,
else the end of its curve) exceeds METHOD's mean + `--sigmas` standard
deviations over METHOD's final episodes.
"""

import argparse
import collections
import json
import pathlib
import sys
import warnings

import numpy as np


class Method:
  """The runs of one method on one task: curves by seed, final episodes."""

  def __init__(self):
    self.curves = {}  # seed: (steps, values)
    self.finals = {}  # seed: (step, returns)

  def end(self, last):
    """Per seed the mean of its last values: mean, std, seeds."""
    if not self.curves:
      return None
    values = [
        v[np.argsort(s, kind='stable')][-last:].mean()
        for s, v in self.curves.values()]
    return float(np.mean(values)), float(np.std(values)), len(values)

  def final(self):
    """Per seed the mean over its final episodes: mean, std, seeds."""
    if not self.finals:
      return None
    values = [returns.mean() for _, returns in self.finals.values()]
    return float(np.mean(values)), float(np.std(values)), len(values)

  def episodes(self):
    """Every final episode's return, pooled over seeds."""
    return np.concatenate([returns for _, returns in self.finals.values()])

  def last_step(self):
    steps = [s.max() for s, _ in self.curves.values()]
    steps += [step for step, _ in self.finals.values()]
    return int(max(steps))


def read_lines(path):
  for number, line in enumerate(path.read_text().splitlines(), 1):
    try:
      yield json.loads(line)
    except json.JSONDecodeError:
      print(f'Warning: {path}:{number}: not JSON; skipped', file=sys.stderr)


def load_runs(root, metric):
  """{(task, method): Method} from the runs below root."""
  runs = collections.defaultdict(Method)
  root = pathlib.Path(root)
  paths = sorted(set(
      p.parent for name in ('metrics.jsonl', 'final.jsonl')
      for p in root.rglob(name)))
  for path in paths:
    parts = path.relative_to(root).parts
    if len(parts) < 3:
      print(f'Warning: {path}: not <task>/<method>/<seed>; skipped',
            file=sys.stderr)
      continue
    task, method, seed = parts[-3:]
    entries = []
    if (path / 'metrics.jsonl').exists():
      entries = [
          e for e in read_lines(path / 'metrics.jsonl')
          if metric in e and not e.get('final')]
    if entries:
      steps = np.array([e['step'] for e in entries])
      values = np.array([e[metric] for e in entries], float)
      runs[normalize(task), method].curves[seed] = steps, values
    if (path / 'final.jsonl').exists():
      finals = list(read_lines(path / 'final.jsonl'))
      step = max(e['step'] for e in finals)
      returns = np.array([e['return'] for e in finals if e['step'] == step])
      runs[normalize(task), method].finals[seed] = step, returns
  return runs


def load_baselines(filenames, tasks, end):
  """Upstream's curves cut to `end` steps, and its final scores."""
  curves, scores = collections.defaultdict(Method), {}
  for filename in filenames:
    content = json.loads(pathlib.Path(filename).read_text())
    if isinstance(content, dict):  # scores/baselines.json
      for task, methods in content.items():
        if normalize(task) in tasks:
          for method, value in methods.items():
            scores[normalize(task), method] = float(value)
      continue
    for entry in content:  # scores/<method>.json
      task = normalize(entry['task'])
      if task not in tasks:
        continue
      xs, ys = np.array(entry['xs']), np.array(entry['ys'], float)
      keep = xs <= end[task]
      if keep.any():
        key = task, f"{entry['method']} (upstream)"
        curves[key].curves[str(entry['seed'])] = xs[keep], ys[keep]
  return curves, scores


def normalize(task):
  return task[len('dmc_'):] if task.startswith('dmc_') else task


def binned(seeds, edges):
  """Mean over seeds (and std) of each seed's mean within each bin."""
  table = np.full((len(seeds), len(edges) - 1), np.nan)
  for row, (steps, values) in enumerate(seeds.values()):
    index = np.clip(np.digitize(steps, edges) - 1, 0, len(edges) - 2)
    for column in np.unique(index):
      table[row, column] = values[index == column].mean()
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', RuntimeWarning)  # Bins no seed reached.
    return np.nanmean(table, 0), np.nanstd(table, 0)


def curve(seeds, edges):
  """Bin centers, mean and std of the bins that hold values: no gaps."""
  mean, std = binned(seeds, edges)
  centers = (edges[:-1] + edges[1:]) / 2
  valid = np.isfinite(mean)
  return centers[valid], mean[valid], std[valid]


def task_ends(runs):
  """The last step of each task's runs."""
  ends = collections.defaultdict(int)
  for (task, _), method in runs.items():
    ends[task] = max(ends[task], method.last_step())
  return ends


def numbers(runs, baselines, bins, last):
  """What the figure and the table show, as plain numbers."""
  ends = task_ends(runs)
  result = collections.defaultdict(dict)
  for (task, name), method in sorted(runs.items()):
    entry = dict(end=method.end(last), final=method.final())
    if method.curves:
      edges = np.linspace(0, ends[task], bins + 1)
      x, mean, std = curve(method.curves, edges)
      entry.update(x=x.tolist(), mean=mean.tolist(), std=std.tolist())
    if method.finals:
      episodes = method.episodes()
      entry['episodes'] = dict(
          mean=float(episodes.mean()), std=float(episodes.std()),
          n=len(episodes))
    entry['last_step'] = method.last_step()
    result[task][name] = entry
  for (task, name), value in sorted(baselines.items()):
    result[task][name] = dict(score=value)
  return dict(result)


def table(result):
  cell = lambda x: f'{x[0]:.1f} ± {x[1]:.1f} ({x[2]})' if x else ''
  lines = [
      '| task | method | end of training curve | final evaluation | '
      'episodes | last step |', '| --- | --- | --- | --- | --- | --- |']
  for task, methods in sorted(result.items()):
    for name, entry in sorted(methods.items()):
      if 'score' in entry:
        lines.append(f'| {task} | {name} | {entry["score"]:.1f} | | | |')
        continue
      episodes = entry.get('episodes')
      episodes = (
          f'{episodes["mean"]:.1f} ± {episodes["std"]:.1f} ({episodes["n"]})'
          if episodes else '')
      lines.append(
          f'| {task} | {name} | {cell(entry["end"])} | '
          f'{cell(entry["final"])} | {episodes} | {entry["last_step"]} |')
  lines.append('')
  lines.append(
      'Cells: mean ± standard deviation over seeds (number of seeds); '
      'episodes: over every final episode.')
  return '\n'.join(lines) + '\n'


def plot(panels, bins, filename):
  """One row of panels per metric, one panel per task; `panels` is a list of
  (metric, runs, baselines)."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  tasks = sorted({task for _, runs, _ in panels for task, _ in runs})
  names = sorted(
      {name for _, runs, _ in panels for _, name in runs} |
      {name for _, _, baselines in panels for _, name in baselines})
  cycle = plt.rcParams['axes.prop_cycle'].by_key()['color']
  colors = dict(zip(names, cycle * (len(names) // len(cycle) + 1)))
  columns = min(4, len(tasks)) if len(panels) == 1 else len(tasks)
  rows = -(-len(tasks) // columns) * len(panels)
  fig, axes = plt.subplots(
      rows, columns, figsize=(4.5 * columns, 3.5 * rows), squeeze=False)
  axes = list(axes.flatten())
  per_metric = len(axes) // len(panels)
  for row, (metric, runs, baselines) in enumerate(panels):
    for index, task in enumerate(tasks):
      ax = axes[row * per_metric + index]
      draw(ax, task, runs, baselines, colors, bins)
      ax.set_ylabel(metric)
    for ax in axes[row * per_metric + len(tasks):(row + 1) * per_metric]:
      ax.axis('off')
  fig.tight_layout()
  fig.savefig(filename, dpi=100)
  plt.close(fig)


def draw(ax, task, runs, baselines, colors, bins):
  ends = task_ends({k: v for k, v in runs.items() if 'upstream' not in k[1]})
  for (other, name), method in sorted(runs.items()):
    if other != task:
      continue
    color = colors[name]
    style = '--' if 'upstream' in name else '-'
    if method.curves:
      edges = np.linspace(0, ends[task], bins + 1)
      x, mean, std = curve(method.curves, edges)
      label = f'{name} (n={len(method.curves)})'
      ax.plot(x, mean, style, color=color, label=label)
      ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2)
    if method.finals and method.curves:
      mean, std, _ = method.final()
      ax.errorbar(
          method.last_step(), mean, std, color=color, marker='D', capsize=3)
    elif method.finals:
      episodes = method.episodes()
      mean, std = episodes.mean(), episodes.std()
      ax.axhline(mean, color=color, label=f'{name} ({len(episodes)} ep.)')
      ax.axhspan(mean - std, mean + std, color=color, alpha=0.15)
  for (other, name), value in sorted(baselines.items()):
    if other == task:
      ax.axhline(value, color=colors[name], linestyle=':', label=name)
  ax.set_title(task)
  ax.set_xlabel('environment steps')
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)


def check(runs, above, sigmas, last):
  """Lines of a verdict, and whether every method is above `above`."""
  lines, passed = [], True
  for task in sorted({task for task, _ in runs}):
    reference = runs.get((task, above))
    if reference is None or not reference.finals:
      lines.append(f'FAIL {task}: no final episodes of {above}')
      passed = False
      continue
    episodes = reference.episodes()
    mean, std = episodes.mean(), episodes.std()
    threshold = mean + sigmas * std
    for (other, name), method in sorted(runs.items()):
      if other != task or name == above:
        continue
      value = (method.final() or method.end(last))[0]
      ok = value > threshold
      passed &= ok
      lines.append(
          f'{"PASS" if ok else "FAIL"} {task} {name}: {value:.1f} '
          f'{">" if ok else "<="} {above} {mean:.1f} + {sigmas:g} x '
          f'{std:.1f} = {threshold:.1f}')
  return lines, passed


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('root', type=pathlib.Path)
  parser.add_argument(
      '--output', type=pathlib.Path, required=True, help='without suffix')
  parser.add_argument(
      '--metric', action='append',
      help='metric of metrics.jsonl to draw, repeatable (test/return)')
  parser.add_argument('--bins', type=int, default=20)
  parser.add_argument(
      '--last', type=int, default=3,
      help="training curve values per seed for the curve's end")
  parser.add_argument(
      '--baseline', type=pathlib.Path, action='append', default=[],
      help="upstream's scores/<method>.json or scores/baselines.json")
  parser.add_argument('--above', help='method every other must beat')
  parser.add_argument('--sigmas', type=float, default=3.0)
  args = parser.parse_args(argv)
  metrics = args.metric or ['test/return']
  panels, results, text, passed = [], {}, '', True
  for metric in metrics:
    runs = load_runs(args.root, metric)
    if metric != 'test/return':  # Final evaluations are returns.
      runs = {k: v for k, v in runs.items() if v.curves}
      for method in runs.values():
        method.finals = {}
    if not runs:
      sys.exit(f'plot.py: error: no runs with {metric} under {args.root}')
    curves, scores = {}, {}
    if metric == 'test/return':
      tasks = {task for task, _ in runs}
      curves, scores = load_baselines(args.baseline, tasks, task_ends(runs))
    runs.update(curves)
    panels.append((metric, runs, scores))
    results[metric] = numbers(runs, scores, args.bins, args.last)
    if len(metrics) > 1:
      text += f'### {metric}\n\n'
    text += table(results[metric])
    if args.above and metric == 'test/return':
      lines, passed = check(runs, args.above, args.sigmas, args.last)
      text += '\n' + '\n'.join(f'- {line}' for line in lines) + '\n'
    if len(metrics) > 1:
      text += '\n'
  args.output.parent.mkdir(parents=True, exist_ok=True)
  plot(panels, args.bins, args.output.with_suffix('.png'))
  result = results[metrics[0]] if len(metrics) == 1 else results
  args.output.with_suffix('.md').write_text(text)
  args.output.with_suffix('.json').write_text(
      json.dumps(result, indent=1) + '\n')
  print(text, end='')
  print(f'Wrote {args.output}.png, .md and .json')
  if not passed:
    sys.exit(1)


if __name__ == '__main__':
  main()
