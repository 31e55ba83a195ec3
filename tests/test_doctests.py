"""The Examples sections of the public docstrings run and print what they show.

Every module of the package is searched with :mod:`doctest`; each docstring with examples
is one test. Examples that fit a beta-mixture retention family (``sbg``, ``bdw``) take
ten seconds or more even with compiled code cached, so they run with the slow tests.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import bayesclv

OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
_SLOW_FAMILIES = ('"sbg"', '"bdw"')


def _modules() -> list[str]:
    names = [info.name for info in pkgutil.walk_packages(bayesclv.__path__, "bayesclv.")]
    return ["bayesclv", *sorted(names)]


def _docstring_examples() -> list:
    finder = doctest.DocTestFinder()
    params = []
    for name in _modules():
        module = importlib.import_module(name)
        for test in finder.find(module):
            if not test.examples:
                continue
            source = "".join(example.source for example in test.examples)
            slow = ".fit(" in source and any(f in source for f in _SLOW_FAMILIES)
            marks = [pytest.mark.slow] if slow else []
            params.append(pytest.param(test, id=test.name, marks=marks))
    return params


EXAMPLES = _docstring_examples()


def test_public_docstrings_have_examples():
    # Guards against the finder silently collecting nothing (e.g. a renamed package).
    assert len(EXAMPLES) >= 20


@pytest.mark.parametrize("test", EXAMPLES)
def test_docstring_example(test: doctest.DocTest, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    output: list[str] = []
    result = runner.run(test, out=output.append, clear_globs=True)
    assert result.failed == 0, "".join(output)
