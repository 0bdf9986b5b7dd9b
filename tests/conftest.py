from __future__ import annotations

import pytest

from tests import factories


@pytest.fixture
def tree(db: None) -> factories.Tree:
    return factories.tree()
