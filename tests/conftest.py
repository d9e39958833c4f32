import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'tests'))

# Before TensorFlow's first import: Keras 2, and TF loaded so that rendering
# works (tools.py).
os.environ['TF_USE_LEGACY_KERAS'] = '1'
os.environ.setdefault('MUJOCO_GL', 'egl')
import tools  # noqa: E402,F401  (sets TensorFlow's import flags first)


def pytest_configure(config):
  config.addinivalue_line(
      'markers', 'slow: starts processes or trains for long; '
      'the fast tier is pytest -m "not slow"')


def pytest_addoption(parser):
  parser.addoption(
      '--update-golden', action='store_true',
      help='rewrite tests/golden.json from this code (test_golden.py)')

