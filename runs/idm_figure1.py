"""IDM's appendix A.3, Figure 1: R2S2's video prediction with noisy latents.

  python runs/idm_figure1.py runs/logdir/idm_vs_dreamer/hopper_hop/idm/0 \
      --output runs/results/idm_figure1_hopper_hop

For a finished IDM run, collects a test episode with action noise (its
policy plus Gaussian noise of std --noise, as training collects), observes
it with the run's model, and decodes the derived memory of every posterior
state (idm.derive with the run's sigma_h and sigma_s'). Writes a PNG of
--frames frames spread over the episode: the truth, the reconstruction from
derived memory, and the error; and prints the mean absolute error.
"""

import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / 'runs')]
import tools  # noqa: E402  (sets TensorFlow's import flags first)
import dreamer  # noqa: E402
import idm  # noqa: E402
import predictions  # noqa: E402
import wrappers  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def derived_reconstruction(agent, episode):
  """Truth and the frames decoded from derived memory, in [0, 1]."""
  data = {
      k: tf.convert_to_tensor(v[None]) for k, v in episode.items()
      if k in tools.EPISODE_KEYS}
  data = dreamer.preprocess(data, agent._c)
  post, _ = agent._dynamics.observe(agent._encode(data), data['action'])
  derived = idm.derive(
      post, agent._c.derive_std_deter, agent._c.derive_std_stoch)
  image = agent._decode(agent._dynamics.get_feat(derived)).mode()
  return (data['image'] + 0.5).numpy()[0], (image + 0.5).numpy()[0]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('logdir', type=pathlib.Path)
  parser.add_argument('--output', type=pathlib.Path, required=True)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--noise', type=float, default=0.3)
  parser.add_argument('--frames', type=int, default=10)
  args = parser.parse_args(argv)
  try:
    agent_class, config = predictions.evaluate.load_record(
        args.logdir, dict(precision=None, jit=None))
    if not issubclass(agent_class, idm.IDM):
      raise tools.ConfigError(f'{args.logdir} is no IDM run')
    env = wrappers.make_dmc(
        config.task.split('_', 1)[1], config.action_repeat, 40, 0)
    actspace = env.action_space
    env.close()
    agent, config = predictions.load_agent(args.logdir, actspace)
    episode = predictions.collect(agent, config, args.seed, args.noise)
  except tools.RunError as e:
    sys.exit(f'idm_figure1.py: error: {e}')
  truth, derived = derived_reconstruction(agent, episode)
  error = np.abs(derived - truth)
  steps = np.linspace(0, len(truth) - 1, args.frames).astype(int)
  args.output.parent.mkdir(parents=True, exist_ok=True)
  rows = [
      (label, images[steps]) for label, images in (
          ('truth', truth), ('derived memory', derived), ('error', error))]
  predictions.image_grid(
      rows, [str(step) for step in steps], args.output.with_suffix('.png'),
      'Reconstruction from derived memory (R2S2)')
  print(f'Reconstruction from derived memory (sigma_h '
        f'{config.derive_std_deter}, sigma_s\' {config.derive_std_stoch}): '
        f'mean absolute error {error.mean():.4f} over {len(truth)} frames; '
        f'wrote {args.output.with_suffix(".png")}')


if __name__ == '__main__':
  main()
