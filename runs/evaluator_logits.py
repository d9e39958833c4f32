"""IDM's evaluator over training: its logits on the pairs it is trained on
and on the imagined transitions whose weights it gives.

  python runs/evaluator_logits.py runs/logdir/idm_vs_dreamer \
      --output runs/results/idm_evaluator_logits

Reads every `<task>/<method>/<seed>/` run below the root that logged the
evaluator's diagnostics (idm.logit_diagnostics). One column per task; per
method one row: the logits on real transitions (label 1), on the model's
(label 0) and on imagined ones, each as the mean over seeds of a log
interval's mean logit with a band from its 5th to its 95th percentile; a last
row: the share of imagined logits outside the range of the training pairs'
logits. Where the imagined band leaves the training bands, the weights rest
on the evaluator's extrapolation. Writes `<output>.png` and `<output>.md`,
the end of each curve (per seed the mean of its last `--last` values), mean
over seeds.
"""

import argparse
import pathlib
import sys

import numpy as np

import plot

KINDS = dict(real='real', model='model (label 0)', imag='imagined')
OUTSIDE = 'logit_imag_outside'


def load(root):
  """{metric: {(task, method): plot.Method}} of every diagnostic."""
  metrics = [f'logit_{k}_{s}' for k in KINDS for s in ('mean', 'p5', 'p95')]
  runs = {m: plot.load_runs(root, m) for m in metrics + [OUTSIDE]}
  # Dreamer, random and IDM without weights sit beside IDM in a root.
  return {m: {key: method for key, method in found.items() if method.curves}
          for m, found in runs.items()}


def table(runs, last):
  lines = [
      '| task | method | ' + ' | '.join(
          f'{name}: mean [p5, p95]' for name in KINDS.values()) +
      ' | imagined outside the training range |',
      '| --- | --- |' + ' --- |' * (len(KINDS) + 1)]
  for task, method in sorted(runs[OUTSIDE]):
    end = lambda metric: runs[metric][task, method].end(last)[0]
    cells = [
        f'{end(f"logit_{k}_mean"):.2f} [{end(f"logit_{k}_p5"):.2f}, '
        f'{end(f"logit_{k}_p95"):.2f}]' for k in KINDS]
    lines.append(
        f'| {task} | {method} | ' + ' | '.join(cells) +
        f' | {end(OUTSIDE):.3f} |')
  lines.append('')
  lines.append(
      f'Per seed the mean of its last {last} log steps, then the mean over '
      'seeds.')
  return '\n'.join(lines) + '\n'


def draw(runs, bins, filename):
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  keys = sorted(runs[OUTSIDE])
  tasks = sorted({task for task, _ in keys})
  methods = sorted({method for _, method in keys})
  ends = plot.task_ends(runs[OUTSIDE])
  fig, axes = plt.subplots(
      len(methods) + 1, len(tasks), squeeze=False,
      figsize=(4.5 * len(tasks), 3.2 * (len(methods) + 1)))
  for column, task in enumerate(tasks):
    edges = np.linspace(0, ends[task], bins + 1)
    for row, method in enumerate(methods):
      ax = axes[row, column]
      if (task, method) not in runs[OUTSIDE]:
        ax.axis('off')
        continue
      for kind, name in KINDS.items():
        series = lambda stat: plot.curve(
            runs[f'logit_{kind}_{stat}'][task, method].curves, edges)
        (x, mean, _), (_, low, _), (_, high, _) = map(
            series, ('mean', 'p5', 'p95'))
        line, = ax.plot(x, mean, label=name)
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2)
      ax.set_title(f'{task}: {method}')
      ax.set_ylabel('evaluator logit')
      ax.grid(alpha=0.3)
      ax.legend(fontsize=7)
    ax = axes[-1, column]
    for method in methods:
      if (task, method) in runs[OUTSIDE]:
        x, mean, std = plot.curve(runs[OUTSIDE][task, method].curves, edges)
        line, = ax.plot(x, mean, label=method)
        ax.fill_between(
            x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set_title(task)
    ax.set_ylabel('imagined logits outside\nthe training range')
    ax.set_xlabel('environment steps')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(filename, dpi=100)
  plt.close(fig)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('root', type=pathlib.Path)
  parser.add_argument('--output', type=pathlib.Path, required=True)
  parser.add_argument('--bins', type=int, default=30)
  parser.add_argument('--last', type=int, default=3)
  args = parser.parse_args(argv)
  runs = load(args.root)
  if not runs[OUTSIDE]:
    sys.exit(f'evaluator_logits.py: error: no run below {args.root} logged '
             f'{OUTSIDE} (an IDM run with reliability weights)')
  args.output.parent.mkdir(parents=True, exist_ok=True)
  text = table(runs, args.last)
  args.output.with_suffix('.md').write_text(text)
  draw(runs, args.bins, args.output.with_suffix('.png'))
  print(text, end='')


if __name__ == '__main__':
  main()
