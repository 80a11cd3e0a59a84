from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Model, Output

from lowlight.cluster import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def register(
    model: Input[Model],
    reports: Input[Dataset],
    register_params: dict,
    infer_params: dict,
    convert_params: dict,
    mlflow_params: dict,
    registration: Output[Markdown],
) -> str:
    """Register the model in MLflow with lineage, challenger then champion; its model URI.
    ``convert_params`` (how RAW files are decoded) travel with the model."""
    import tempfile
    from pathlib import Path

    from lowlight import stages
    from lowlight.config import ConvertConfig, InferConfig, MlflowConfig, RegisterConfig

    out = Path(tempfile.mkdtemp(prefix="lowlight-register-")) / "registration.json"
    result = stages.register.run(
        RegisterConfig.model_validate(register_params),
        InferConfig.model_validate(infer_params),
        MlflowConfig.model_validate(mlflow_params),
        model.path,
        reports.path,
        out,
        convert=ConvertConfig.model_validate(convert_params),
    )
    rows = "\n".join(f"| {k} | {v} |" for k, v in result.items())
    Path(registration.path).write_text(f"# Registered\n\n| | |\n|---|---|\n{rows}\n")
    return result["model_uri"]
