"""The table of every recipe setting, generated from the config dataclasses.

MkDocs runs this file as a hook (see `hooks:` in mkdocs.yml): in every page, the
line `<!-- config-table -->` is replaced by the tables, so the docs list exactly
the fields of `kerastrain.config` and never fall out of step with them. Run as a
script, it prints the same Markdown:

    python docs/gen_config_table.py

Each recipe's settings are the fields of one dataclass derived from
`kerastrain.config.TrainingConfig` (`TextCNNConfig` is the `textcnn` recipe's).
A field shared by several recipes gets one row when its default and help agree,
and one row per recipe when they differ.
"""

import dataclasses
import pathlib
import sys

MARKER = "<!-- config-table -->"
REPOSITORY = pathlib.Path(__file__).resolve().parents[1]


def config_classes():
    """The recipes' config dataclasses, by recipe name (`TextCNNConfig` -> `"textcnn"`)."""
    if str(REPOSITORY) not in sys.path:
        sys.path.insert(0, str(REPOSITORY))
    from kerastrain import config as config_lib

    found = {}
    pending = list(config_lib.TrainingConfig.__subclasses__())
    while pending:
        config_class = pending.pop(0)
        found[config_class.__name__.removesuffix("Config").lower()] = config_class
        pending.extend(config_class.__subclasses__())
    return found


def allowed_values(item, kind):
    """What a field accepts, in a few words."""
    metadata = item.metadata
    if kind is bool:
        return "on or off"
    if kind is tuple:
        return "integers > 0, comma-separated"
    if metadata.get("choices") is not None:
        return ", ".join(f"`{choice}`" for choice in metadata["choices"])
    minimum, maximum = metadata.get("minimum"), metadata.get("maximum")
    if minimum is not None and maximum is not None:
        return f"{minimum} to {maximum}"
    if minimum is not None:
        return f"≥ {minimum}"
    if maximum is not None:
        return f"≤ {maximum}"
    return "text" if kind is str else ""


def format_default(value):
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return "`" + ",".join(str(part) for part in value) + "`"
    if value == "":
        return "empty"
    return f"`{value}`"


def flag_names(item, kind):
    flag = "--" + item.name.replace("_", "-")
    if kind is bool:
        return f"`{flag}`, `--no-{flag[2:]}`"
    return f"`{flag}`"


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def config_table_markdown():
    """Markdown tables of every setting, one table per `--help` group.

    Returns:
        The Markdown text: for each group a heading and a table with the flag,
        the TOML key, the recipes that have it, its default, what it accepts and
        what it does.
    """
    from kerastrain import config as config_lib

    classes = config_classes()
    rows = {}  # field name -> list of (recipes, item, default)
    for recipe, config_class in classes.items():
        defaults = config_class()
        for item in dataclasses.fields(config_class):
            entry = (item.metadata.get("help", ""), repr(getattr(defaults, item.name)))
            variants = rows.setdefault(item.name, [])
            for variant in variants:
                if variant["key"] == entry:
                    variant["recipes"].append(recipe)
                    break
            else:
                variants.append(
                    {"key": entry, "recipes": [recipe], "item": item, "default": getattr(defaults, item.name)}
                )
    lines = []
    for group in config_lib.GROUPS:
        group_rows = [
            (name, variant)
            for name, variants in rows.items()
            for variant in variants
            if variant["item"].metadata.get("group", "training") == group
        ]
        if not group_rows:
            continue
        lines += [f"### {group.capitalize()}", "", "| flag | TOML key | recipes | default | accepts | what it does |"]
        lines.append("|---|---|---|---|---|---|")
        for name, variant in group_rows:
            item = variant["item"]
            kind = config_lib.field_type(item)
            recipes = "all" if len(variant["recipes"]) == len(classes) else ", ".join(variant["recipes"])
            lines.append(
                "| "
                + " | ".join(
                    cell(part)
                    for part in (
                        flag_names(item, kind),
                        f"`{name}`",
                        recipes,
                        format_default(variant["default"]),
                        allowed_values(item, kind),
                        item.metadata.get("help", ""),
                    )
                )
                + " |"
            )
        lines.append("")
    return "\n".join(lines)


def on_page_markdown(markdown, page, config, files, **kwargs):
    """MkDocs hook: replaces the marker line with the generated tables."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, config_table_markdown())


if __name__ == "__main__":
    print(config_table_markdown())
