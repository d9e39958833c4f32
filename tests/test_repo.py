"""The repository's own promises: CI runs the README's test command; its examples parse."""

import shlex

from helpers import ROOT


def readme_commands():
  lines = (ROOT / 'README.md').read_text().splitlines()
  return [line for line in lines if line.startswith('python3 -m venv .venv && ')]


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
