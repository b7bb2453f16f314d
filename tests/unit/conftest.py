"""Unit tests import the collection as ansible_collections.zerodowntime.web, from this clone
(collections/ links the repository in): `make units` runs them, as `ansible-test units` would."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "collections"))
