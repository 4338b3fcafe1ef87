"""Atomic writes (ntksym._io): nothing half-written, no debris, the user's umask."""

from __future__ import annotations

import os
import stat

import pytest

from ntksym._io import atomic_path, atomic_write_text


def test_write_replace_and_mode(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    old = os.umask(0o027)
    try:
        atomic_write_text(target, "one\n")
    finally:
        os.umask(old)
    assert target.read_text() == "one\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # 0666 & ~0027, not mkstemp's 0600
    atomic_write_text(target, "two\n")
    assert target.read_text() == "two\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_interrupted_write_leaves_old_file_and_no_debris(tmp_path, exc):
    target = tmp_path / "out.txt"
    target.write_text("keep me")
    with pytest.raises(exc), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise exc()
    assert target.read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
