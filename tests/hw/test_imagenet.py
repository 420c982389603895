from __future__ import annotations

from hw.imagenet import NUM_CLASSES, class_names


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
