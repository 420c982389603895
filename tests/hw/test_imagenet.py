from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from vidpipe.hw.base import NUM_CLASSES
from vidpipe.hw.imagenet import class_names, load_label_file
from vidpipe.pipeline.errors import BackendError


def test_thousand_names_in_standard_order() -> None:
    names = class_names()
    assert len(names) == NUM_CLASSES
    assert names[0] == "tench"
    assert names[281:286] == ["tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"]
    assert names[504] == "coffee mug"
    assert names[967] == "espresso"
    assert names[999] == "toilet tissue"


def test_names_are_short_human_names() -> None:
    names = class_names()
    assert all(name and name == name.strip() and "_" not in name and "," not in name for name in names)
    # the two classic duplicates of ImageNet-1k (crane the bird / the machine, maillot twice)
    assert names[134] == names[517] == "crane"
    assert names[638] == names[639] == "maillot"
    assert len(set(names)) == NUM_CLASSES - 2


def test_returns_a_fresh_list() -> None:
    first = class_names()
    first[0] = "changed"
    assert class_names()[0] == "tench"


def test_label_files(tmp_path: Path) -> None:
    names = [f"class {i}, synonym" for i in range(1000)]
    (tmp_path / "list.pkl").write_bytes(pickle.dumps(names))
    (tmp_path / "dict.pkl").write_bytes(pickle.dumps(dict(enumerate(names))))
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n")
    for f in ("list.pkl", "dict.pkl", "names.txt"):
        assert load_label_file(tmp_path / f) == names
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Path("x")))  # refers to a class: never loaded
    with pytest.raises(BackendError, match=r"evil\.pkl: cannot read"):
        load_label_file(tmp_path / "evil.pkl")
    (tmp_path / "short.txt").write_text("a\nb\n")  # a head of 2 classes (hw.alveo_head checks the FC rows)
    assert load_label_file(tmp_path / "short.txt") == ["a", "b"]
    (tmp_path / "long.txt").write_text("x\n" * 1001)
    with pytest.raises(BackendError, match=r"expected 1\.\.1000 class names \(the card's FC rows\), found 1001"):
        load_label_file(tmp_path / "long.txt")
