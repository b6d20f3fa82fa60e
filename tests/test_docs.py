"""The documentation: the MkDocs site builds with --strict, and the README stays short.

The tests of the built site are slow: building it takes a few seconds.
"""

import ast
import dataclasses
import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]

# Pages of the site that the README and the other pages link to.
EXPECTED_PAGES = (
    "index",
    "cli",
    "python-api",
    "recipes",
    "training-techniques",
    "distributed",
    "tuning",
    "prediction",
    "report",
    "configuration",
    "benchmarks",
    "design",
    "developer",
    "changelog",
)

# Files a user reads: they describe the product, not how it was made.
PRODUCT_TEXTS = ("README.md", "CHANGELOG.md", "CONTRIBUTING.md", "docs/*.md")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built from this repository with `mkdocs build --strict`."""
    pytest.importorskip("mkdocs", reason='the docs need the docs extra: pip install -e ".[docs]"')
    site_dir = tmp_path_factory.mktemp("site")
    environment = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    # The hook and the API pages read this repository's kerastrain, not an installed one.
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environment.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=environment,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return site_dir


def page_text(site, name):
    path = site / "index.html" if name == "index" else site / name / "index.html"
    return path.read_text(encoding="utf-8")


@pytest.mark.slow
def test_every_page_is_built(site):
    missing = [name for name in EXPECTED_PAGES if not (site / ("" if name == "index" else name) / "index.html").exists()]
    assert not missing
    pages = list(site.glob("*/index.html"))
    assert len(pages) >= 8


@pytest.mark.slow
def test_configuration_page_lists_every_setting(site):
    from kerastrain import config as config_lib

    text = page_text(site, "configuration")
    for config_class in (config_lib.TextCNNConfig, config_lib.MLPConfig):
        for item in dataclasses.fields(config_class):
            assert f"--{item.name.replace('_', '-')}" in text, item.name


@pytest.mark.slow
def test_api_page_is_made_from_the_docstrings(site):
    # Read without importing the module, which would import TensorFlow.
    source = ast.parse((REPO / "kerastrain" / "models" / "textcnn.py").read_text(encoding="utf-8"))
    builder = next(node for node in source.body if getattr(node, "name", "") == "build_textcnn")
    summary = ast.get_docstring(builder).splitlines()[0]
    assert summary in page_text(site, "python-api")


@pytest.mark.slow
def test_pictures_are_in_the_site(site):
    for picture in ("images/report.png", "images/optimizer_study.png"):
        assert (site / picture).stat().st_size > 0


def test_config_table_script_prints_every_group():
    from kerastrain import config as config_lib

    result = subprocess.run(
        [sys.executable, str(REPO / "docs" / "gen_config_table.py")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    headings = re.findall(r"^### (.+)$", result.stdout, flags=re.MULTILINE)
    assert [heading.lower() for heading in headings] == list(config_lib.GROUPS)


def test_readme_is_short_and_starts_with_the_two_set_up_commands():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    assert ".venv/bin/pip install -e . && .venv/bin/kerastrain train textcnn" in first_block
    assert '.venv/bin/pip install -e ".[test]" && .venv/bin/python -m pytest' in first_block


@pytest.mark.parametrize("pattern", PRODUCT_TEXTS)
def test_product_texts_do_not_speak_of_how_they_were_made(pattern):
    for path in REPO.glob(pattern):
        text = path.read_text(encoding="utf-8")
        found = re.findall(r"\b(?:sessions?|issues?)\b", text, flags=re.IGNORECASE)
        assert not found, f"{path.relative_to(REPO)} speaks of {found[0]!r}"
