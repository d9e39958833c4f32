"""Three train steps of a tiny agent under XLA; for test_dreamer.py.

  XLA_FLAGS=--xla_dump_to=DIR python tests/child_xla.py LOGDIR

Prints the number of traces of the compiled step.
"""

import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
import tools  # noqa: E402,F401  (TensorFlow's import flags first)

from helpers import make_agent, random_batch, tiny_config  # noqa: E402

agent = make_agent(tiny_config(pathlib.Path(sys.argv[1]), jit=True))
for seed in range(3):
  metrics = agent.train(random_batch(agent._c, seed=seed))
  assert all(float(v) == float(v) for v in metrics.values()), metrics
print('TRACES', agent._train_fn.experimental_get_tracing_count())
