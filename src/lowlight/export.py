"""Export the generator to ONNX with dynamic height and width (and an int8 variant for devices).

The exported graph is the U-Net's ``body``: padding to a multiple of ``2**depth`` happens
outside it (``tiling.pad_to_multiple``), because padding inside ``forward`` makes both torch
exporters fail. The multiple is stored in the model's metadata for the runtime side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lowlight import __version__, storage
from lowlight.card import load_generator


class _Body(torch.nn.Module):
    def __init__(self, generator: torch.nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.generator.body(image)


def export_onnx(models_dir: Path, out: Path, int8: bool = False) -> dict:
    """Write ``out`` (float32) and, with ``int8``, ``out`` quantised in place of it."""
    import json

    import onnx
    import onnxruntime as ort
    from torch.export import Dim

    out = Path(out)
    generator, card = load_generator(models_dir)
    multiple = generator.multiple
    example = torch.rand(1, generator.config["in_channels"], 4 * multiple, 6 * multiple)
    shapes = ({0: Dim("batch"), 2: multiple * Dim("h"), 3: multiple * Dim("w")},)
    with storage.atomic_path(out) as tmp:
        program = torch.onnx.export(
            _Body(generator).eval(),
            (example,),
            dynamo=True,
            dynamic_shapes=shapes,
            input_names=["image"],
            output_names=["enhanced"],
        )
        program.save(str(tmp))
        model = onnx.load(str(tmp))
        meta = {"multiple": str(multiple), "lowlight_version": __version__,
                "lowlight.card": json.dumps(card.to_dict())}  # fmt: skip
        onnx.helper.set_model_props(model, meta)
        onnx.save(model, str(tmp))
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantised = tmp.with_suffix(".int8.onnx")
            quantize_dynamic(str(tmp), str(quantised), weight_type=QuantType.QInt8)
            quantised.replace(tmp)
    # A quick self-check that the file loads and runs.
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    channels = generator.config["in_channels"]
    probe = np.random.default_rng(0).random((1, channels, multiple, 2 * multiple), np.float32)
    session.run(None, {"image": probe})
    return {"out": str(out), "bytes": out.stat().st_size, "int8": int8, "multiple": multiple}
