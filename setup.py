import setuptools

# rliable 1.2.0 needs arch < 8, which fails to import under pandas 3.
PLOT = ['matplotlib>=3.8', 'rliable==1.2.0', 'arch>=5.3.1,<8', 'pandas<3']

setuptools.setup(
    name='dreamer-bird-idm',
    version='0.1.0',
    description=(
        'Dreamer and its extensions BIRD and IDM: model-based reinforcement '
        'learning from pixels in TensorFlow 2'),
    py_modules=['dreamer', 'bird', 'idm', 'models', 'tools', 'wrappers'],
    # dm_control needs labmaze, which has wheels up to Python 3.12 only
    # (building it needs Bazel).
    python_requires='>=3.10,<3.13',
    install_requires=[
        # tf_keras must match TensorFlow's minor version; TFP 0.25 is the
        # release for TF 2.19+.
        'tensorflow>=2.21,<2.22',
        'tf_keras>=2.21,<2.22',
        'tensorflow-probability>=0.25,<0.26',
        'tensorboard>=2.21,<2.22',
        # dm_control 1.0.50 declares mujoco>=3.17 but fails with mujoco 4.0
        # ('MjModel' object has no attribute 'flex_vertedge').
        'dm_control==1.0.50',
        'mujoco>=3.17,<4',
        # The Arcade Learning Environment with its ROMs, for atari_<game>.
        'ale-py>=0.10,<0.13',
        'numpy>=1.26,<3',
        'absl-py>=2',
        'pillow>=10',  # GIFs are encoded in-process: no ffmpeg needed.
        # MP4 videos (runs/evaluate.py): its wheel carries an ffmpeg binary.
        'imageio-ffmpeg>=0.5',
    ],
    extras_require={
        # runs/plot.py draws the figures and their statistics; its tests need
        # it too.
        'plot': PLOT,
        # statsmodels: an independent reference for runs/stats.py's tests.
        'test': ['pytest>=8', 'pytest-xdist>=3', 'statsmodels>=0.14'] + PLOT,
        # gym_<id> tasks: Gymnasium with its MuJoCo (mujoco < 4 as above)
        # and classic-control (pygame) environments.
        'gym': ['gymnasium[mujoco,classic-control]>=1.1,<2'],
        'gpu': ['tensorflow[and-cuda]>=2.21,<2.22'],
    },
)
