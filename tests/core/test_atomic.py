"""Atomic writes: the file appears complete under its name, or the old one stays."""

from __future__ import annotations

import pytest

from mosaics_edu.core.atomic import atomic_path, atomic_write_bytes


def test_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "file.bin"  # the folder is created
    atomic_write_bytes(path, b"first")
    atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    assert [p.name for p in path.parent.iterdir()] == ["file.bin"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_an_exception_mid_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "data.json"
    atomic_write_bytes(path, b"old")
    with pytest.raises(RuntimeError, match="interrupted"), atomic_path(path, suffix=".part") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith("data.json.")
        assert tmp.name.endswith(".part") and tmp != path
        tmp.write_bytes(b"half of the new")
        raise RuntimeError("interrupted")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.json"]


def test_two_writers_of_one_file_get_distinct_temporaries(tmp_path):
    path = tmp_path / "ckpt.pt"
    with atomic_path(path) as a, atomic_path(path) as b:
        assert a != b
        a.write_bytes(b"a")
        b.write_bytes(b"b")
    assert path.read_bytes() == b"a"  # the outer writer finished last
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]
