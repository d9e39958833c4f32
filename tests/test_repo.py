"""The repository's own promises: CI runs the README's test command; its
examples parse."""

import shlex

from helpers import ROOT, run_script


def readme_commands():
  lines = (ROOT / 'README.md').read_text().splitlines()
  prefix = 'python3 -m venv .venv && '
  return [line for line in lines if line.startswith(prefix)]


def test_ci_runs_the_readme_test_command():
  commands = [c for c in readme_commands() if 'pytest' in c]
  assert len(commands) == 1
  ci = (ROOT / '.ci' / 'run').read_text().splitlines()
  assert commands[0] in ci


def test_readme_training_command_uses_valid_flags():
  import dreamer
  commands = [c for c in readme_commands() if 'pytest' not in c]
  assert len(commands) == 1
  argv = shlex.split(commands[0].split('dreamer.py', 1)[1])
  config = dreamer.parse_flags(dreamer.define_config(), argv)
  assert config.task == 'dmc_walker_walk'


def test_every_file_the_readmes_name_exists():
  """A path in backquotes in README.md (from the root) or runs/README.md
  (from runs/, or the root) that names a file of the project exists."""
  import re
  pattern = re.compile(r'`([\w./-]+\.(?:md|py|sh|png|json|txt))`')
  missing = []
  readmes = (('README.md', ('',)), ('runs/README.md', ('runs/', '')))
  for readme, bases in readmes:
    for name in pattern.findall((ROOT / readme).read_text()):
      # A bare name, or one outside the project: the user's own module in an
      # example, upstream's checkout.
      if '/' not in name or name.startswith(('../', '/', 'mylab/', 'scores/')):
        continue
      if not any((ROOT / base / name).exists() for base in bases):
        missing.append(f'{readme}: {name}')
  assert not missing


# Upstream's config keys and defaults (danijar/dreamer); precision follows
# the hardware here.
UPSTREAM = dict(
    seed=0, steps=5e6, eval_every=1e4, log_every=1e3, log_scalars=True,
    log_images=True, gpu_growth=True, task='dmc_walker_walk', envs=1,
    parallel='none', action_repeat=2, time_limit=1000, prefill=5000,
    eval_noise=0.0, clip_rewards='none', deter_size=200, stoch_size=30,
    num_units=400, dense_act='elu', cnn_act='relu', cnn_depth=32, pcont=False,
    free_nats=3.0, kl_scale=1.0, pcont_scale=10.0, weight_decay=0.0,
    weight_decay_pattern=r'.*', batch_size=50, batch_length=50,
    train_every=1000, train_steps=100, pretrain=100, model_lr=6e-4,
    value_lr=8e-5, actor_lr=8e-5, grad_clip=100.0, dataset_balance=False,
    discount=0.99, disclam=0.95, horizon=15, action_dist='tanh_normal',
    action_init_std=5.0, expl='additive_gaussian', expl_amount=0.3,
    expl_decay=0.0, expl_min=0.0)


def test_config_has_upstreams_keys_and_defaults():
  import pathlib
  import dreamer
  import tools
  config = dreamer.define_config()
  assert config.logdir == pathlib.Path('.')
  for key, value in UPSTREAM.items():
    assert config[key] == value, key
  # No GPU here; bfloat16 where the CPU computes it natively.
  native = tools.cpu_bfloat16()
  assert config.precision == ('bf16' if native else 32)
  assert config.jit is False
  new = set(config) - set(UPSTREAM) - {'logdir', 'precision'}
  assert new == {
      'jit', 'deterministic', 'nonfinite_limit', 'dataset_size',
      'shared_noise', 'grayscale', 'eval_episodes', 'adam_eps',
      'free_nats_per_step'}


def test_extensions_change_only_their_keys():
  import bird
  import dreamer
  import idm
  base = dreamer.define_config()
  changed = lambda config: {
      k for k in config if k not in base or config[k] != base[k]}
  # BIRD keeps Dreamer's model sizes (issue 11; its §7 sizes are flags).
  assert changed(bird.define_config()) == {
      'dataset_size', 'ent_alpha', 'reweight_clip', 'confidence', 'soft'}
  assert changed(idm.define_config()) == {
      'derive_std_deter', 'derive_std_stoch', 'constraint_scale',
      'evaluator_layers', 'evaluator_units', 'evaluator_lr',
      'evaluator_negatives', 'weight_clip', 'logit_bound', 'derived_starts',
      'reliability_weights'}


def test_planted_bugs_still_fit_the_code_and_name_real_tests():
  # tests/plant_bugs.py checks that tests fail on the bug their name claims;
  # a refactor that moves a planted text or renames a test must update it.
  import importlib.util
  spec = importlib.util.spec_from_file_location(
      'plant_bugs', ROOT / 'tests' / 'plant_bugs.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  for name, (filename, text, planted, test) in module.BUGS.items():
    assert (ROOT / filename).read_text().count(text) == 1, name
    assert text != planted, name
    path, function = test.split('::')
    function = function.split('[')[0]
    assert f'def {function}(' in (ROOT / path).read_text(), name


def test_the_lock_pins_what_setup_py_asks_for():
  import importlib.metadata
  from packaging.requirements import Requirement
  from packaging.utils import canonicalize_name
  from check_lock import lock_pins
  pins, hashed = lock_pins()
  assert hashed
  wanted = importlib.metadata.requires('dreamer-bird-idm')
  for text in wanted:
    requirement = Requirement(text)
    if requirement.marker and 'gpu' in str(requirement.marker):
      continue  # CUDA's packages: no GPU where the lock is tested.
    name = canonicalize_name(requirement.name)
    assert name in pins, f'{name} is not in requirements-lock.txt'
    assert requirement.specifier.contains(pins[name]), (text, pins[name])


def test_installed_packages_are_within_setup_pys_ranges():
  # Any install route: the lock, or pip install -e '.[test,gym]'.
  import importlib.metadata
  from packaging.requirements import Requirement
  for text in importlib.metadata.requires('dreamer-bird-idm'):
    requirement = Requirement(text)
    try:
      version = importlib.metadata.version(requirement.name)
    except importlib.metadata.PackageNotFoundError:
      # An extra's package may be left out (gym's tests skip without it).
      assert requirement.marker and 'extra' in str(requirement.marker), text
      continue
    assert requirement.specifier.contains(version, prereleases=True), (
        text, version)


def test_check_lock_names_what_differs(tmp_path):
  from check_lock import lock_pins
  pins, _ = lock_pins()
  lock = (ROOT / 'requirements-lock.txt').read_text()
  numpy = f'numpy=={pins["numpy"]}'
  assert lock.count(numpy) == 1
  changed = tmp_path / 'lock.txt'
  changed.write_text(lock.replace(numpy, 'numpy==1.0.0'))
  process = run_script('tests/check_lock.py', str(changed), timeout=60)
  assert process.returncode == 1
  assert f'  numpy: {pins["numpy"]}, locked 1.0.0' in process.stdout


def test_ci_checks_the_installed_lock():
  ci = (ROOT / '.ci' / 'run').read_text().splitlines()
  assert '.venv/bin/python tests/check_lock.py' in ci
