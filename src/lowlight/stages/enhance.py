"""enhance: a photographer's RAW and JPEG/PNG files through the trained model."""

from __future__ import annotations

from pathlib import Path

from lowlight import inference
from lowlight.config import ConvertConfig, InferConfig, MlflowConfig, check_gain
from lowlight.errors import DatasetError


def run(
    convert_cfg: ConvertConfig,
    infer: InferConfig,
    mlflow_cfg: MlflowConfig,
    model_location: str | None,
    inputs: list[str],
    out: Path,
    ratio: float | str = "auto",
    model_name: str = "lowlight",
) -> dict:
    """Enhance files, folders and globs: RAWs (amplified by ``ratio``) and images.

    Writes ``<stem>_enhanced.png``, 16-bit for RAW and 16-bit inputs; a bad file is reported
    and the others go on. No ``model_location``: the registry's champion of ``model_name`` when
    there is one, else the model shipped with lowlight.
    """
    from lowlight import tracking

    check_gain(ratio, convert_cfg.max_ratio, "--ratio")
    files = inference.expand_inputs(inputs)
    if not files:
        raise DatasetError(f"no input files in {' '.join(inputs)}")
    with tracking.using(tracking.tracking_uri(mlflow_cfg)):
        model, card, used = inference.load_default(model_location, model_name, infer.device,
                                                      infer.precision)  # fmt: skip
    done, failed = inference.enhance_files(files, model, card, Path(out), ratio, convert_cfg, infer)
    return {"model": used, "files": len(files), "enhanced": len(done), "failed": len(failed),
            "failed_files": failed, "out": str(out)}  # fmt: skip
