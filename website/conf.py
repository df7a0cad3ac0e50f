"""Sphinx configuration of the course website: ``python scripts/website.py`` builds it (docs/website.md).

The pages are the lesson notebooks with their stored outputs (nothing is executed), an exercises
page per lesson, the README as the home page and the instructors' guide. scripts/website.py stages
them under build/website/src/, then runs Sphinx with this folder as its configuration directory.
"""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]

project = "Transfer learning with pretrained models"
author = "the transferlib authors"
copyright = "the transferlib authors, MIT licence"

extensions = ["myst_nb", "sphinx_copybutton"]
root_doc = "index"
exclude_patterns = ["_build"]

# The notebooks are rendered as they are stored: the course's outputs come from a learner-mode run,
# checked by nbval. Executing them here would take half an hour and could print other numbers.
nb_execution_mode = "off"
# Widgets (the freeze and training panels) are live controls that need a kernel: the site shows
# the static snapshot every panel stores next to its widget (text/html), and loads no widget
# JavaScript, which would come from a CDN and fail offline.
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
nb_ipywidgets_js = {}
nb_merge_streams = True  # a cell's prints and its final progress-bar line in one block
myst_enable_extensions = ["dollarmath"]
# Formulas render with MathJax 3's tex-svg.js (one file, its glyphs inside), from the sphinx-mathjax-offline
# wheel, copied into the built _static/mathjax by scripts/website.py: Sphinx's default MathJax comes
# from a CDN, which an offline reader cannot reach.
mathjax_path = "mathjax/tex-svg.js"
myst_heading_anchors = 3

html_theme = "sphinx_book_theme"
html_title = "Transfer learning with pretrained models"
templates_path = ["_templates"]  # layout.html: the book theme without pydata's top header (phone menu)
html_static_path = ["_static"]
html_css_files = ["course.css"]  # full-width code and outputs, wrapped; tables that scroll
html_js_files = ["course.js"]  # names for the sidebar's arrows and the search button (axe-core)
html_use_index = False  # the pages define no index entries: genindex.html would be empty
html_last_updated_fmt = None
html_show_sourcelink = False
html_copy_source = False
html_context = {"default_mode": "auto"}  # the reader's system setting; unset, pydata logs "invalid theme mode"
html_theme_options = {
    "repository_url": REPOSITORY,
    "repository_branch": "main",
    "path_to_docs": "",  # the lesson pages are staged at notebooks/NN_topic.ipynb, as in the repository
    "use_repository_button": True,
    "use_download_button": False,  # a page is part of a lesson; the launch buttons open the whole notebook
    "launch_buttons": {
        "binderhub_url": "https://mybinder.org",
        "colab_url": "https://colab.research.google.com",
        "notebook_interface": "jupyterlab",
    },
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
