"""The same bytes on every x86-64 CPU (issue 25): synth, convert, pair and patch write the same
files as lowlight runs them on this machine and with every library held to its plainest code,
as on an older or another vendor's CPU. Each library that picks its code by the CPU at run time
is told to: numpy (NPY_DISABLE_CPU_FEATURES; lowlight itself keeps numpy to its baseline code,
lowlight/__init__.py, without which synth's DNGs differ on an AVX-512 CPU), OpenCV
(OPENCV_CPU_DISABLE: demosaicing, resizing, colour conversions), libjpeg-turbo inside OpenCV
(JSIMD_FORCENONE: the JPEG encoder), Arrow (ARROW_USER_SIMD_LEVEL: Parquet's encodings),
LibRaw's OpenMP (one thread) and glibc (its libm's FMA and AVX2 variants off). libdeflate, which
writes every PNG, has no such switch: its compressor's only x86 SIMD code fills and rebases its
hash tables with constants (lib/x86/matchfinder_impl.h), the same values as its C code."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RUN = """
import hashlib, json, sys
from pathlib import Path
from lowlight import stages
from lowlight.config import Params, override

root, p = Path(sys.argv[1]), Params()
tiny = dict(scenes=4, size="32x48", frames=1)
for output, fmt in (("dng", "png16"), ("jpeg", "jpeg")):
    data = root / output
    stages.synth.run(override(p.synth, "synth", output=output, **tiny), data / "raw", seed=0)
    convert = override(p.convert, "convert", format=fmt, workers=1)
    stages.convert.run(convert, data / "raw" / "Sony", data / "conv")
    stages.pair.run(p.pair, data / "conv", data / "pairs.parquet")
    stages.patch.run(override(p.patch, "patch", size=16, stride=16), data / "pairs.parquet",
                     data / "patches", seed=0, mode="rgb")
print(json.dumps({str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
                  for f in sorted(root.rglob("*")) if f.is_file()}))
"""


def plainest_code() -> dict[str, str]:
    """Environment variables that make every library that dispatches by CPU use its baseline."""
    from numpy._core import _multiarray_umath as umath

    return {  # every target numpy was built to dispatch to (absent ones are ignored)
        "NPY_DISABLE_CPU_FEATURES": " ".join(umath.__cpu_dispatch__),
        "OPENCV_CPU_DISABLE": "AVX512_SKX,AVX512_CLX,AVX512_CNL,AVX512_ICL,AVX2,FP16,FMA3,AVX,"
        "SSE4_2,SSE4_1,POPCNT,SSSE3",
        "JSIMD_FORCENONE": "1",
        "ARROW_USER_SIMD_LEVEL": "NONE",
        "OMP_NUM_THREADS": "1",
        "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F,-AVX2,-FMA,-AVX",
    }


def hashes(folder: Path, extra: dict[str, str]) -> dict[str, str]:
    """Every output's sha256, written into ``folder`` (the same path both times: manifests
    name their folders) and then removed."""
    env = {**os.environ, **extra}
    result = subprocess.run([sys.executable, "-c", RUN, str(folder)], env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    shutil.rmtree(folder)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_stage_outputs_are_the_same_bytes_with_the_cpus_fast_code_or_without(tmp_path):
    fast = hashes(tmp_path / "run", {})
    plain = hashes(tmp_path / "run", plainest_code())
    assert len(fast) > 40 and any(k.endswith(".jpg") for k in fast)
    assert any(k.endswith(".png") for k in fast) and any(k.endswith(".parquet") for k in fast)
    differ = sorted(k for k in fast if fast[k] != plain.get(k))
    assert fast.keys() == plain.keys() and not differ, differ[:10]
    assert hashlib.sha256(b"").hexdigest() not in fast.values()
