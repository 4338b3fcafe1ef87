"""The notes' certified dual-kernel table: worker processes and the certification cache."""

from __future__ import annotations

import json
from dataclasses import replace

from ntksym.notes.duals import dual_row, dual_table, start_dual_table

COVS = (("1", "0.3", "1"),)


def test_rows_from_workers_equal_rows_computed_here():
    serial = dual_table(["relu", "step"], covariances=COVS, dps=20, jobs=1)
    pending = start_dual_table(["relu", "step"], covariances=COVS, dps=20, jobs=2)
    assert pending.result() == serial
    assert [r.name for r in serial] == ["relu", "step"]
    assert serial[0].worst_nngp < 1e-15  # the closed form agrees with the quadrature


def test_the_cache_is_read_back_and_keyed_by_its_inputs(tmp_path):
    row = dual_row("relu", COVS, 20, cache=tmp_path)
    (entry,) = tmp_path.glob("*.json")
    assert dual_row("relu", COVS, 20, cache=tmp_path) == row
    # an entry is what is read: a changed value comes back (so nothing was recomputed) ...
    data = json.loads(entry.read_text())
    entry.write_text(json.dumps({**data, "worst_nngp": 0.25}))
    assert dual_row("relu", COVS, 20, cache=tmp_path) == replace(row, worst_nngp=0.25)
    # ... other inputs are other entries, and an unreadable entry is recomputed
    dual_row("relu", COVS, 21, cache=tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 2
    entry.write_text("{not json")
    assert dual_row("relu", COVS, 20, cache=tmp_path) == row
