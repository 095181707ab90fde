"""One atomic write (serving/files.py): old file or new, never half; fsync; permissions."""

from __future__ import annotations

import os

import pytest

from leadscore.serving import files


def test_write_atomic_replaces_and_keeps_permissions(tmp_path):
    target = tmp_path / "sub" / "report.html"
    files.write_atomic(target, "first ✓")
    assert target.read_text(encoding="utf-8") == "first ✓"
    assert target.stat().st_mode & 0o777 == 0o644
    os.chmod(target, 0o600)
    files.write_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert target.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]


def test_a_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with (
        pytest.raises(RuntimeError, match="half-way"),
        files.atomic_writer(target, text=True) as handle,
    ):
        handle.write("new\n")
        raise RuntimeError("half-way")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_the_data_is_synced_before_the_rename(tmp_path, monkeypatch):
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(
        os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1]
    )
    files.write_atomic(tmp_path / "x.csv", "a,b\n")
    assert calls == ["fsync", "replace"]
