"""The signatures the client's README gives are the code's, exactly."""

import inspect
import os

import pytest

import finlive
from finlive import aio, session

SIGNATURES = [
    ("finlive.connect", finlive.connect),
    ("finlive.owned", finlive.owned),
    ("finlive.fenced_finalize", finlive.fenced_finalize),
    ("finlive.ReapListener", finlive.ReapListener),
    ("finlive.mark", finlive.mark),
    ("finlive.clear", finlive.clear),
    ("finlive.owner_of", finlive.owner_of),
    ("finlive.check_session", finlive.check_session),
    ("finlive.session.autocommit", session.autocommit),
    ("stop", finlive.ReapListener.stop),
    ("poll", finlive.ReapListener.poll),
    ("aio.connect", aio.connect),
    ("aio.owned", aio.owned),
    ("aio.fenced_finalize", aio.fenced_finalize),
    ("aio.ReapListener", aio.ReapListener),
]


def readme():
    path = os.environ.get("FINLIVE_TEST_README") or os.path.join(
        os.path.dirname(__file__), "..", "README.md")
    if not os.path.exists(path):
        pytest.skip("no README at %s" % path)
    with open(path, encoding="utf-8") as f:
        return f.read().replace('"', "'")


def bare(obj):
    """The signature without annotations, as the README writes it."""
    sig = inspect.signature(obj)
    params = [p.replace(annotation=inspect.Parameter.empty)
              for p in sig.parameters.values() if p.name != "self"]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))


@pytest.mark.parametrize("name,obj", SIGNATURES, ids=[n for n, _ in SIGNATURES])
def test_the_readme_gives_the_real_signature(name, obj):
    assert name + bare(obj) in readme()
