"""Benchmark of the patch stage and its reader; writes the ``## patches`` section of BENCHMARKS.md.

Measures, as ratios within one run:

1. write throughput (patches/s, MB/s) of ``lowlight.patches.PatchWriter`` against writing the
   same windows with bare pyarrow (``pq.ParquetWriter``, the same ``spec.schema()``, zstd, the
   same row groups and part files, pixel columns built straight from the numpy buffers with
   ``pa.FixedSizeBinaryArray.from_buffers``); goal: lowlight <= 1.5x bare pyarrow's time;
2. peak RSS of the whole patch stage (``stages.patch``) for 1x and 4x the images, each in a
   fresh subprocess (``ru_maxrss``); goal: 4x the data <= 1.2x the RSS;
3. loader throughput of ``lowlight.dataset.PatchStream`` through a torch ``DataLoader``
   (batch 16, 2 and 0 workers) over the train patches of (2), against the training step's
   consumption rate once ``lowlight.train`` exists (``train_step_rate``).

Scratch data lives under bench/_work/patches and is removed at the end.

    .venv/bin/python bench/patches.py           # full run, updates BENCHMARKS.md
    .venv/bin/python bench/patches.py --quick   # smoke run; prints, leaves BENCHMARKS.md alone
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import benchlib  # bench/benchlib.py, beside this script
from lowlight import patches

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "_work" / "patches"
BENCHMARKS = ROOT / "BENCHMARKS.md"
SECTION = "## patches"
COMMAND = ".venv/bin/python bench/patches.py"

GOAL_WRITE = 1.5  # PatchWriter time / bare pyarrow time, at most
GOAL_RSS = 1.2  # peak RSS with 4x the images / with 1x, at most
SIZE, STRIDE = 100, 50  # the seed's patch grid (PatchConfig defaults)
ROW_GROUP, PART_ROWS = 1024, 8192  # PatchConfig defaults
BATCH = 16
MB = 1e6


# --------------------------------------------------------------------------- machine load


# --------------------------------------------------------------------------- 1. writing


def synthetic_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth base (gradients + low-frequency waves per channel) in [0, 1], float32 HxWx3."""
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    base = np.empty((height, width, 3), dtype=np.float32)
    for c in range(3):
        a, b, fy, fx, phase = rng.uniform([-0.3, -0.3, 1, 1, 0], [0.3, 0.3, 6, 6, 6.3])
        wave = np.sin(2 * np.pi * fy * y + phase) * np.cos(2 * np.pi * fx * x)
        base[..., c] = 0.5 + a * y + b * x + 0.2 * wave
    return base


def synthetic_pair(rng: np.random.Generator, height: int, width: int) -> tuple:
    """(dark, bright) uint8 HxWx3 like converted SID pairs: the amplified short exposure is the
    clean long one plus strong noise."""
    base = synthetic_image(rng, height, width) * 255.0
    shape = base.shape
    bright = base + 2.0 * rng.standard_normal(shape, dtype=np.float32)
    dark = base + 12.0 * rng.standard_normal(shape, dtype=np.float32)
    to_u8 = lambda a: np.clip(np.rint(a), 0, 255).astype(np.uint8)  # noqa: E731
    return to_u8(dark), to_u8(bright)


def make_windows(count: int, height: int, width: int) -> list[tuple]:
    """``count`` pairs as the patch stage hands them to the writer:
    (pair_id, scene_id, ratio, starts, dark windows, bright windows)."""
    rng = np.random.default_rng(0)
    items = []
    for i in range(count):
        dark, bright = synthetic_pair(rng, height, width)
        starts, dark_w = patches.cut_windows(dark, SIZE, STRIDE)
        _, bright_w = patches.cut_windows(bright, SIZE, STRIDE)
        items.append((f"{i:05d}_00_0.1s", f"{i:05d}", 100.0, starts, dark_w, bright_w))
    return items


def write_lowlight(folder: Path, spec: patches.PatchSpec, items: list[tuple]) -> dict:
    folder.mkdir(parents=True)
    with patches.PatchWriter(folder, spec, ROW_GROUP, PART_ROWS) as writer:
        for item in items:
            writer.add(*item)
    return {"rows": writer.rows, "parts": len(writer.parts)}


class BareWriter:
    """The same file layout as PatchWriter (row groups of ROW_GROUP, parts of PART_ROWS, zstd,
    spec.schema()), built with plain pyarrow and zero-copy pixel columns."""

    def __init__(self, folder: Path, spec: patches.PatchSpec) -> None:
        self.folder, self.schema = folder, spec.schema()
        self.dark_type = self.schema.field("dark").type
        self.bright_type = self.schema.field("bright").type
        self.pending: list[pa.Table] = []
        self.pending_rows = self.rows = self.part_rows = self.parts = 0
        self.writer: pq.ParquetWriter | None = None

    def add(self, pair_id, scene_id, ratio, starts, dark, bright) -> None:
        n = len(starts)
        starts = np.ascontiguousarray(starts, dtype=np.int32)
        dark, bright = np.ascontiguousarray(dark), np.ascontiguousarray(bright)
        columns = [
            pa.repeat(pa.scalar(pair_id, pa.string()), n),
            pa.repeat(pa.scalar(scene_id, pa.string()), n),
            pa.repeat(pa.scalar(ratio, pa.float32()), n),
            pa.array(starts[:, 0]),
            pa.array(starts[:, 1]),
            pa.FixedSizeBinaryArray.from_buffers(self.dark_type, n, [None, pa.py_buffer(dark)]),
            pa.FixedSizeBinaryArray.from_buffers(self.bright_type, n, [None, pa.py_buffer(bright)]),
        ]
        self.pending.append(pa.Table.from_arrays(columns, schema=self.schema))
        self.pending_rows += n
        while self.pending_rows >= ROW_GROUP:
            table = pa.concat_tables(self.pending)
            self._write(table.slice(0, ROW_GROUP))
            rest = table.slice(ROW_GROUP)
            self.pending, self.pending_rows = [rest], len(rest)

    def _write(self, table: pa.Table) -> None:
        if self.writer is None:
            path = self.folder / patches.PART_NAME.format(index=self.parts)
            self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self.writer.write_table(table, row_group_size=ROW_GROUP)
        self.rows += len(table)
        self.part_rows += len(table)
        if self.part_rows >= PART_ROWS:
            self._close_part()

    def _close_part(self) -> None:
        self.writer.close()
        self.writer, self.part_rows, self.parts = None, 0, self.parts + 1

    def close(self) -> None:
        if self.pending_rows:
            self._write(pa.concat_tables(self.pending))
        self.pending, self.pending_rows = [], 0
        if self.writer is not None:
            self._close_part()


def write_bare(folder: Path, spec: patches.PatchSpec, items: list[tuple]) -> dict:
    folder.mkdir(parents=True)
    writer = BareWriter(folder, spec)
    for item in items:
        writer.add(*item)
    writer.close()
    return {"rows": writer.rows, "parts": writer.parts}


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.parquet"))


def check_same_files(a: Path, b: Path) -> None:
    """Both writers must produce the same layout and the same pixels, or the race is unfair."""
    pa_, pb = sorted(a.glob("*.parquet")), sorted(b.glob("*.parquet"))
    if [p.name for p in pa_] != [p.name for p in pb]:
        raise SystemExit(f"writers made different parts: {pa_} vs {pb}")
    for x, y in zip(pa_, pb, strict=True):
        mx, my = pq.ParquetFile(x).metadata, pq.ParquetFile(y).metadata
        rows_x = [mx.row_group(i).num_rows for i in range(mx.num_row_groups)]
        rows_y = [my.row_group(i).num_rows for i in range(my.num_row_groups)]
        if rows_x != rows_y:
            raise SystemExit(f"{x.name}: row groups differ: {rows_x} vs {rows_y}")
        if not pq.read_table(x).equals(pq.read_table(y)):
            raise SystemExit(f"{x.name}: contents differ between PatchWriter and bare pyarrow")


def bench_write(args: argparse.Namespace, scratch: Path) -> dict:
    height, width = args.image_size
    print(f"cutting {args.images} synthetic pairs of {height}x{width} into windows ...")
    items = make_windows(args.images, height, width)
    spec = patches.PatchSpec.rgb(SIZE, STRIDE, "uint8")
    count = sum(len(i[3]) for i in items)
    raw_bytes = sum(i[4].nbytes + i[5].nbytes for i in items)
    runs: dict[str, list[dict]] = {"lowlight": [], "bare": []}
    writers = {"lowlight": write_lowlight, "bare": write_bare}
    # Warm-up (imports, allocator, zstd context) and a fairness check of the two layouts.
    for name, fn in writers.items():
        fn(scratch / f"check-{name}", spec, items[:2])
    check_same_files(scratch / "check-lowlight", scratch / "check-bare")
    out_bytes = {}
    for rep in range(args.repeat):
        print(f"write run {rep + 1}/{args.repeat}")
        for name, fn in writers.items():
            folder = scratch / f"write-{name}-{rep}"
            r = benchlib.timed(fn, folder, spec, items)
            if r["rows"] != count:
                raise SystemExit(f"{name} wrote {r['rows']} rows, expected {count}")
            out_bytes[name] = folder_bytes(folder)
            shutil.rmtree(folder)
            runs[name].append(r)
    for name in writers:
        shutil.rmtree(scratch / f"check-{name}")
    best = {name: min(r, key=lambda v: v["wall"]) for name, r in runs.items()}
    for name, r in best.items():
        r.update(
            walls=[v["wall"] for v in runs[name]],
            patches_s=count / r["wall"],
            mb_s=raw_bytes / MB / r["wall"],
            out_mb=out_bytes[name] / MB,
        )
    return {"patches": count, "raw_mb": raw_bytes / MB, "pairs": args.images, **best}


# --------------------------------------------------------------------------- 2. peak RSS


def vm_hwm_kb() -> int:
    """Peak RSS of this process's own address space (``VmHWM``), in KiB.

    Not ``ru_maxrss``: on Linux that survives fork + exec, so a child started by a big parent
    reports at least the parent's RSS at the fork (measured here: 480 MiB right after imports,
    against 92 MiB of VmHWM). ``ru_maxrss`` is recorded too, for reference.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_child(pairs_path: Path, out: Path) -> None:
    """In a fresh process: the whole patch stage; prints its peak RSS as JSON."""
    from lowlight import stages
    from lowlight.config import Params

    imports_kb = vm_hwm_kb()
    start = time.perf_counter()
    summary = stages.patch(Params().patch, pairs_path, out, seed=0)
    wall = time.perf_counter() - start
    peak_kb = vm_hwm_kb()
    maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {"imports_kb": imports_kb, "peak_kb": peak_kb, "ru_maxrss_kb": maxrss_kb}
    print(json.dumps({**result, "wall": wall, **summary}))


def run_rss_child(pairs_path: Path, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--rss-child", "--pairs-path", str(pairs_path)]
    cmd += ["--out", str(out)]
    benchlib.QUIET.wait()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"patch stage child failed ({done.returncode}): {' '.join(cmd)}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_rss(args: argparse.Namespace, scratch: Path) -> dict:
    size = f"{args.size[0]}x{args.size[1]}"
    res = {}
    for label, scenes in (("1x", args.scenes), ("4x", 4 * args.scenes)):
        root = scratch / f"stage-{label}"
        print(f"{label}: synth + convert + pair of {scenes} scenes of {size} ...")
        pairs_path = benchlib.make_pairs(scenes, size, root)
        print(f"{label}: patch stage in a subprocess ...")
        res[label] = run_rss_child(pairs_path, root / "patches")
        res[label]["scenes"] = scenes
        res[label]["patch_dir"] = str(root / "patches")
        for name in ("converted",):
            shutil.rmtree(root / name)
    return res


# --------------------------------------------------------------------------- 3. loader


def ready_tensors(count: int):
    """A dataset of ``count`` ready (dark, bright) float32 3xSIZExSIZE pairs, split across
    workers: what the DataLoader's batching and worker-to-main transfer cost by themselves."""
    import torch
    from torch.utils.data import IterableDataset, get_worker_info

    class ReadyTensors(IterableDataset):
        def __len__(self) -> int:
            return count

        def __iter__(self):
            info = get_worker_info()
            worker, workers = (info.id, info.num_workers) if info else (0, 1)
            item = torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
            for _ in range(worker, count, workers):
                yield item.clone(), item.clone()

    return ReadyTensors()


def loader_rate(folder: Path | None, workers: int, count: int = 0) -> dict:
    """One epoch of PatchStream(folder) through a DataLoader, consumed by a loop that does
    nothing; with ``folder`` None, ``count`` ready tensors instead (the DataLoader's own cost)."""
    import torch
    from torch.utils.data import DataLoader

    from lowlight.dataset import PatchStream

    dataset = PatchStream(folder, seed=0) if folder is not None else ready_tensors(count)
    loader = DataLoader(dataset, batch_size=BATCH, num_workers=workers)
    benchlib.QUIET.wait()
    busy, cpu, start = benchlib.system_busy(), benchlib.cpu_seconds(), time.perf_counter()
    first, first_n, count = None, 0, 0
    for dark, bright in loader:
        count += dark.shape[0]
        if first is None:
            first, first_n = time.perf_counter(), count
        if dark.dtype != torch.float32 or dark.shape != bright.shape:
            raise SystemExit(f"unexpected batch: {dark.dtype} {tuple(dark.shape)}")
    wall = time.perf_counter() - start
    cpu = benchlib.cpu_seconds() - cpu  # includes the workers: they are reaped when the epoch ends
    others = max(0.0, benchlib.system_busy() - busy - cpu) / wall
    if count != len(dataset):
        raise SystemExit(f"an epoch yielded {count} patches, the dataset holds {len(dataset)}")
    steady = (count - first_n) / (wall - (first - start)) if count > first_n else float("nan")
    return {
        "workers": workers,
        "patches": count,
        "wall": wall,
        "first_batch": first - start,
        "patches_s": count / wall,
        "steady_s": steady,
        "cpu": cpu,
        "others": others,
    }


def train_step_rate(batch_size: int, seconds: float = 10.0) -> float | None:
    """Patches per second the training step consumes at ``batch_size`` on this machine, or None.

    ``lowlight.train.train_step`` (discriminator step, then generator step) with the default
    model and train params on the CPU, on ready random batches (no loader): one warm-up step,
    then steps until ``seconds`` have passed (at least 3). None when ``lowlight.train`` is
    missing or its API does not fit (the report then shows "pending train step").
    """
    try:
        import torch

        from lowlight import train
        from lowlight.config import Params, override

        params = Params()
        cfg = override(params.train, "train", batch_size=batch_size, device="cpu")
        trainer = train.Trainer.create(params.model, cfg, seed=0)
        gen = torch.Generator().manual_seed(0)
        shape = (batch_size, 3, SIZE, SIZE)
        dark, bright = torch.rand(shape, generator=gen), torch.rand(shape, generator=gen)
        train.train_step(trainer, dark, bright)  # warm-up: allocator, kernels
        benchlib.QUIET.wait()
        steps, start = 0, time.perf_counter()
        while steps < 3 or time.perf_counter() - start < seconds:
            train.train_step(trainer, dark, bright)
            steps += 1
        return steps * batch_size / (time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - the train module is still being written
        print(f"train step not measurable: {type(exc).__name__}: {exc}")
        return None


def train_module_state() -> str:
    """Whether ``lowlight.train`` exists and imports: "absent", "broken: ..." or "importable"."""
    if importlib.util.find_spec("lowlight.train") is None:
        return "absent"
    try:
        importlib.import_module("lowlight.train")
    except Exception as exc:  # noqa: BLE001 - any import failure means "not usable yet"
        return f"broken: {type(exc).__name__}: {exc}"
    return "importable"


def bench_loader(args: argparse.Namespace, folder: Path) -> dict:
    count = sum(g.rows for g in patches.scan(folder)[1])
    configs = [("stream", 2), ("stream", 0), ("ready", 2), ("ready", 0)]
    runs: dict[tuple, list[dict]] = {c: [] for c in configs}
    for rep in range(args.repeat):
        print(f"loader run {rep + 1}/{args.repeat}")
        for kind, workers in configs:
            source = folder if kind == "stream" else None
            runs[kind, workers].append(loader_rate(source, workers, count))
    best = {c: min(r, key=lambda v: v["wall"]) for c, r in runs.items()}
    state = train_module_state()
    rate, train_seconds = None, 2.0 if args.quick else 10.0
    if state == "importable":
        print("training step rate ...")
        rate = train_step_rate(BATCH, seconds=train_seconds)
    return {
        "runs": best,
        "train_state": state,
        "train_rate": rate,
        "train_seconds": train_seconds,
        "folder": str(folder),
    }


# --------------------------------------------------------------------------- reporting


def machine() -> dict:
    """benchlib's description plus what this benchmark depends on."""
    return {
        **benchlib.machine(),
        "usable": len(os.sched_getaffinity(0)),
        "pyarrow": pa.__version__,
        "os": f"{platform.system()} {platform.release()}",
    }


def yes_no(ok: bool) -> str:
    return "**yes**" if ok else "**no**"


def mib(kb: int) -> float:
    return kb / 1024


def command_line(args: argparse.Namespace) -> str:
    command = COMMAND + "".join(f" {a}" for a in args.argv)
    try:
        in_make = "bench/patches.py" in (ROOT / "Makefile").read_text()
    except OSError:
        in_make = False
    return f"`{command}`" + (" (`make bench` runs it too)" if in_make else "")


def render(args: argparse.Namespace, info: dict, res: dict) -> str:
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        SECTION,
        "",
        "Writing, memory and reading of the patch Parquet parts (`lowlight.patches`, "
        "`lowlight.stages.patch`, `lowlight.dataset.PatchStream`); "
        f"{SIZE}x{SIZE} RGB uint8 windows at stride {STRIDE}, row groups of {ROW_GROUP}, "
        f"parts of {PART_ROWS} rows, zstd (the `patch` defaults in params).",
        "",
        f"- Date: {when}",
        f"- Machine: {info['cpu']}, {info['cores']} cores ({info['usable']} usable), "
        f"{info['memory_gib']:.0f} GiB RAM, {info['os']}",
        f"- Python {info['python']}, pyarrow {info['pyarrow']}, torch {info['torch']} "
        f"({info['torch_threads']} intra-op threads), numpy {info['numpy']}",
        f"- Code: `{info['rev']}`",
        f"- Command: {command_line(args)}",
        f"- Timing: `time.perf_counter`, best of {args.repeat} interleaved runs per "
        "configuration; CPU/wall = user+sys CPU time of the process (and its reaped children) "
        "/ wall time; others = CPU cores other processes used meanwhile.",
        "",
    ]
    lines += render_write(res["write"])
    lines += render_rss(args, res["rss"])
    lines += render_loader(res["loader"])
    return "\n".join(lines).rstrip() + "\n"


def render_write(w: dict) -> list[str]:
    low, bare = w["lowlight"], w["bare"]
    ratio = low["wall"] / bare["wall"]
    h, wd = w["image_size"]
    lines = [
        "### 1. Write throughput: PatchWriter vs bare pyarrow",
        "",
        f"The same {w['patches']} windows ({w['raw_mb']:.0f} MB of pixels, dark + bright) cut "
        f"with `patches.cut_windows` from {w['pairs']} synthetic {h}x{wd} uint8 pairs (smooth "
        "gradients + waves; bright + N(0, 2), dark + N(0, 12) noise, like converted SID pairs "
        "at half size), held in memory and written to the local disk. Bare pyarrow: "
        "`pq.ParquetWriter(spec.schema(), compression='zstd')`, pixel columns via "
        "`pa.FixedSizeBinaryArray.from_buffers` on the numpy buffers, the same row groups and "
        "parts (checked: identical tables and row-group sizes).",
        "",
        "| writer | best wall (s) | patches/s | MB/s (pixels) | CPU/wall | others | "
        "on disk (MB) | all walls (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for label, r in (("lowlight `PatchWriter`", low), ("bare pyarrow", bare)):
        walls = ", ".join(f"{v:.2f}" for v in r["walls"])
        lines.append(
            f"| {label} | {r['wall']:.2f} | {r['patches_s']:,.0f} | {r['mb_s']:.0f} "
            f"| {r['cpu'] / r['wall']:.2f} | {r['others']:.2f} | {r['out_mb']:.0f} | {walls} |"
        )
    lines += [
        "",
        "| metric | measured | goal | met |",
        "|---|---:|---:|:---:|",
        f"| PatchWriter time / bare pyarrow time | {ratio:.2f}x | <= {GOAL_WRITE}x "
        f"| {yes_no(ratio <= GOAL_WRITE)} |",
        "",
    ]
    return lines


def render_rss(args: argparse.Namespace, r: dict) -> list[str]:
    one, four = r["1x"], r["4x"]
    ratio = four["peak_kb"] / one["peak_kb"]
    data = (four["train_patches"] + four["val_patches"]) / (
        one["train_patches"] + one["val_patches"]
    )
    h, w = args.size
    lines = [
        "### 2. Peak RSS of the patch stage: 1x vs 4x the images",
        "",
        f"`stages.patch(Params().patch, pairs, out, seed=0)` in a fresh subprocess per size, over "
        f"`stages.synth` scenes ({h}x{w}, 1 short frame each, seed 0) converted with the default "
        "convert params (JPEG) and paired; only train and val pairs are patched. Peak = the "
        "child's `VmHWM` (/proc/self/status) at the end; nothing subtracted (the import "
        "baseline is shown for reference). Not `ru_maxrss`: on Linux it carries over fork + "
        "exec, so the child would report at least the benchmark parent's RSS.",
        "",
        "| data | scenes | patched pairs (train + val) | patches | RSS after imports (MiB) "
        "| peak RSS (MiB) | stage wall (s) | patches/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, v in (("1x", one), ("4x", four)):
        pairs = v["train_pairs"] + v["val_pairs"]
        count = v["train_patches"] + v["val_patches"]
        lines.append(
            f"| {label} | {v['scenes']} | {pairs} ({v['train_pairs']} + {v['val_pairs']}) "
            f"| {count} | {mib(v['imports_kb']):.0f} | {mib(v['peak_kb']):.0f} "
            f"| {v['wall']:.2f} | {count / v['wall']:,.0f} |"
        )
    lines += [
        "",
        "| metric | measured | goal | met |",
        "|---|---:|---:|:---:|",
        f"| peak RSS 4x / 1x (patches {data:.2f}x) | {ratio:.2f}x | <= {GOAL_RSS}x "
        f"| {yes_no(ratio <= GOAL_RSS)} |",
        "",
    ]
    return lines


def render_loader(r: dict) -> list[str]:
    runs = r["runs"]
    lines = [
        "### 3. Loader throughput: PatchStream + DataLoader",
        "",
        f"One epoch of `PatchStream(train folder of the 4x run, seed=0)` (shuffle buffer 2048, "
        f"augmentation on) through `DataLoader(batch_size={BATCH}, num_workers=N)`, consumed by "
        "a loop that only counts. Rate = patches / epoch wall time (worker start-up and the "
        "shuffle buffer's fill included); steady = after the first batch. For reference, the "
        "same number of ready float32 tensor pairs (no Parquet, no decoding, no augmentation) "
        "through the same DataLoader: the cost of batching and of moving batches from the "
        "workers to the main process by themselves.",
        "",
        "| dataset | num_workers | patches | epoch wall (s) | first batch (s) | patches/s "
        "| steady patches/s | CPU/wall | others |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = {"stream": "`PatchStream`", "ready": "ready tensors (reference)"}
    for (kind, workers), v in runs.items():
        lines.append(
            f"| {names[kind]} | {workers} | {v['patches']} | {v['wall']:.2f} "
            f"| {v['first_batch']:.2f} | {v['patches_s']:,.0f} | {v['steady_s']:,.0f} "
            f"| {v['cpu'] / v['wall']:.2f} | {v['others']:.2f} |"
        )
    loader = runs["stream", 2]["patches_s"]
    if r["train_rate"]:
        ratio = loader / r["train_rate"]
        train = f"{r['train_rate']:,.1f} patches/s"
        verdict = f"{ratio:,.0f}x | >= 5x (training never waits) | {yes_no(ratio >= 5.0)}"
    else:
        train = "pending train step"
        verdict = "pending train step | >= 5x (training never waits) | pending"
        if r["train_state"] != "absent":
            train += f" (`lowlight.train` {r['train_state'].split(':', 1)[0]})"
    lines += [
        "",
        "| metric | measured | goal | met |",
        "|---|---:|---:|:---:|",
        f"| loader, 2 workers | {loader:,.0f} patches/s | | |",
        f"| loader, 0 workers | {runs['stream', 0]['patches_s']:,.0f} patches/s | | |",
        f"| training step consumption, batch {BATCH} | {train} | | |",
        f"| loader (2 workers) / training step | {verdict} |",
        "",
    ]
    if r["train_rate"]:
        lines += [
            "Training step: `lowlight.train.train_step` (discriminator step, then generator "
            f"step) with the default model and train params on the CPU, batch {BATCH} of "
            f"random {SIZE}x{SIZE} patches already in memory, steady rate over at least "
            f"{r['train_seconds']:.0f} s (and 3 steps) after one warm-up step; the loader was "
            "not running meanwhile. In "
            "training both share the same cores.",
            "",
        ]
    return lines


# --------------------------------------------------------------------------- main


def parse_size(text: str) -> tuple[int, int]:
    height, width = (int(v) for v in text.lower().split("x"))
    return height, width


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=8, help="pairs for the write benchmark")
    parser.add_argument(
        "--image-size", default="1416x2120", help="HxW of the write benchmark's images"
    )
    parser.add_argument("--scenes", type=int, default=8, help="scenes at 1x for RSS (>= 3)")
    parser.add_argument("--size", default="1024x1536", help="HxW of the synth frames for RSS")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration; best")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run (small images, 3 scenes, 1 repeat); prints, does not write BENCHMARKS.md",
    )
    parser.add_argument("--output", type=Path, default=BENCHMARKS, help="file to update")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--keep", action="store_true", help="keep the scratch data")
    parser.add_argument(
        "--max-wait",
        type=float,
        default=60.0,
        help="seconds in all to wait for other processes to go idle before timed runs",
    )
    # Internal: the patch stage in a fresh process, for its peak RSS.
    parser.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pairs-path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = argv
    if args.quick:
        args.images, args.image_size, args.scenes, args.size = 2, "356x530", 3, "256x384"
        args.repeat, args.max_wait, args.no_write = 1, 0.0, True
    args.image_size, args.size = parse_size(args.image_size), parse_size(args.size)
    if args.repeat < 1 or args.images < 1 or args.scenes < 3:
        parser.error("--repeat and --images must be >= 1, --scenes >= 3")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.rss_child:
        rss_child(args.pairs_path, args.out)
        return 0
    benchlib.QUIET.budget = args.max_wait
    started = time.perf_counter()
    info = machine()
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    res: dict = {}
    try:
        res["write"] = bench_write(args, WORK)
        res["write"]["image_size"] = args.image_size
        res["rss"] = bench_rss(args, WORK)
        res["loader"] = bench_loader(args, Path(res["rss"]["4x"]["patch_dir"]) / "train")
    finally:
        if args.keep:
            print(f"kept scratch data in {WORK}")
        else:
            shutil.rmtree(WORK, ignore_errors=True)
    text = render(args, info, res)
    print()
    print(text)
    print(
        f"(benchmark took {time.perf_counter() - started:.0f} s, "
        f"waited {benchlib.QUIET.waited:.0f} s for other processes)"
    )
    if not args.no_write:
        benchlib.replace_section(SECTION, text, args.output)
        print(f"updated the {SECTION} section of {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
