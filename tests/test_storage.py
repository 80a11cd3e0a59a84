import pytest

from lowlight import storage


def test_staged_dir_replaces_the_folder_only_on_success(tmp_path):
    dest = tmp_path / "out"
    with storage.staged_dir(dest) as staging:
        (staging / "old.txt").write_text("previous")
    with storage.staged_dir(dest) as staging:
        (staging / "new.txt").write_text("fresh")
        assert (dest / "old.txt").exists()  # untouched while the stage works
    assert sorted(p.name for p in dest.iterdir()) == [storage.MARKER, "new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folders or lock left


def test_staged_dir_leaves_the_previous_folder_on_failure(tmp_path):
    dest = tmp_path / "out"
    with storage.staged_dir(dest) as staging:
        (staging / "old.txt").write_text("previous")
    with pytest.raises(RuntimeError), storage.staged_dir(dest) as staging:
        (staging / "half.txt").write_text("half")
        raise RuntimeError("stage failed")
    assert sorted(p.name for p in dest.iterdir()) == [storage.MARKER, "old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(ValueError), storage.atomic_path(tmp_path / "f.bin") as tmp:
        tmp.write_bytes(b"partial")
        raise ValueError
    assert list(tmp_path.iterdir()) == []
