"""Runnable recipes: `python -m kerastrain.recipes.textcnn` and `.mlp`."""
