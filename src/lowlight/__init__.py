"""lowlight: learning to see in the dark, as a reproducible pipeline."""

import os
import sys
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lowlight")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

# numpy picks the code of its float functions (exp, log, power, sin ...) by the CPU when it is
# imported, and its AVX2 and AVX-512 versions differ from its baseline ones in the last bit:
# enough to move a rounded pixel, so synth wrote other DNGs and PNGs on an AVX-512 CPU than on
# one without (tests/test_cpu_independence.py). Every lowlight process (the CLI, DVC's and
# Kubeflow's stages) imports lowlight before numpy and keeps to numpy's baseline code, which
# every x86-64 CPU that numpy runs on runs alike; a value the user set is kept.
CPU_INDEPENDENT_NUMPY = "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"
if "numpy" not in sys.modules:
    os.environ.setdefault("NPY_DISABLE_CPU_FEATURES", CPU_INDEPENDENT_NUMPY)
