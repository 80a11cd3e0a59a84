from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

from lowlight.cluster import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train_job(
    patches: Input[Dataset],
    model_params: dict,
    train_params: dict,
    mlflow_params: dict,
    seed: int,
    nodes: int,
    gpus_per_node: int,
    output: str,
    image: str,
    cluster_names: dict,
    model: Output[Model],
    metrics: Output[Metrics],
    curves: Output[HTML],
):
    """Train as a PyTorchJob (nodes x GPUs, torchrun in every pod), wait, take its outputs."""
    import uuid
    from pathlib import Path

    from lowlight import pytorchjob, report, stages
    from lowlight.config import MlflowConfig, ModelConfig, TrainConfig

    name = f"lowlight-train-{uuid.uuid4().hex[:8]}"
    spec = {
        "name": name,
        "namespace": pytorchjob.current_namespace(),
        "image": image,
        "nodes": int(nodes),
        "gpus_per_node": int(gpus_per_node),
        "patches": pytorchjob.s3_uri(patches.uri),
        "output": f"{output.rstrip('/')}/{name}",
        **cluster_names,
    }
    reports = Path(model.path).parent / "reports"
    summary = stages.train_job.run(
        ModelConfig.model_validate(model_params),
        TrainConfig.model_validate(train_params),
        MlflowConfig.model_validate(mlflow_params),
        int(seed),
        spec,
        model.path,
        reports,
    )
    model.metadata.update(summary)
    metrics.log_metric("best_val_psnr", summary["best_val_psnr"])
    pictures = [("training curves", reports / "train_curves.png")]
    pictures += [(p.stem, p) for p in sorted((reports / "samples").glob("*.png"))]
    Path(curves.path).write_text(report.html_gallery("Training", pictures, str(summary)))
