"""Learning curves and final returns of every run under the roots.

  python runs/plot.py runs/logdir/bird_figure2 \
      --output runs/results/bird_figure2
  python runs/plot.py runs/logdir/cpu_ranking \
      runs/results/upstream_comparison --methods dreamer bird idm \
      --versus dreamer --output runs/results/cpu_ranking/figure

Reads every `<task>/<method>/<seed>/` run below the roots (`--methods`: only
those; a run found below two roots is an error): the training curve from its
metrics.jsonl (`--metric` by env step; several give one row of panels each,
e.g. model_error or evaluator_accuracy), and its final evaluation from
final.jsonl (runs/evaluate.py; the random baseline's episodes too). Curves
are binned by env step, and drawn as the mean over seeds with a band of one
standard deviation, one panel per task; a method's final evaluation is drawn
beside its curve, at the last step, as a diamond with the standard deviation
over its runs; a method with a final evaluation but no curve (the random
baseline) as a horizontal band over its episodes. Every standard deviation
is the sample one (ddof=1).

Writes `<output>.png`; `<output>.md`, a table with per method the end of the
training curve (per seed the mean of its last `--last` values) and the final
evaluation, each as mean ± standard deviation over seeds and as the
interquartile mean (IQM) over seeds with its 95% bootstrap interval; and
`<output>.json` with the numbers drawn.

Below the table, aggregate statistics (runs/stats.py; Agarwal et al.,
NeurIPS 2021) of one score per run, the final evaluation where every
trained run has one, else the curve's end: for figures of several Control
Suite tasks the IQM and mean over runs x tasks of returns / 1000 with their
intervals, and a last panel of performance profiles; the probability of
improvement P(X > Y) of each pair of methods; with `--versus METHOD`, every
other method's difference of mean score from METHOD's, per task, with
Welch's t interval, Welch's p-value and the smallest difference these seeds
could detect, on the curve's end and, where every run has one, on the final
evaluation.

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

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import stats  # noqa: E402


class Method:
  """The runs of one method on one task: curves by seed, final episodes."""

  def __init__(self):
    self.curves = {}  # seed: (steps, values)
    self.finals = {}  # seed: (step, returns)

  def scores(self, kind, last):
    """{seed: score}: the mean of the curve's `last` values ('end') or of
    the final evaluation's episodes ('final')."""
    if kind == 'final':
      return {
          seed: float(returns.mean())
          for seed, (_, returns) in self.finals.items()}
    return {
        seed: float(v[np.argsort(s, kind='stable')][-last:].mean())
        for seed, (s, v) in self.curves.items()}

  def end(self, last):
    """Per seed the mean of its last values: mean, std, seeds."""
    return spread(self.scores('end', last))

  def final(self):
    """Per seed the mean over its final episodes: mean, std, seeds."""
    return spread(self.scores('final', None))

  def episodes(self):
    """Every final episode's return, pooled over seeds."""
    return np.concatenate([returns for _, returns in self.finals.values()])

  def last_step(self):
    steps = [s.max() for s, _ in self.curves.values()]
    steps += [step for step, _ in self.finals.values()]
    return int(max(steps))


def spread(scores):
  """Mean, sample standard deviation (ddof=1; None for one value) and
  number of the scores."""
  if not scores:
    return None
  values = list(scores.values())
  return float(np.mean(values)), sample_std(values), len(values)


def sample_std(values):
  return float(np.std(values, ddof=1)) if len(values) > 1 else None


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


def load_roots(roots, metric, methods=None):
  """{(task, method): Method} from the runs below every root, e.g. new runs
  and the committed records of earlier ones; only `methods` if given. A
  run found below two roots is an error: one of them would be dropped."""
  runs = {}
  for root in roots:
    for key, method in load_runs(root, metric).items():
      if methods and key[1] not in methods:
        continue
      merged = runs.setdefault(key, Method())
      for kind in ('curves', 'finals'):
        ours, theirs = getattr(merged, kind), getattr(method, kind)
        twice = set(ours) & set(theirs)
        if twice:
          sys.exit(f'plot.py: error: {key[0]}/{key[1]}/{min(twice)} is under '
                   f'more than one of {", ".join(map(str, roots))}')
        ours.update(theirs)
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
    counts = np.isfinite(table).sum(0)
    std = np.nanstd(table, 0, ddof=1) if len(table) > 1 else table[0] * 0
    return np.nanmean(table, 0), np.where(counts > 1, std, 0.0)


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


def numbers(runs, baselines, bins, last, reps):
  """What the figure and the table show, as plain numbers."""
  ends = task_ends(runs)
  result = collections.defaultdict(dict)
  for (task, name), method in sorted(runs.items()):
    entry = dict(end=method.end(last), final=method.final())
    for kind in ('end', 'final'):
      scores = list(method.scores(kind, last).values())
      if scores:  # The IQM over seeds, with its interval.
        column = np.array(scores)[:, None]
        entry[f'{kind}_iqm'] = stats.intervals(
            {name: column}, 'iqm', reps)[name]
    if method.curves:
      edges = np.linspace(0, ends[task], bins + 1)
      x, mean, std = curve(method.curves, edges)
      entry.update(x=x.tolist(), mean=mean.tolist(), std=std.tolist())
    if method.finals:
      episodes = method.episodes()
      entry['episodes'] = dict(
          mean=float(episodes.mean()), std=sample_std(episodes),
          n=len(episodes))
    entry['last_step'] = method.last_step()
    result[task][name] = entry
  for (task, name), value in sorted(baselines.items()):
    result[task][name] = dict(score=value)
  return dict(result)


def table(result):
  cell = lambda x: (
      '' if not x else f'{x[0]:.1f} ({x[2]})' if x[1] is None else
      f'{x[0]:.1f} ± {x[1]:.1f} ({x[2]})')
  lines = [
      f'| task | method | {COLUMNS["end"]} | IQM [95% CI] | '
      f'{COLUMNS["final"]} | IQM [95% CI] | episodes | last step |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |']
  for task, methods in sorted(result.items()):
    for name, entry in sorted(methods.items()):
      if 'score' in entry:
        lines.append(f'| {task} | {name} | {entry["score"]:.1f} | | | | | |')
        continue
      episodes = entry.get('episodes')
      episodes = cell(episodes and (
          episodes['mean'], episodes['std'], episodes['n']))
      lines.append(
          f'| {task} | {name} | {cell(entry["end"])} | '
          f'{interval(entry.get("end_iqm"))} | {cell(entry["final"])} | '
          f'{interval(entry.get("final_iqm"))} | {episodes} | '
          f'{entry["last_step"]} |')
  lines.append('')
  lines.append(
      'Cells: mean ± sample standard deviation (ddof=1) over seeds (number '
      'of seeds); IQM: the interquartile mean over seeds with its 95% '
      'stratified bootstrap interval (with few seeds it spans at most their '
      'range: too narrow); episodes: over every final episode.')
  return '\n'.join(lines) + '\n'


def interval(value, digits=1):
  if not value:
    return ''
  estimate, low, high = value
  if low is None:
    return f'{estimate:.{digits}f}'
  return f'{estimate:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]'


# Aggregate statistics (runs/stats.py): one score per run, all methods alike.

SCORES = dict(
    end="the end of each run's training curve",
    final="each run's final evaluation")
COLUMNS = dict(end='end of training curve', final='final evaluation')


def score_kind(runs):
  """'final' when every trained run has a final evaluation, else 'end'."""
  trained = [method for method in runs.values() if method.curves]
  if trained and all(set(m.finals) >= set(m.curves) for m in trained):
    return 'final'
  return 'end'


def matrix(runs, name, tasks, kind, last, divisors=None):
  """Runs x tasks scores of a method, of its seeds present in every task;
  None if it has none. Columns are divided by `divisors`, if given."""
  per_task = [
      runs[task, name].scores(kind, last) if (task, name) in runs else {}
      for task in tasks]
  seeds = sorted(set.intersection(*[set(s) for s in per_task]))
  if not seeds:
    return None
  scores = np.array([[s[seed] for s in per_task] for seed in seeds])
  return scores / np.array(divisors) if divisors else scores


def statistics(runs, last, versus, reps):
  """The score, and over runs: the normalized IQM and mean over tasks,
  performance profiles, each pair's probability of improvement, and each
  method's difference from `versus`."""
  kind = score_kind(runs)
  tasks = sorted({task for task, _ in runs})
  names = sorted({name for _, name in runs})
  result = dict(score=kind, tasks=tasks)
  normal = [task for task in tasks if stats.normalizer(task)]
  if len(normal) > 1:
    divisors = [stats.normalizer(task) for task in normal]
    scores = {
        name: matrix(runs, name, normal, kind, last, divisors)
        for name in names}
    scores = {k: v for k, v in scores.items() if v is not None}
    thresholds = np.linspace(0, 1, 51)
    result['normalized'] = dict(
        tasks=normal, divisors=divisors,
        runs={k: list(v.shape) for k, v in scores.items()},
        iqm=stats.intervals(scores, 'iqm', reps),
        mean=stats.intervals(scores, 'mean', reps),
        profiles=dict(thresholds=thresholds.tolist(), **{
            k: [v.tolist() for v in value] for k, value in
            stats.profiles(scores, thresholds, reps).items()}))
  result['improvement'] = improvements(runs, names, tasks, kind, last, reps)
  if versus:  # On both scores: the curve's end and the final evaluation.
    kinds = ('end', 'final') if kind == 'final' else ('end',)
    result['versus'] = {
        k: differences(runs, versus, k, last, reps) for k in kinds}
  return result


def improvements(runs, names, tasks, kind, last, reps):
  """{'x > y': (P, low, high)} for each pair, over the tasks both ran."""
  result = {}
  for i, x in enumerate(names):
    for y in names[i + 1:]:
      common = [t for t in tasks if (t, x) in runs and (t, y) in runs]
      scores = [matrix(runs, n, common, kind, last) for n in (x, y)]
      if not common or any(s is None for s in scores):
        continue
      p, low, high = stats.improvement(*scores, reps)
      result[f'{x} > {y}'] = (p, low, high)
      result[f'{y} > {x}'] = (1 - p, 1 - high, 1 - low)
  return result


def differences(runs, versus, kind, last, reps):
  """Per task and method: its mean score minus `versus`'s, with its
  interval, Welch's p-value and the smallest difference these seeds could
  detect."""
  result = collections.defaultdict(dict)
  for (task, name), method in sorted(runs.items()):
    if name == versus or (task, versus) not in runs:
      continue
    x = list(method.scores(kind, last).values())
    y = list(runs[task, versus].scores(kind, last).values())
    if x and y:
      result[task][name] = dict(
          difference=stats.difference(x, y), p=stats.welch(x, y),
          detectable=stats.detectable(x, y), seeds=[len(x), len(y)])
  return dict(result)


def statistics_table(result, versus):
  lines = [f'Aggregate statistics of {SCORES[result["score"]]}, one score '
           'per run.', '']
  normalized = result.get('normalized')
  if normalized:
    lines += [
        f'Over {len(normalized["tasks"])} tasks, normalized (return / '
        f'{normalized["divisors"][0]:g}), with 95% intervals from the '
        'stratified bootstrap:', '',
        '| method | runs x tasks | IQM [95% CI] | mean [95% CI] |',
        '| --- | --- | --- | --- |']
    for name, (runs, tasks) in sorted(normalized['runs'].items()):
      lines.append(
          f'| {name} | {runs} x {tasks} | '
          f'{interval(normalized["iqm"][name], 3)} | '
          f'{interval(normalized["mean"][name], 3)} |')
    lines.append('')
  if result['improvement']:
    lines += [
        'Probability of improvement P(X > Y) over the tasks both ran, with '
        'its 95% interval from the stratified bootstrap:', '',
        '| X | Y | P(X > Y) [95% CI] |', '| --- | --- | --- |']
    for pair, value in sorted(result['improvement'].items()):
      x, y = pair.split(' > ')
      # Each pair once: against --versus as Y, else in name order.
      if y == versus or (x != versus and x < y):
        lines.append(f'| {x} | {y} | {interval(value, 2)} |')
    lines.append('')
  if result.get('versus'):
    lines += [
        f'Difference from {versus} (mean of the method minus mean of '
        f'{versus}) with Welch\'s 95% t interval, the p-value of Welch\'s '
        'two-sided t-test, and the smallest difference these seeds could '
        'detect (Welch\'s t-test, two-sided 5%, power 80%, simulated for '
        'normal scores with these seeds\' sample standard deviations):', '',
        '| task | method | score | difference [95% CI] | p | detectable | '
        'seeds |', '| --- | --- | --- | --- | --- | --- | --- |']
    for kind, tasks in result['versus'].items():
      for task, methods in sorted(tasks.items()):
        for name, entry in sorted(methods.items()):
          p, detectable = entry['p'], entry['detectable']
          p = '' if p is None else f'{p:.2f}'
          detectable = '' if detectable is None else f'{detectable:.1f}'
          lines.append(
              f'| {task} | {name} | {COLUMNS[kind]} | '
              f'{interval(entry["difference"])} | {p} | {detectable} | '
              f'{entry["seeds"][0]} vs {entry["seeds"][1]} |')
    lines.append('')
  return '\n'.join(lines)


def plot(panels, bins, filename, normalized=None):
  """One row of panels per metric, one panel per task; `panels` is a list of
  (metric, runs, baselines). With `normalized` statistics, a last panel of
  the first row holds the performance profiles."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  tasks = sorted({task for _, runs, _ in panels for task, _ in runs})
  names = sorted(
      {name for _, runs, _ in panels for _, name in runs} |
      {name for _, _, baselines in panels for _, name in baselines})
  cycle = plt.rcParams['axes.prop_cycle'].by_key()['color']
  colors = dict(zip(names, cycle * (len(names) // len(cycle) + 1)))
  slots = len(tasks) + bool(normalized)
  columns = min(4, slots) if len(panels) == 1 else slots
  rows = -(-slots // columns) * len(panels)
  fig, axes = plt.subplots(
      rows, columns, figsize=(4.5 * columns, 3.5 * rows), squeeze=False)
  axes = list(axes.flatten())
  per_metric = len(axes) // len(panels)
  for row, (metric, runs, baselines) in enumerate(panels):
    for index, task in enumerate(tasks):
      ax = axes[row * per_metric + index]
      draw(ax, task, runs, baselines, colors, bins)
      ax.set_ylabel(metric)
    used = len(tasks)
    if normalized and row == 0:
      draw_profiles(axes[len(tasks)], normalized, colors)
      used += 1
    for ax in axes[row * per_metric + used:(row + 1) * per_metric]:
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
          method.last_step(), mean, std or 0.0, color=color, marker='D',
          capsize=3)
    elif method.finals:
      episodes = method.episodes()
      mean, std = episodes.mean(), sample_std(episodes) or 0.0
      ax.axhline(mean, color=color, label=f'{name} ({len(episodes)} ep.)')
      ax.axhspan(mean - std, mean + std, color=color, alpha=0.15)
  for (other, name), value in sorted(baselines.items()):
    if other == task:
      ax.axhline(value, color=colors[name], linestyle=':', label=name)
  ax.set_title(task)
  ax.set_xlabel('environment steps')
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)


def draw_profiles(ax, normalized, colors):
  """The share of runs x tasks above each normalized score, with bands."""
  profiles = dict(normalized['profiles'])
  thresholds = profiles.pop('thresholds')
  for name, (shares, lows, highs) in sorted(profiles.items()):
    runs, tasks = normalized['runs'][name]
    ax.plot(
        thresholds, shares, color=colors[name],
        label=f'{name} ({runs} x {tasks})')
    ax.fill_between(thresholds, lows, highs, color=colors[name], alpha=0.2)
  ax.set_title(f'performance profile, {len(normalized["tasks"])} tasks')
  ax.set_xlabel('normalized score τ')
  ax.set_ylabel('fraction of runs with score > τ')
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
    mean, std = episodes.mean(), sample_std(episodes) or 0.0
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
  parser.add_argument(
      'root', type=pathlib.Path, nargs='+',
      help='directories of <task>/<method>/<seed> runs, e.g. new runs and '
      'the committed records of earlier ones')
  parser.add_argument(
      '--methods', nargs='+', help='only these methods (default: all)')
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
  parser.add_argument(
      '--versus', metavar='METHOD',
      help="report every other method's difference from METHOD")
  parser.add_argument(
      '--reps', type=int, default=stats.REPS,
      help='bootstrap resamples of each interval')
  args = parser.parse_args(argv)
  if args.reps < 1:
    parser.error(f'--reps must be positive, got {args.reps}')
  metrics = args.metric or ['test/return']
  panels, results, text, passed = [], {}, '', True
  statistics_result = None
  for metric in metrics:
    runs = load_roots(args.root, metric, args.methods)
    if metric != 'test/return':  # Final evaluations are returns.
      runs = {k: v for k, v in runs.items() if v.curves}
      for method in runs.values():
        method.finals = {}
    if not runs:
      sys.exit(f'plot.py: error: no runs with {metric} under '
               f'{", ".join(map(str, args.root))}')
    curves, scores = {}, {}
    if metric == 'test/return':
      tasks = {task for task, _ in runs}
      curves, scores = load_baselines(args.baseline, tasks, task_ends(runs))
    runs.update(curves)
    panels.append((metric, runs, scores))
    results[metric] = numbers(runs, scores, args.bins, args.last, args.reps)
    if len(metrics) > 1:
      text += f'### {metric}\n\n'
    text += table(results[metric])
    if metric == 'test/return':
      if args.versus and not any(n == args.versus for _, n in runs):
        sys.exit(f"plot.py: error: no runs of --versus '{args.versus}' "
                 f'under {", ".join(map(str, args.root))}')
      statistics_result = statistics(runs, args.last, args.versus, args.reps)
      results[metric]['statistics'] = statistics_result
      text += '\n' + statistics_table(statistics_result, args.versus)
    if args.above and metric == 'test/return':
      lines, passed = check(runs, args.above, args.sigmas, args.last)
      text += '\n' + '\n'.join(f'- {line}' for line in lines) + '\n'
    if len(metrics) > 1:
      text += '\n'
  args.output.parent.mkdir(parents=True, exist_ok=True)
  normalized = (statistics_result or {}).get('normalized')
  plot(panels, args.bins, args.output.with_suffix('.png'), normalized)
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
