"""The methods that the figure scripts compare: one list for every script.

  python runs/methods.py NAME       # prints the method's script and flags
  python runs/methods.py --list     # prints every name

A method is a training script, its agent class and the flags that make it
what it is; every other flag is the script's default or the figure's. Names
`softbird_<alpha>` are Soft-BIRD with `--ent_alpha <alpha>`, and
`<method>_shared` any method with upstream's sampler, `--shared_noise True`.
"""

import sys

# name: (script, agent class, flags).
METHODS = {
    'dreamer': ('dreamer.py', 'dreamer.Dreamer', []),
    # Dreamer on BIRD's replay: the newest 100k env steps, as BIRD's authors'
    # own Dreamer runs.
    'dreamer_fifo': (
        'dreamer.py', 'dreamer.Dreamer', ['--dataset_size', '1e5']),
    'bird': ('bird.py', 'bird.BIRD', []),
    'softbird': ('bird.py', 'bird.SoftBIRD', ['--soft', 'True']),
    'idm': ('idm.py', 'idm.IDM', []),
    # IDM's evaluator trained against imagined transitions (joint ratio).
    'idm_imagined': (
        'idm.py', 'idm.IDM', ['--evaluator_negatives', 'imagined']),
    # IDM's ablations, one part left out each.
    'idm_no_constraint': ('idm.py', 'idm.IDM', ['--constraint_scale', '0']),
    'idm_original_only': ('idm.py', 'idm.IDM', ['--derived_starts', 'False']),
    'idm_no_weights': ('idm.py', 'idm.IDM', ['--reliability_weights', 'False']),
    # IDM whose imagined logits are clipped to its training pairs' range.
    'idm_logit_bound': ('idm.py', 'idm.IDM', ['--logit_bound', 'True']),
    # Uniform random actions (runs/random_baseline.py), a baseline.
    'random': ('runs/random_baseline.py', None, []),
}


def method(name):
  """(script, agent class, flags) of a method name; KeyError if unknown."""
  if name.endswith('_shared'):
    script, agent, flags = method(name[:-len('_shared')])
    if agent is None:  # The random baseline has no model to sample.
      raise KeyError(name)
    return script, agent, flags + ['--shared_noise', 'True']
  if name.startswith('softbird_'):
    alpha = name[len('softbird_'):]
    float(alpha)  # ValueError for a name that is no Soft-BIRD alpha.
    script, agent, flags = METHODS['softbird']
    return script, agent, flags + ['--ent_alpha', alpha]
  return METHODS[name]


def main(argv):
  if argv == ['--list']:
    print('\n'.join(METHODS))
    return
  if len(argv) != 1:
    sys.exit('usage: methods.py NAME | --list')
  try:
    script, _, flags = method(argv[0])
  except (KeyError, ValueError):
    sys.exit(f"methods.py: error: unknown method '{argv[0]}'; methods are "
             f"{', '.join(METHODS)}, softbird_<alpha> and <method>_shared")
  print(' '.join([script] + flags))


if __name__ == '__main__':
  main(sys.argv[1:])
