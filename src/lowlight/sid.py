"""SID (See-in-the-Dark) conventions: file names, list files, splits and pairing rules.

Names are ``SSSSS_FF_Es.ARW``: a 5-digit scene id, a 2-digit frame and the exposure in seconds.
The scene id's first digit gives the split (0 train, 1 test, 2 validation) and list files hold
``short long ISO F-number`` per line (Chen et al., CVPR 2018, and their released dataset).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lowlight import storage
from lowlight.errors import SidNameError

SID_NAME = re.compile(
    r"^(?P<scene>\d{5})_(?P<frame>\d{2})_(?P<exposure>\d+(?:\.\d+)?)s(?:\.[A-Za-z0-9]+)?$"
)
SPLIT_BY_PREFIX = {"0": "train", "1": "test", "2": "val"}
SPLITS = ("train", "test", "val")
LIST_FILE = "Sony_{split}_list.txt"  # the Sony set's; a camera's own: list_file(folder, split)
# SID's folder per camera maker: Sony/ (a7S II, Bayer) and Fuji/ (X-T2, X-Trans), each with its
# own list files (Sony_train_list.txt, Fuji_train_list.txt ...); another maker gets its name.
CAMERA_FOLDERS = {"Sony": "Sony", "Fujifilm": "Fuji"}
# SID caps the amplification ratio at 300 (the largest ratio in the Sony set).
MAX_RATIO = 300.0


@dataclass(frozen=True)
class SidName:
    scene_id: str
    frame: int
    exposure: float

    @property
    def split(self) -> str:
        return SPLIT_BY_PREFIX.get(self.scene_id[0], "train")

    def stem(self) -> str:
        return f"{self.scene_id}_{self.frame:02d}_{format_exposure(self.exposure)}s"


def format_exposure(seconds: float) -> str:
    """SID writes exposures as ``10``, ``0.1``, ``0.04``, ``0.033``: no trailing zeros."""
    return f"{seconds:.4f}".rstrip("0").rstrip(".")


def parse_name(path: str | Path) -> SidName | None:
    """The SID fields of a file name or stem, or None when it does not follow SID's pattern."""
    match = SID_NAME.match(Path(path).name)
    if match is None:
        return None
    return SidName(match["scene"], int(match["frame"]), float(match["exposure"]))


def exposure_ratio(long_exposure: float, short_exposure: float, cap: float = MAX_RATIO) -> float:
    """Amplification of a short frame: long / short exposure, at least 1, capped like SID."""
    if short_exposure <= 0:
        raise SidNameError(f"exposure must be positive, got {short_exposure}")
    return float(min(max(long_exposure / short_exposure, 1.0), cap))


@dataclass(frozen=True)
class ListEntry:
    short: str  # file stem
    long: str
    iso: int | None
    split: str


def parse_list_line(line: str, split: str, source: str = "<list>") -> ListEntry:
    """``./Sony/short/00001_00_0.1s.ARW ./Sony/long/00001_00_10s.ARW ISO200 F8`` (the Fuji
    lists alike: ``./Fuji/short/10003_00_0.1s.RAF ./Fuji/long/10003_00_10s.RAF ISO1000 F8``)."""
    fields = line.split()
    if len(fields) < 2:
        raise SidNameError(f"{source}: expected 'short long ISO F-number', got {line!r}")
    iso = None
    if len(fields) >= 3 and fields[2].upper().startswith("ISO"):
        try:
            iso = int(fields[2][3:])
        except ValueError as exc:
            raise SidNameError(f"{source}: bad ISO field {fields[2]!r} in {line!r}") from exc
    return ListEntry(Path(fields[0]).stem, Path(fields[1]).stem, iso, split)


def read_list_files(folder: storage.Location) -> dict[str, ListEntry]:
    """Entries of every ``*_{train,test,val}_list.txt`` in ``folder`` (local or ``s3://``),
    keyed by short stem."""
    entries: dict[str, ListEntry] = {}
    for split in SPLITS:
        for path in storage.list_files(folder, f"_{split}_list.txt"):
            for line in storage.read_bytes(path).decode().splitlines():
                if line.strip():
                    entry = parse_list_line(line, split, source=str(path))
                    entries[entry.short] = entry
    return entries


def camera_folder(make: str) -> str:
    """SID's folder (and list-file prefix) of a camera maker's frames."""
    return CAMERA_FOLDERS.get(make, make)


def list_file(folder: str, split: str) -> str:
    """A camera folder's list file of ``split`` (``Fuji_test_list.txt``)."""
    return f"{folder}_{split}_list.txt"


def format_list_line(short: str, long: str, iso: int, fnumber: float, folder: str) -> str:
    return f"./{folder}/short/{short} ./{folder}/long/{long} ISO{iso} F{fnumber:g}"


@dataclass(frozen=True)
class Frame:
    """One converted frame as pairing sees it."""

    stem: str
    name: SidName
    iso: int | None = None


@dataclass(frozen=True)
class Pair:
    pair_id: str
    scene_id: str
    split: str
    dark: str  # stem of the short exposure
    bright: str  # stem of the long exposure
    dark_exposure: float
    bright_exposure: float
    ratio: float
    iso: int | None


def pair_frames(
    frames: Iterable[Frame], select: str = "darkest", lists: dict[str, ListEntry] | None = None
) -> list[Pair]:
    """Pair each scene's short frames with its long exposure (its longest frame).

    ``darkest`` keeps the shortest exposure of each scene (lowest frame number on ties), as the
    seed did; ``all`` keeps every short frame. List files, when given, decide the split and the
    long frame of the shorts they name; other frames fall back to the scene prefix.
    """
    if select not in ("darkest", "all"):
        raise SidNameError(f"pair.select must be 'darkest' or 'all', got {select!r}")
    lists = lists or {}
    by_scene: dict[str, list[Frame]] = {}
    for frame in frames:
        by_scene.setdefault(frame.name.scene_id, []).append(frame)
    by_stem = {f.stem: f for fs in by_scene.values() for f in fs}

    pairs: list[Pair] = []
    for scene_id in sorted(by_scene):
        scene = by_scene[scene_id]
        longest = max(scene, key=lambda f: (f.name.exposure, -f.name.frame))
        shorts = [f for f in scene if f.name.exposure < longest.name.exposure]
        shorts.sort(key=lambda f: (f.name.exposure, f.name.frame))
        if select == "darkest":
            shorts = shorts[:1]
        for dark in shorts:
            entry = lists.get(dark.stem)
            bright = by_stem.get(entry.long, longest) if entry else longest
            iso = entry.iso if entry and entry.iso is not None else dark.iso
            pairs.append(
                Pair(
                    pair_id=dark.stem,
                    scene_id=scene_id,
                    split=entry.split if entry else dark.name.split,
                    dark=dark.stem,
                    bright=bright.stem,
                    dark_exposure=dark.name.exposure,
                    bright_exposure=bright.name.exposure,
                    ratio=exposure_ratio(bright.name.exposure, dark.name.exposure),
                    iso=iso,
                )
            )
    return pairs
