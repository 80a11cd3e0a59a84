from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

from lowlight.cluster import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train(
    patches: Input[Dataset],
    model_params: dict,
    train_params: dict,
    mlflow_params: dict,
    seed: int,
    model: Output[Model],
    metrics: Output[Metrics],
    curves: Output[HTML],
):
    """Train the GAN (MLflow run); the model folder, its validation metrics and curves."""
    import tempfile
    from pathlib import Path

    from lowlight import report, stages
    from lowlight.config import MlflowConfig, ModelConfig, TrainConfig

    work = Path(tempfile.mkdtemp(prefix="lowlight-train-"))
    summary = stages.train.run(
        ModelConfig.model_validate(model_params),
        TrainConfig.model_validate(train_params),
        MlflowConfig.model_validate(mlflow_params),
        patches.path,
        model.path,
        work / "reports",
        int(seed),
        work_dir=work / "checkpoints",
    )
    model.metadata.update(summary)
    metrics.log_metric("best_val_psnr", summary["best_val_psnr"])
    metrics.log_metric("last_val_ssim", summary["last_val_ssim"])
    pictures = [("training curves", work / "reports/train_curves.png")]
    pictures += [(p.stem, p) for p in sorted((work / "reports/samples").glob("*.png"))]
    Path(curves.path).write_text(report.html_gallery("Training", pictures, str(summary)))
