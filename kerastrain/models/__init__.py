"""Keras model builders: sizes in, an uncompiled `keras.Model` out.

They know nothing of strategies, files or flags; a recipe calls them inside
`strategy.scope()` and compiles the result.
"""

from kerastrain.models.checkpointing import RecomputedBlock
from kerastrain.models.layers import WeightedBag
from kerastrain.models.mlp import build_mlp
from kerastrain.models.textcnn import build_textcnn

__all__ = ["RecomputedBlock", "WeightedBag", "build_mlp", "build_textcnn"]
