"""Sphinx configuration of the bayesclv documentation.

Build with ``make docs`` (``sphinx-build -W --keep-going -b html docs docs/_build/html``):
warnings are errors, and every tutorial under ``tutorials/`` is executed during the build
(myst-nb), so a tutorial that raises fails the build.
"""

from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import bayesclv

DOCS = Path(__file__).resolve().parent

# -- Project -------------------------------------------------------------------------------
project = "bayesclv"
author = "bayesclv developers"
copyright = "bayesclv developers"
version = release = bayesclv.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]
root_doc = "index"

# -- API reference: autosummary writes one page per public name (api/generated/) ---------
autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"  # the numpydoc "Parameters" sections carry the types
autodoc_member_order = "bysource"
autodoc_default_options = {"show-inheritance": False}
numpydoc_show_class_members = False  # the class template lists the members itself
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = True
# numpydoc links builtin types through explicit "python:"/"numpy:" roles, which fail (or show
# the prefix) without those inventories; link them as plain objects instead.
numpydoc_xref_aliases = {
    **{name: name for name in ("int", "float", "str", "dict", "list", "tuple", "callable",
                               "None", "True", "False")},
    "string": "str",
    "bool": "bool",
    "boolean": "bool",
    "iterable": "collections.abc.Iterable",
    "sequence": "collections.abc.Sequence",
    "mapping": "collections.abc.Mapping",
    "generator": "collections.abc.Generator",
    "array-like": "numpy.typing.ArrayLike",
    "array_like": "numpy.typing.ArrayLike",
    "scalar": "numpy.generic",
    "DataFrame": "pandas.DataFrame",
    "Series": "pandas.Series",
    "DataArray": "xarray.DataArray",
    "DataTree": "xarray.DataTree",
    "Pipeline": "sklearn.pipeline.Pipeline",
    "CLVModel": "bayesclv.CLVModel",
    "RetentionModel": "bayesclv.RetentionModel",
    "SpendModel": "bayesclv.SpendModel",
    "CustomerColumns": "bayesclv.data.CustomerColumns",
    "CustomerData": "bayesclv.data.CustomerData",
    "SimulationTruth": "bayesclv.datasets.SimulationTruth",
    "Prior": "bayesclv.Prior",
}
numpydoc_xref_ignore = {
    "of", "or", "and", "optional", "default", "shape", "array",
    "matplotlib", "Axes", "Figure", "type",
}

# -- Tutorials: MyST markdown notebooks, executed at every build ---------------------------
# "force" re-runs every tutorial on every build, so the pages always show what the current
# code does. BAYESCLV_DOCS_EXECUTION=cache keeps executed notebooks in _build/ and re-runs
# a tutorial only when its code changed (quicker when editing prose; it does not notice
# changes in the library itself).
nb_execution_mode = os.environ.get("BAYESCLV_DOCS_EXECUTION", "force")
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 900  # seconds per cell: the covariates tutorial fits per-customer profiles
nb_execution_excludepatterns = ["api/**"]
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# The kernels inherit this process's environment. Figures must reach the notebook, so the
# kernel uses the inline backend even where MPLBACKEND=Agg is set for headless test runs.
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

# -- Cross-references to the libraries bayesclv builds on -------------------------------
_INTERSPHINX = {
    "python": "https://docs.python.org/3/",
    "numpy": "https://numpy.org/doc/stable/",
    "pandas": "https://pandas.pydata.org/docs/",
    "xarray": "https://docs.xarray.dev/en/stable/",
    "sklearn": "https://scikit-learn.org/stable/",
    "pymc": "https://www.pymc.io/projects/docs/en/stable/",
    "arviz": "https://python.arviz.org/en/stable/",
    "arviz_stats": "https://python.arviz.org/projects/stats/en/latest/",
    "matplotlib": "https://matplotlib.org/stable/",
}


def _reachable(url: str) -> bool:
    host = urlsplit(url).hostname
    try:
        socket.create_connection((host, 443), timeout=3).close()
    except OSError:
        return False
    return True


# Inventories are fetched from the projects' sites. Without network access (an isolated
# build machine) the links to them are left out rather than failing the build: the pages
# are the same, with those names as plain text.
if os.environ.get("BAYESCLV_DOCS_OFFLINE"):
    _online: dict[str, bool] = dict.fromkeys(_INTERSPHINX, False)
else:
    with ThreadPoolExecutor(len(_INTERSPHINX)) as pool:
        _online = dict(zip(_INTERSPHINX, pool.map(_reachable, _INTERSPHINX.values()),
                           strict=True))
intersphinx_mapping = {name: (url, None) for name, url in _INTERSPHINX.items() if _online[name]}
intersphinx_timeout = 10
if not all(_online.values()):
    print("intersphinx: no network for "
          + ", ".join(name for name, ok in _online.items() if not ok)
          + "; links to those projects are left out of this build.")

# -- HTML ----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"bayesclv {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 5,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"index": [], "security": []}
html_show_sourcelink = False


# -- Parallel builds -----------------------------------------------------------------------
def _executed(path: Path) -> bool:
    """Whether a page is a notebook myst-nb executes (it has code cells)."""
    try:
        return "```{code-cell}" in Path(path).read_text(encoding="utf-8")
    except OSError:
        return False


# The pages that take longest to execute (a minute or more with empty compile caches),
# longest first.
_LONGEST_FIRST = ("tutorials/scaling", "tutorials/duration_dependence", "tutorials/covariates")


def _spread_executed_pages(app, env, docnames: list[str]) -> None:
    """Spread the executed pages over the chunks ``sphinx-build -j N`` reads in parallel.

    Sphinx gives each reader process a contiguous run of the sorted page names, so every
    tutorial (``priors``, ``tutorials/*``) would fall in the last chunk and execute one
    after another. Interleaved with the quick API pages at even intervals, they run N at a
    time. The longest page has the first chunk to itself and the next longest come
    next, so that the first N chunks, which start together, take the long pages, and the
    short ones fill in as readers come free (Sphinx starts the other chunks last first).
    """
    if app.parallel <= 1:
        return
    from sphinx.util.parallel import make_chunks

    executed = [name for name in docnames if _executed(env.doc2path(name))]
    if not executed:
        return
    executed.sort(key=lambda name: (_LONGEST_FIRST.index(name) if name in _LONGEST_FIRST
                                    else len(_LONGEST_FIRST)))
    chosen = set(executed)
    others = [name for name in docnames if name not in chosen]
    first = len(make_chunks(docnames, app.parallel)[0]) / len(docnames)
    rest = len(executed) - 1
    keyed = ([(0.0, executed[0])]
             + [(first + (i + 0.5) / rest * (1.0 - first), name)
                for i, name in enumerate(executed[1:])]
             + [((i + 0.5) / len(others), name) for i, name in enumerate(others)])
    docnames[:] = [name for _, name in sorted(keyed)]


def setup(app):
    """Register the page ordering for parallel reads."""
    app.connect("env-before-read-docs", _spread_executed_pages)
