"""Whether this environment holds requirements-lock.txt's versions.

  python tests/check_lock.py        # exit 1 naming each package that differs

.ci/run checks this after the README's test command, where the lock was
installed; the test suite itself passes on any install within setup.py's
ranges (pip install -e '.[test,gym]'), so it does not assert the lock.
"""

import importlib.metadata
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def lock_pins(path=ROOT / 'requirements-lock.txt'):
  """{name: version} of the lock for this Python, and whether every pin
  carries its hashes."""
  from packaging.requirements import Requirement
  from packaging.utils import canonicalize_name
  pins, hashed = {}, True
  lines = pathlib.Path(path).read_text().splitlines()
  for index, line in enumerate(lines):
    if not line or line.startswith((' ', '#')):
      continue
    requirement = Requirement(line.rstrip(' \\'))
    following = lines[index + 1] if index + 1 < len(lines) else ''
    hashed &= following.strip().startswith('--hash=sha256:')
    if requirement.marker is None or requirement.marker.evaluate():
      (version,) = [s.version for s in requirement.specifier]
      pins[canonicalize_name(requirement.name)] = version
  return pins, hashed


def differences(pins):
  """Lines naming each pinned package installed at another version."""
  lines = []
  for name, version in sorted(pins.items()):
    try:
      installed = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      installed = None
    if installed != version:
      lines.append(f'{name}: {installed or "not installed"}, locked {version}')
  return lines


def main(argv):
  path = argv[0] if argv else ROOT / 'requirements-lock.txt'
  lines = differences(lock_pins(path)[0])
  if lines:
    print(f'check_lock.py: this environment differs from {path}:')
    print('\n'.join(f'  {line}' for line in lines))
    sys.exit(1)
  print(f'This environment holds every version of {path}.')


if __name__ == '__main__':
  main(sys.argv[1:])
