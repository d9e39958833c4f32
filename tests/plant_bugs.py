"""Plants in a copy of the checkout the bug a test's name claims to catch,
one at a time, and runs that test: it must fail. Shows that a test that was
made faster still tests what it says.

  python tests/plant_bugs.py            # every planted bug
  python tests/plant_bugs.py prefetch   # those whose name contains it

Prints one line per bug (caught, or NOT CAUGHT) and exits 1 if one was not.
"""

import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent

# name: (file, text, planted text, test that must fail).
BUGS = {
    'bird_expected_score_reads_the_sample': (
        'bird.py', "if score == 'expected':", "if score == 'never':",
        'tests/test_bird.py::test_redrawn_sample_moves_only_the_per_sample_'
        'weights'),
    'bird_default_is_the_per_sample_score': (
        'bird.py', "config.confidence = 'expected'",
        "config.confidence = 'sample'",
        'tests/test_bird.py::test_confidence_flag_takes_its_two_scores'),
    'bird_standardize_without_guard': (
        'bird.py', 'floor = resolution * tools.batch_mean(tf.abs(x)) + 1e-9',
        'floor = 1e-9',
        'tests/test_bird.py::test_equal_confidences_get_weight_one'),
    'idm_bound_not_applied': (
        'idm.py', 'logit = tf.clip_by_value(logit, *training_range(real, '
        'model))', 'logit = logit',
        'tests/test_idm.py::test_logit_bound_keeps_imagined_logits_in_the_'
        'training_range'),
    'idm_constraint_trains_the_posterior_std': (
        'idm.py', "mean, std = tf.stop_gradient(post['mean']), "
        "tf.stop_gradient(post['std'])", "mean, std = post['mean'], "
        "post['std']",
        'tests/test_idm.py::test_the_constraint_trains_decoder_and_'
        'deterministic_path_only'),
    'idm_outside_counts_one_side': (
        'idm.py', '(imagined < low) | (imagined > high)', '(imagined < low)',
        'tests/test_idm.py::test_logit_diagnostics_match_numpy'),
    'prefetch_draws_beyond_its_count': (
        'tools.py', '    for _ in range(self._count):\n      if self._stop',
        '    while True:\n      if self._stop',
        'tests/test_tools.py::test_prefetch_draws_the_batches_sample_draws'),
    'lambda_return_without_lambda': (
        'tools.py', 'lambda agg, cur: cur[0] + cur[1] * lambda_ * agg',
        'lambda agg, cur: cur[0] + cur[1] * agg',
        'tests/test_tools.py::test_lambda_return_matches_numpy'),
    'rssm_min_std_changed': (  # The prior's, in img_step.
        'models.py', 'std = tf.nn.softplus(std) + 0.1\n'
        '    stoch = self._sample(mean, std)\n',
        'std = tf.nn.softplus(std) + 0.11\n'
        '    stoch = self._sample(mean, std)\n',
        'tests/test_golden.py::test_first_train_steps_match_the_recording'
        '[dreamer]'),
    'help_key_without_description': (
        'dreamer.py', '  # One noise vector for every state',
        '  config.undescribed = 1\n  # One noise vector for every state',
        'tests/test_cli.py::test_every_key_explains_itself_in_help'),
    'one_hot_sample_without_straight_through': (
        'tools.py', 'sample += probs - tf.stop_gradient(probs)',
        'sample += 0 * probs',
        'tests/test_atari.py::test_one_hot_dist_passes_straight_through_'
        'gradients'),
    'atari_pools_one_frame': (
        'wrappers.py', 'np.maximum(self._buffers[0], self._buffers[1], '
        'out=self._buffers[0])', 'self._buffers[0][:] = self._buffers[1]',
        'tests/test_atari.py::test_frames_are_skipped_and_the_last_two_max_'
        'pooled'),
    'epsilon_greedy_one_draw_for_the_batch': (
        'dreamer.py', 'explore[:, None] < amount', 'explore[:1, None] < amount',
        'tests/test_atari.py::test_epsilon_greedy_decays_and_replaces_that_'
        'share_of_actions'),
}


def tracked_files():
  output = subprocess.run(
      ['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True,
      check=True).stdout
  return [ROOT / line for line in output.splitlines()]


def plant(name, directory):
  filename, text, planted, test = BUGS[name]
  path = directory / filename
  source = path.read_text()
  if source.count(text) != 1:
    sys.exit(f'plant_bugs.py: {name}: {filename} holds {text!r} '
             f'{source.count(text)} times, not once; update the bug')
  path.write_text(source.replace(text, planted))
  start = time.time()
  process = subprocess.run(
      [sys.executable, '-m', 'pytest', '-q', '-x', '-p', 'no:cacheprovider',
       test], cwd=directory, capture_output=True, text=True)
  path.write_text(source)
  return process.returncode, time.time() - start, test


def main(argv):
  names = [n for n in BUGS if not argv or any(a in n for a in argv)]
  missed = []
  with tempfile.TemporaryDirectory() as directory:
    directory = pathlib.Path(directory)
    for path in tracked_files():
      if path.is_file():
        target = directory / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    for name in names:
      code, seconds, test = plant(name, directory)
      # pytest exits 1 when a test failed; 0 passed, others are errors.
      verdict = 'caught' if code == 1 else f'NOT CAUGHT (exit {code})'
      print(f'{name}: {verdict} by {test} in {seconds:.1f} s', flush=True)
      if code != 1:
        missed.append(name)
  sys.exit(1 if missed else 0)


if __name__ == '__main__':
  main(sys.argv[1:])
