"""The bundled presets, installed as `kerastrain.presets`: see `kerastrain train RECIPE --config NAME`."""
