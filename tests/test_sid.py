import pytest

from lowlight.errors import SidNameError
from lowlight.sid import (
    Frame,
    exposure_ratio,
    format_exposure,
    pair_frames,
    parse_list_line,
    parse_name,
)


def test_parse_sid_names():
    name = parse_name("Sony/short/10034_03_0.033s.ARW")
    assert (name.scene_id, name.frame, name.exposure, name.split) == ("10034", 3, 0.033, "test")
    assert parse_name("00001_00_10s.ARW").split == "train"
    assert parse_name("20211_01_0.1s.dng").split == "val"
    assert parse_name("IMG_1234.CR2") is None
    assert parse_name("0001_00_10s.ARW") is None  # scene ids have five digits


@pytest.mark.parametrize(
    "seconds, text", [(10.0, "10"), (0.1, "0.1"), (0.04, "0.04"), (0.033, "0.033")]
)
def test_exposures_are_written_like_sid(seconds, text):
    assert format_exposure(seconds) == text
    assert parse_name(f"00001_00_{text}s.ARW").stem() == f"00001_00_{text}s"


def test_ratio_is_long_over_short_capped_at_300():
    assert exposure_ratio(10, 0.1) == pytest.approx(100)
    assert exposure_ratio(10, 0.04) == pytest.approx(250)
    assert exposure_ratio(10, 0.033) == 300  # 303 capped
    assert exposure_ratio(30, 0.1) == 300
    assert exposure_ratio(1, 2) == 1  # never darkens
    with pytest.raises(SidNameError):
        exposure_ratio(10, 0)


def test_list_line():
    entry = parse_list_line(
        "./Sony/short/00001_00_0.1s.ARW ./Sony/long/00001_00_10s.ARW ISO200 F8", "train"
    )
    assert (entry.short, entry.long, entry.iso, entry.split) == (
        "00001_00_0.1s",
        "00001_00_10s",
        200,
        "train",
    )
    with pytest.raises(SidNameError, match="list.txt"):
        parse_list_line("lonely", "train", source="list.txt")


def frames(*stems: str) -> list[Frame]:
    return [Frame(s, parse_name(s), 800) for s in stems]


def test_darkest_keeps_the_shortest_exposure_lowest_frame_first():
    found = pair_frames(
        frames(
            "00001_00_10s",
            "00001_01_0.1s",
            "00001_00_0.04s",
            "00001_02_0.04s",
            "10002_00_0.1s",
            "10002_00_30s",
        ),
        "darkest",
    )
    assert [(p.dark, p.bright, p.ratio, p.split) for p in found] == [
        ("00001_00_0.04s", "00001_00_10s", 250, "train"),
        ("10002_00_0.1s", "10002_00_30s", 300, "test"),
    ]


def test_all_keeps_every_short_frame():
    found = pair_frames(frames("00001_00_10s", "00001_01_0.1s", "00001_00_0.1s"), "all")
    assert [p.pair_id for p in found] == ["00001_00_0.1s", "00001_01_0.1s"]
    assert all(p.bright == "00001_00_10s" for p in found)


def test_scene_without_long_exposure_gives_no_pair():
    assert pair_frames(frames("00001_00_0.1s", "00001_01_0.1s")) == []


def test_list_files_decide_split_and_iso():
    lists = {
        "00001_00_0.1s": parse_list_line("a/00001_00_0.1s.ARW b/00001_00_10s.ARW ISO3200 F4", "val")
    }
    (found,) = pair_frames(frames("00001_00_10s", "00001_00_0.1s"), "darkest", lists)
    assert (found.split, found.iso) == ("val", 3200)


def test_unknown_select_is_an_error():
    with pytest.raises(SidNameError, match="pair.select"):
        pair_frames([], "brightest")
