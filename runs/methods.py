"""The methods that the figure scripts compare: one list for every script.

  python runs/methods.py NAME       # prints the method's script and flags
  python runs/methods.py --list     # prints every name

A method is a training script, its agent class and the flags that make it
what it is; every other flag is the script's default or the figure's. Names
`softbird_<alpha>` are Soft-BIRD with `--ent_alpha <alpha>`, and
`<method>_shared` any method of this project's agents with upstream's
sampler, `--shared_noise True`. `upstream` is upstream's own Dreamer
(runs/upstream.py, from the checkout that UPSTREAM names).
"""

import sys

# name: (script, agent class, flags).
METHODS = {
    'dreamer': ('dreamer.py', 'dreamer.Dreamer', []),
    # Dreamer on BIRD's replay: the newest 100k env steps, as BIRD's authors'
    # own Dreamer runs.
    'dreamer_fifo': (
        'dreamer.py', 'dreamer.Dreamer', ['--dataset_size', '1e5']),
    # Dreamer without the discount predictor, where the defaults learn
    # terminations (Atari, Gymnasium): value targets always discount.
    'dreamer_no_pcont': ('dreamer.py', 'dreamer.Dreamer', ['--pcont', 'False']),
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
    # Upstream's own code (danijar/dreamer 56d4d44) with its own loop; its
    # agent is no class of this project (config.json names it so).
    'upstream': ('runs/upstream.py', 'upstream.Dreamer', []),
}

# Methods without this project's RSSM sampler, so without `_shared`.
UNSHARED = {
    'random': 'the random baseline has no model to sample',
    'upstream': "upstream's code has no --shared_noise: its RSSM always "
                'draws one noise vector per step for the whole batch',
}


def method(name):
  """(script, agent class, flags) of a method name; KeyError if unknown."""
  if name.endswith('_shared'):
    if name[:-len('_shared')] in UNSHARED:
      raise KeyError(name)
    script, agent, flags = method(name[:-len('_shared')])
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
    base = argv[0][:-len('_shared')]
    if argv[0].endswith('_shared') and base in UNSHARED:
      sys.exit(f"methods.py: error: unknown method '{argv[0]}': "
               f'{UNSHARED[base]}')
    sys.exit(f"methods.py: error: unknown method '{argv[0]}'; methods are "
             f"{', '.join(METHODS)}, softbird_<alpha> and <method>_shared")
  print(' '.join([script] + flags))


if __name__ == '__main__':
  main(sys.argv[1:])
