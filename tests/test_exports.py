"""The public facade: a sorted ``__all__`` whose every name imports."""

from __future__ import annotations

import mainspring


def test_all_is_sorted_and_importable() -> None:
    names = [n for n in mainspring.__all__ if n != "__version__"]
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    for name in mainspring.__all__:
        assert hasattr(mainspring, name), name
