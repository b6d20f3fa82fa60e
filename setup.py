"""Packaging: the metadata and package data are in setup.cfg; this maps recipes/ to a package.

The presets' source stays the top-level `recipes/` folder; the wheel carries them
as the package `kerastrain.presets`, so `--config NAME` finds them after any install.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["kerastrain", "kerastrain.*"]), "kerastrain.presets"],
    package_dir={"kerastrain.presets": "recipes"},
)
