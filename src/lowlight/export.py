"""Export the generator to ONNX with dynamic height and width, and an int8 variant that runs
faster on a CPU.

The exported graph is the U-Net's ``body``: padding to a multiple of ``2**depth`` happens
outside it (``tiling.pad_to_multiple``), because padding inside ``forward`` makes both torch
exporters fail. The multiple is stored in the model's metadata for the runtime side.

int8 is static quantisation: weights per output channel (int8), activations (uint8) with
ranges calibrated on real dark patches of the patch stage, as onnxruntime's QLinearConv /
QLinearLeakyRelu / QLinearConcat operators (the QOperator format, faster here than QDQ).
The full-resolution layers (the first encoder level, the last decoder level, the head and the
residual skip) stay float32: they carry linear camera values whose dark end 8 bits cannot hold
(quantising them too cost 4.5 dB on the test images; keeping them float, under 0.1 dB). Dynamic
quantisation, what ``--int8`` did before, quantises each input at run time and was 5.5x slower
than float32. BENCHMARKS.md, "inference", has the figures.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from lowlight import __version__, storage
from lowlight.card import ModelCard, load_generator
from lowlight.errors import DatasetError, OutputError

CALIBRATION_PATCHES = 64  # dark patches whose activation ranges set the int8 scales


class _Body(torch.nn.Module):
    def __init__(self, generator: torch.nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.generator.body(image)


def calibration_inputs(
    folder: storage.Location, card: ModelCard, count: int = CALIBRATION_PATCHES
) -> list[np.ndarray]:
    """``count`` dark patches spread evenly over a patch folder, as 1xCxHxW float32 inputs.

    The patches must be the model's input (``model.input``): their ranges are what it sees."""
    from lowlight.dataset import PatchTable

    table = PatchTable(folder)
    if table.spec.input != card.input:
        raise DatasetError(f"{folder}: {table.spec.input} patches, but the model takes "
                           f"{card.input} input; calibrate on patches cut for it")  # fmt: skip
    if len(table) == 0:
        raise DatasetError(f"{folder}: no patches to calibrate the int8 model on")
    picks = np.unique(np.linspace(0, len(table) - 1, min(count, len(table))).round().astype(int))
    inputs = [table[int(i)][0].numpy()[None] for i in picks]
    multiple = card.multiple  # the exported body takes sizes of its multiple only
    return [x[..., : x.shape[2] // multiple * multiple, : x.shape[3] // multiple * multiple]
            for x in inputs if min(x.shape[2:]) >= multiple]  # fmt: skip


def full_resolution_nodes(model, depth: int) -> list[str]:
    """The exported U-Net's nodes that run at the input's (or the output's) resolution: the
    first encoder level, the last decoder level with the concatenation feeding it, the head,
    the residual skip and everything between them and the output."""
    prefixes = ("generator.encoders.0.", f"generator.decoders.{depth - 1}.", "generator.head.",
                "generator.skip_weight")  # fmt: skip
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    convs = [n for n in model.graph.node if n.op_type == "Conv" and n.input[1].startswith(prefixes)]
    full = {n.name: n for n in convs}
    for node in list(full.values()):  # their activations, and what feeds the decoder's conv
        for after in consumers.get(node.output[0], []):
            if after.op_type == "LeakyRelu":
                full[after.name] = after
    for node in model.graph.node:
        if node.op_type == "Concat" and any(c.name in full for c in consumers[node.output[0]]):
            full[node.name] = node
    producers = {o: n for n in model.graph.node for o in n.output}
    for node in convs:  # the bilinear skip's edge padding of the input
        before = producers.get(node.input[0])
        if node.input[1].startswith(prefixes[3]) and before is not None and before.op_type == "Pad":
            full[before.name] = before
    outputs = {o.name for o in model.graph.output}
    tail = [n for n in convs if n.input[1].startswith(prefixes[2:])]
    while tail:  # from the head and the skip to the graph's output
        node = tail.pop()
        full[node.name] = node
        if not outputs.intersection(node.output):
            tail += [c for o in node.output for c in consumers.get(o, []) if c.name not in full]
    return sorted(full)


def quantize_int8(float_model: Path, out: Path, inputs: list[np.ndarray], depth: int) -> None:
    """Static int8 quantisation of ``float_model`` into ``out``, calibrated on ``inputs``, its
    full-resolution layers left in float32."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(inputs)

        def get_next(self) -> dict | None:
            item = next(self.items, None)
            return None if item is None else {"image": item}

    prepared = out.with_suffix(".pre.onnx")
    # onnxruntime's quantiser warns on the root logger for every integer tensor it leaves alone
    logging.disable(logging.WARNING)
    try:  # constant folding and shapes first, as onnxruntime advises before quantising
        quant_pre_process(str(float_model), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(out), Reader(), quant_format=QuantFormat.QOperator,
            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=full_resolution_nodes(onnx.load(str(prepared)), depth),
        )  # fmt: skip
    finally:
        logging.disable(logging.NOTSET)
        prepared.unlink(missing_ok=True)


def export_onnx(
    models_dir: Path,
    out: Path,
    int8: bool = False,
    calibration: storage.Location | None = None,
) -> dict:
    """Write ``out`` (float32) or, with ``int8``, its static int8 version calibrated on the
    patch folder ``calibration``."""
    import json

    import onnx
    import onnxruntime as ort
    from torch.export import Dim

    out = Path(out)
    if out.is_dir():
        raise OutputError(f"{out}: is a directory; name the .onnx file to write")
    generator, card = load_generator(models_dir)
    inputs = []
    if int8:  # read before anything is written: a bad folder fails first
        if calibration is None:
            raise DatasetError("--int8 needs patches to calibrate on (--calibration, e.g. "
                               "data/patches/train)")  # fmt: skip
        inputs = calibration_inputs(calibration, card)
    multiple = generator.multiple
    example = torch.rand(1, generator.config["in_channels"], 4 * multiple, 6 * multiple)
    shapes = ({0: Dim("batch"), 2: multiple * Dim("h"), 3: multiple * Dim("w")},)
    # read-only, full, not permitted: one line, and the temp file goes (atomic_path)
    with storage.output_errors(out), storage.atomic_path(out) as tmp:
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
                "lowlight.card": json.dumps(card.to_dict()),
                "precision": "int8" if int8 else "float32"}  # fmt: skip
        onnx.helper.set_model_props(model, meta)
        onnx.save(model, str(tmp))
        if int8:
            quantised = tmp.with_suffix(".int8.onnx")
            try:
                quantize_int8(tmp, quantised, inputs, generator.depth)
                quantised.replace(tmp)
            finally:
                quantised.unlink(missing_ok=True)
    # A quick self-check that the file loads and runs.
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    channels = generator.config["in_channels"]
    probe = np.random.default_rng(0).random((1, channels, multiple, 2 * multiple), np.float32)
    session.run(None, {"image": probe})
    return {"out": str(out), "bytes": out.stat().st_size, "int8": int8, "multiple": multiple,
            **({"calibration patches": len(inputs)} if int8 else {})}  # fmt: skip
