"""The runnable recipes: one module each, defining a `Recipe` named `RECIPE`.

`kerastrain train NAME` and `kerastrain.train("NAME")` find the recipe of the
module `kerastrain.recipes.NAME`; a new recipe is one new module here.
"""

import importlib
import pkgutil

from kerastrain.errors import UsageError


def recipe_names():
    """The names of the recipe modules in this package, sorted."""
    return sorted(module.name for module in pkgutil.iter_modules(__path__) if not module.name.startswith("_"))


def find_recipe(name):
    """The `Recipe` of the module `kerastrain.recipes.NAME`.

    Raises:
        UsageError: if there is no such recipe.
    """
    names = recipe_names()
    if name not in names:
        raise UsageError(f"Expected a recipe, one of: {', '.join(names)}. Received: {name!r}")
    return importlib.import_module(f"{__name__}.{name}").RECIPE


def recipe_for_config(config):
    """The `Recipe` whose config class `config` is an instance of.

    Raises:
        UsageError: if no recipe uses that config class.
    """
    for name in recipe_names():
        recipe = find_recipe(name)
        if type(config) is recipe.config_class:
            return recipe
    raise UsageError(
        f"Expected the config of a recipe ({', '.join(recipe_names())}). Received: {type(config).__name__}"
    )
