"""kerastrain: TensorFlow/Keras training recipes with parameter-server support.

Importing the package is cheap: TensorFlow is imported only by the modules that
need it (see `kerastrain.backend`), so `--help` and data checks stay fast.
"""

__version__ = "0.1.0"
