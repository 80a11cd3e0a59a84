from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Model, Output

from lowlight.cluster import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate(
    model: Input[Model],
    pairs: Input[Dataset],
    converted: Input[Dataset],
    evaluate_params: dict,
    infer_params: dict,
    register_params: dict,
    mlflow_params: dict,
    reports: Output[Dataset],
    metrics: Output[Metrics],
    report: Output[Markdown],
    grids: Output[HTML],
) -> bool:
    """Score model and baselines on the test split; True when the model passes the gate."""
    import json
    from pathlib import Path

    from lowlight import report as pages
    from lowlight import stages
    from lowlight.config import EvaluateConfig, InferConfig, MlflowConfig, RegisterConfig

    mlflow_cfg = MlflowConfig.model_validate(mlflow_params)
    out = Path(reports.path)
    summary = stages.evaluate.run(
        EvaluateConfig.model_validate(evaluate_params),
        InferConfig.model_validate(infer_params),
        mlflow_cfg,
        model.path,
        pairs.path,
        converted.path,
        out,
    )
    for method, buckets in json.loads((out / "metrics.json").read_text()).items():
        for bucket, values in buckets.items():
            metrics.log_metric(f"{method}_{bucket}_psnr", values["psnr"])
            metrics.log_metric(f"{method}_{bucket}_ssim", values["ssim"])
    gate = stages.register.gate(RegisterConfig.model_validate(register_params), mlflow_cfg, out)
    text = pages.tables_only((out / "report.md").read_text())
    Path(report.path).write_text(f"{text}\n**Gate:** {gate['reason']}\n")
    pictures = [(p.stem, p) for p in sorted((out / "grids").glob("*.png"))]
    note = "dark input | baselines | model | ground truth; second row: the centre zoomed"
    Path(grids.path).write_text(pages.html_gallery("Test images", pictures, note))
    reports.metadata.update({**summary, "gate": gate["reason"]})
    return gate["passed"]
