"""Runs dreamer.py's main with a fault injected; for test_reliability.py.

  FAULT=variables.pkl:2 python tests/child_fault.py --logdir ... [flags]

FAULT `name:N`: the Nth atomic write of a file whose name contains `name` is
torn halfway and the process SIGKILLs itself. FAULT `enospc:name:N`: the Nth
write of such a file (atomic, or a line appended) fails halfway as on a full
disk. FAULT `nan`: once a checkpoint exists, every training batch has NaN
rewards; the good checkpoint's bytes are kept as good.pkl beside it. FAULT
`sigterm:N`: the process SIGTERMs itself during its Nth update.
"""

import errno
import io
import os
import pathlib
import signal
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import tools  # noqa: E402  (TensorFlow's import flags first)

FAULT = os.environ.get('FAULT', '')


def torn_write(write_atomic, name, nth):
  count = [0]
  def write(filename, content):
    if name not in str(filename):
      return write_atomic(filename, content)
    count[0] += 1
    if count[0] != nth:
      return write_atomic(filename, content)
    buffer = io.BytesIO()
    content(buffer)
    data = buffer.getvalue()
    def half(f):
      f.write(data[:len(data) // 2])
      f.flush()
      os.kill(os.getpid(), signal.SIGKILL)
    return write_atomic(filename, half)
  return write


def full_disk(write_atomic, append_line, name, nth):
  count = [0]
  def fails(filename):
    if name in str(filename):
      count[0] += 1
      return count[0] == nth
    return False
  def full():
    return OSError(errno.ENOSPC, 'No space left on device')
  def write(filename, content):
    if not fails(filename):
      return write_atomic(filename, content)
    def half(f):
      buffer = io.BytesIO()
      content(buffer)
      f.write(buffer.getvalue()[:len(buffer.getvalue()) // 2])
      raise full()
    return write_atomic(filename, half)
  def append(filename, line):
    if not fails(filename):
      return append_line(filename, line)
    def torn(filename, text):
      with tools.disk_full_is_an_error(filename):
        with open(filename, 'a') as f:
          f.write(text[:len(text) // 2])
        raise full()
    return torn(filename, line)
  return write, append


def nan_rewards(sample):
  def nan_sample(self, batch_size, random=None):
    batch = sample(self, batch_size, random)
    logdir = self._directory.parent
    if (logdir / 'variables.pkl').exists():
      if not (logdir / 'good.pkl').exists():
        good = (logdir / 'variables.pkl').read_bytes()
        (logdir / 'good.pkl').write_bytes(good)
      batch['reward'][:] = float('nan')
    return batch
  return nan_sample


def sigterm_at(train, nth):
  count = [0]
  def sigterm_train(self, *args, **kwargs):
    count[0] += 1
    if count[0] == nth:
      os.kill(os.getpid(), signal.SIGTERM)
    return train(self, *args, **kwargs)
  return sigterm_train


def main():
  import dreamer
  if FAULT.startswith('sigterm:'):
    dreamer.Dreamer.train = sigterm_at(dreamer.Dreamer.train, int(FAULT[8:]))
  elif FAULT == 'nan':
    tools.Replay.sample = nan_rewards(tools.Replay.sample)
  elif FAULT.startswith('enospc:'):
    _, name, nth = FAULT.split(':')
    tools.write_atomic, tools.append_line = full_disk(
        tools.write_atomic, tools.append_line, name, int(nth))
  elif FAULT:
    name, nth = FAULT.split(':')
    tools.write_atomic = torn_write(tools.write_atomic, name, int(nth))
  dreamer.main(dreamer.parse_flags(dreamer.define_config(), sys.argv[1:]))


if __name__ == '__main__':
  main()
