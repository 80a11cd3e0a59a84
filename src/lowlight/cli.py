"""The ``lowlight`` command: one sub-command per stage, in pipeline order.

Thin edge: parse flags, merge them over params.yaml, call a ``lowlight.stages`` module, print a
summary.
Expected failures (``LowlightError``) become one red line and exit code 1.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from lowlight import __version__, stages
from lowlight.config import load_params, override
from lowlight.errors import ConfigError, LowlightError, scrub
from lowlight.redact import guard_output

app = typer.Typer(
    help="Learning to see in the dark: RAW low-light photos -> clean images, as a pipeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Wide enough for registry tables and paths when output is a file or pipe (DVC, CI logs).
console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
out = Console(width=None if sys.stdout.isatty() else 160)

ParamsOpt = Annotated[
    Path, typer.Option("--params", help="params.yaml to read (built-in defaults if absent)")
]


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Expected failures: one red line, exit code 1, no traceback."""
    try:
        yield
    except LowlightError as exc:
        console.print(f"[bold red]error:[/] {scrub(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def show(title: str, summary: dict) -> None:
    """The summary as a table; lists (e.g. failed files) as lines below it, never cut."""
    table = Table(title=title, show_header=False, title_justify="left")
    lists = {
        k: v for k, v in summary.items() if isinstance(v, list) and v and isinstance(v[0], str)
    }
    for key, value in summary.items():
        if key not in lists:
            table.add_row(key, str(value))
    out.print(table)
    for key, values in lists.items():
        for value in values[:20]:
            out.print(f"{key}: {value}", highlight=False, soft_wrap=True)
        if len(values) > 20:
            out.print(f"{key}: ... {len(values)} in all", highlight=False)


def version_callback(value: bool) -> None:
    if value:
        out.print(f"lowlight {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True)
    ] = False,
) -> None:
    guard_output()  # MLflow prints its tracking URI, password included: never let it through
    root = logging.getLogger()
    for handler in list(root.handlers):  # left by an earlier in-process run (tests, notebooks)
        if getattr(getattr(handler, "stream", None), "closed", False):
            root.removeHandler(handler)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_time=False, show_path=False)],
    )


@app.command()
def synth(
    out_dir: Annotated[Path, typer.Argument(metavar="OUT", help="dataset root to write")],
    scenes: Annotated[int | None, typer.Option(help="scenes in all (>= 3)")] = None,
    size: Annotated[str | None, typer.Option(help="frame size HxW, e.g. 256x384")] = None,
    frames: Annotated[int | None, typer.Option(help="short frames per scene")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    photos: Annotated[str | None, typer.Option(help="folder of your own photos")] = None,
    output: Annotated[
        str | None, typer.Option(help="dng (raw frames) | jpeg (dark JPEGs as cameras make them)")
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(help="the camera: SonyA7S2 (SID's Sony/) | FujiXT2 (SID's Fuji/, X-Trans)"),
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Write a small synthetic SID-like dataset (DNG, or JPEG with --output jpeg, + list files)."""
    with user_errors():
        p = load_params(params)
        cfg = override(p.synth, "synth", scenes=scenes, size=size, frames=frames, photos=photos,
                       output=output, profile=profile)  # fmt: skip
        show("synth", stages.synth.run(cfg, out_dir, seed if seed is not None else p.seed))


def parse_ratio(text: str | None) -> float | str | None:
    """--ratio as given: a number or "auto" (the stages check its range)."""
    if text is None or text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--ratio must be a number or 'auto', got {text!r}") from None


@app.command()
def convert(
    in_dir: Annotated[str, typer.Argument(metavar="IN", help="RAW folder or s3:// URI")],
    out_dir: Annotated[
        str | None, typer.Argument(metavar="OUT", help="converted folder or URI")
    ] = None,
    format: Annotated[str | None, typer.Option(help="jpeg | png16")] = None,
    quality: Annotated[int | None, typer.Option(help="JPEG quality")] = None,
    half_size: Annotated[bool | None, typer.Option("--half-size/--full-size")] = None,
    amplify: Annotated[
        bool | None, typer.Option("--amplify/--no-amplify", help="ratio-amplify short frames")
    ] = None,
    ratio: Annotated[
        str | None, typer.Option(help="gain for non-SID names: a number or 'auto'")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="worker processes")] = None,
    shard: Annotated[
        str | None, typer.Option(help="convert only shard i of n (0-based i/n)")
    ] = None,
    merge: Annotated[
        bool, typer.Option("--merge", help="combine shard manifests in IN (then OUT is omitted)")
    ] = False,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Convert RAW files to sRGB JPEG / 16-bit PNG, amplifying short exposures by their ratio."""
    from lowlight.conversion import parse_shard

    with user_errors():
        if merge:
            show("convert --merge", stages.convert.merge(out_dir or in_dir))
            return
        if out_dir is None:
            raise ConfigError("convert needs IN and OUT folders")
        p = load_params(params)
        cfg = override(
            p.convert,
            "convert",
            format=format,
            quality=quality,
            half_size=half_size,
            amplify=amplify,
            ratio=parse_ratio(ratio),
            workers=workers,
        )
        summary = stages.convert.run(
            cfg, in_dir, out_dir, parse_shard(shard) if shard else None, p.model.input
        )
        show("convert", summary)


@app.command()
def pair(
    converted: Annotated[str, typer.Argument(metavar="CONVERTED", help="converted folder or URI")],
    pairs_path: Annotated[str, typer.Argument(metavar="PAIRS.parquet", help="pairs file or URI")],
    select: Annotated[str | None, typer.Option(help="darkest | all")] = None,
    lists: Annotated[
        str | None, typer.Option(help="folder of SID list files (default: beside the RAWs)")
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Pair each short exposure with its scene's long exposure."""
    with user_errors():
        cfg = override(load_params(params).pair, "pair", select=select)
        show("pair", stages.pair.run(cfg, converted, pairs_path, lists))


@app.command()
def patch(
    pairs_path: Annotated[str, typer.Argument(metavar="PAIRS.parquet", help="pairs file or URI")],
    out_dir: Annotated[str, typer.Argument(metavar="OUT", help="patch folder or s3:// URI")],
    images: Annotated[
        str | None, typer.Option(help="converted folder (default: the one the pairs file names)")
    ] = None,
    size: Annotated[int | None, typer.Option(help="patch side in pixels")] = None,
    stride: Annotated[int | None, typer.Option(help="step between windows")] = None,
    format: Annotated[str | None, typer.Option(help="uint8 | uint16")] = None,
    max_per_image: Annotated[int | None, typer.Option(help="random subset per pair")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Cut train/val pairs into overlapping patches, streamed into Parquet parts."""
    with user_errors():
        p = load_params(params)
        cfg = override(
            p.patch, "patch", size=size, stride=stride, format=format, max_per_image=max_per_image
        )
        seed = seed if seed is not None else p.seed
        show("patch", stages.patch.run(cfg, pairs_path, out_dir, seed, images, p.model.input))


@app.command()
def train(
    patches_dir: Annotated[str, typer.Argument(metavar="PATCHES", help="patch folder or URI")],
    models_dir: Annotated[Path, typer.Argument(metavar="MODELS", help="where models go")],
    reports: Annotated[Path, typer.Option(help="history CSV, curves and sample grids")] = Path(
        "reports"
    ),
    epochs: Annotated[int | None, typer.Option(help="epochs in all")] = None,
    batch_size: Annotated[int | None, typer.Option(help="patches per step")] = None,
    lr: Annotated[float | None, typer.Option(help="learning rate")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the last checkpoint")] = False,
    checkpoints: Annotated[
        Path | None,
        typer.Option(help="checkpoint folder [default: checkpoints/<MODELS folder name>]"),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    init: Annotated[
        str | None, typer.Option(help="start from: none | shipped | a models folder (fine-tune)")
    ] = None,
    lambda_adv: Annotated[
        float | None, typer.Option(help="adversarial loss weight (0 = L1 only)")
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Train the U-Net generator against the CNN discriminator (checkpoints, MLflow run)."""
    with user_errors():
        p = load_params(params)
        cfg = override(p.train, "train", epochs=epochs, batch_size=batch_size, lr=lr,
                       device=device, init=init, lambda_adv=lambda_adv)  # fmt: skip
        seed = seed if seed is not None else p.seed
        summary = stages.train.run(
            p.model, cfg, p.mlflow, patches_dir, models_dir, reports, seed, resume, checkpoints
        )
        if "rank" not in summary:  # under torchrun, rank 0 reports for the group
            show("train", summary)


@app.command()
def evaluate(
    models_dir: Annotated[Path, typer.Argument(metavar="MODELS", help="trained models folder")],
    pairs_path: Annotated[str, typer.Argument(metavar="PAIRS", help="pairs file")],
    converted: Annotated[
        str | None, typer.Argument(metavar="CONVERTED", help="default: from the pairs file")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="report folder")] = Path("reports"),
    crop: Annotated[str | None, typer.Option(help="score only the central HxW")] = None,
    split: Annotated[
        str | None, typer.Option(help="test, or val to choose between models (test unseen)")
    ] = None,
    baselines: Annotated[
        str | None, typer.Option(help="comma-separated baselines, e.g. amplify; none for none")
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Score the model against amplify and amplify+BM3D on the test split; write a report."""
    with user_errors():
        p = load_params(params)
        names = None if baselines is None else [b for b in baselines.split(",") if b != "none"]
        cfg = override(p.evaluate, "evaluate", crop=crop, split=split, baselines=names)
        summary = stages.evaluate.run(
            cfg, p.infer, p.mlflow, models_dir, pairs_path, converted, out_dir
        )
        show("evaluate", summary)


@app.command()
def enhance(
    inputs: Annotated[list[str], typer.Argument(help="RAW / JPEG / PNG files, folders or globs")],
    out_dir: Annotated[Path, typer.Option("--out", help="where *_enhanced.png go")] = Path(
        "enhanced"
    ),
    model: Annotated[
        str | None,
        typer.Option(
            help="models:/NAME@ALIAS, a models folder or an .onnx file [default: for RAW files "
            "the registry's models:/<register.model_name>@champion, for X-Trans RAW files its "
            "<register.xtrans_model_name>'s, for JPEG/PNG its <register.srgb_model_name>'s, "
            "else the model lowlight ships for them]"
        ),
    ] = None,
    ratio: Annotated[
        str, typer.Option(help="RAW amplification: a number, or 'auto' (target brightness)")
    ] = "auto",
    tile: Annotated[int | None, typer.Option(help="largest tile side")] = None,
    overlap: Annotated[int | None, typer.Option(help="input shared by neighbouring tiles")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda")] = None,
    precision: Annotated[str | None, typer.Option(help="float32 | bfloat16")] = None,
    fallback: Annotated[
        str | None,
        typer.Option(
            help="'shipped': use the model shipped with lowlight when the registry you asked "
            "for cannot be reached [default: stop with an error]"
        ),
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Brighten and denoise your own dark photos with a trained model."""
    with user_errors():
        if fallback not in (None, "shipped"):
            raise ConfigError(f"--fallback can only be 'shipped', got {fallback!r}")
        p = load_params(params)
        infer = override(p.infer, "infer", tile=tile, overlap=overlap, device=device,
                         precision=precision)  # fmt: skip
        gain = parse_ratio(ratio)
        summary = stages.enhance.run(p.convert, infer, p.mlflow, model, inputs, out_dir, gain,
                                     p.register_.by_input(), fallback == "shipped")  # fmt: skip
        show("enhance", summary)


@app.command()
def register(
    models_dir: Annotated[Path, typer.Argument(metavar="MODELS", help="trained models folder")],
    reports: Annotated[Path, typer.Argument(metavar="REPORTS", help="folder with metrics.json")],
    name: Annotated[str | None, typer.Option(help="registered model name")] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Register the model in MLflow with lineage; champion if it passes the gate."""
    with user_errors():
        p = load_params(params)
        cfg = override(p.register_, "register", model_name=name)
        result = stages.register.run(cfg, p.infer, p.mlflow, models_dir, reports, convert=p.convert)
        show("register", result)
        from lowlight.pyfunc import usage

        alias = "champion" if result["gate_passed"] else "challenger"
        uri = f"models:/{result['name']}@{alias}"
        out.print(f"load it: {usage(uri)}", highlight=False, soft_wrap=True)


models_app = typer.Typer(help="The MLflow model registry: list, show, promote, roll back.")
app.add_typer(models_app, name="models", no_args_is_help=True)
NameOpt = Annotated[str | None, typer.Option("--name", help="registered model name")]


@contextlib.contextmanager
def registry_client(params: Path, name: str | None) -> Iterator[tuple]:
    from lowlight import registry, tracking

    with user_errors():
        p = load_params(params)
        uri = tracking.tracking_uri(p.mlflow)
        with registry.registry_errors(uri):
            yield registry.client(uri), name or p.register_.model_name


@models_app.command("list")
def models_list(name: NameOpt = None, params: ParamsOpt = Path("params.yaml")) -> None:
    """Every version with its aliases, test metrics and lineage."""
    from lowlight import registry

    with registry_client(params, name) as (c, model_name):
        versions = c.search_model_versions(f"name='{model_name}'")
        holders = registry.aliases_by_version(c, model_name) if versions else {}
        rows = [
            registry.describe(v, holders.get(str(v.version), []))
            for v in sorted(versions, key=lambda v: int(v.version))
        ]
        table = Table(title=f"{model_name}: {len(rows)} version(s)", title_justify="left")
        for column in rows[0] if rows else ["version"]:
            table.add_column(column)
        for row in rows:
            table.add_row(*map(str, row.values()))
        out.print(table)


@models_app.command("show")
def models_show(
    version: Annotated[str, typer.Argument(help="version number")],
    name: NameOpt = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """One version's tags, and the commands that check out its code and data."""
    from lowlight import registry

    with registry_client(params, name) as (c, model_name):
        mv = c.get_model_version(model_name, version)
        aliases = registry.aliases_by_version(c, model_name).get(str(mv.version), [])
        show(f"{model_name} version {version}", {**registry.describe(mv, aliases), **mv.tags})
        for command in registry.checkout_commands(mv):
            out.print(f"reproduce: {command}", highlight=False)


@models_app.command("promote")
def models_promote(
    version: Annotated[str, typer.Argument(help="version number")],
    alias: Annotated[str, typer.Option(help="alias to move")] = "champion",
    name: NameOpt = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Move an alias (default champion) to VERSION, recording who, when and the previous one."""
    from lowlight import registry

    with registry_client(params, name) as (c, model_name):
        show("promote", registry.promote(c, model_name, version, alias))


@models_app.command("rollback")
def models_rollback(
    alias: Annotated[str, typer.Option(help="alias to give back")] = "champion",
    name: NameOpt = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Give the champion back to the version that held it before."""
    from lowlight import registry

    with registry_client(params, name) as (c, model_name):
        show("rollback", registry.rollback(c, model_name, alias))


@models_app.command("serve-manifest")
def models_serve_manifest(
    version: Annotated[str | None, typer.Argument(help="version number")] = None,
    alias: Annotated[
        str | None, typer.Option(help="serve the version holding it (default: champion)")
    ] = None,
    name: NameOpt = None,
    namespace: Annotated[str, typer.Option(help="Kubernetes namespace")] = "lowlight",
    out_file: Annotated[Path | None, typer.Option("--out", help="write it here")] = None,
    artifacts_destination: Annotated[
        str | None,
        typer.Option(
            help="the MLflow server's --artifacts-destination "
            "(default: $MLFLOW_ARTIFACTS_DESTINATION, else s3://mlflow/)"
        ),
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """A KServe InferenceService for VERSION (or --alias): pipe it to `kubectl apply -f -`."""
    from lowlight import serving, storage

    with registry_client(params, name) as (c, model_name):
        served, doc = serving.manifest(c, model_name, version, alias, namespace,
                                       artifacts_destination)  # fmt: skip
        text = serving.to_yaml(doc)
        if out_file is None:
            sys.stdout.write(text)
            return
        with storage.output_errors(out_file), storage.atomic_path(out_file) as tmp:
            tmp.write_text(text)
        console.print(f"{out_file}: InferenceService {doc['metadata']['name']} serving "
                      f"models:/{served.name}/{served.version}", highlight=False)  # fmt: skip


pipeline_app = typer.Typer(
    help="The Kubeflow pipelines (train, enhance): compile, run here, submit to a cluster.",
    no_args_is_help=True,
)
app.add_typer(pipeline_app, name="pipeline")
ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", help="KEY=VALUE over params.yaml, e.g. train.epochs=50 or shards=8"),
]
DistributedOpt = Annotated[
    bool,
    typer.Option("--distributed", help="train as a PyTorchJob of `nodes` pods x `gpus` GPUs"),
]
ImageOpt = Annotated[str | None, typer.Option(help="component image [default: lowlight:<version>]")]
PipelineOpt = Annotated[
    str,
    typer.Option(
        "--pipeline", help="train (data -> registered model) | enhance (RAW folder -> PNGs)"
    ),
]


@pipeline_app.command("compile")
def pipeline_compile(
    out: Annotated[Path, typer.Argument(metavar="OUT.yaml", help="IR YAML to write")],
    image: ImageOpt = None,
    distributed: DistributedOpt = False,
    pipeline: PipelineOpt = "train",
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Compile a pipeline (defaults from params.yaml) to Kubeflow's IR YAML."""
    from lowlight import cluster
    from lowlight.pipelines import runner

    with user_errors():
        summary = runner.compile_pipeline(
            load_params(params), out, image or cluster.IMAGE, distributed, pipeline
        )
        show("pipeline compile", summary)


@pipeline_app.command("run-local")
def pipeline_run_local(
    work: Annotated[Path, typer.Option(help="synthetic data and artifacts go here")] = Path(
        "kfp-local"
    ),
    param: ParamOpt = None,
    pipeline: PipelineOpt = "train",
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Run a pipeline on this machine (kfp.local.SubprocessRunner): train on synthetic data, or
    enhance the RAW files of --param source=... into --param output=...."""
    from lowlight.pipelines import runner

    with user_errors():
        p = load_params(params)
        show("pipeline run-local", runner.run_local(p, work, param or [], pipeline))


@pipeline_app.command("submit")
def pipeline_submit(
    host: Annotated[str, typer.Option(help="Kubeflow Pipelines URL, e.g. https://kfp.example")],
    experiment: Annotated[str, typer.Option(help="experiment to file the run under")] = "lowlight",
    namespace: Annotated[str | None, typer.Option(help="profile namespace (multi-user)")] = None,
    run_name: Annotated[str | None, typer.Option(help="name of the run")] = None,
    service_account: Annotated[
        str, typer.Option(help="service account of the run's pods; '' = KFP's default")
    ] = "lowlight-pipeline",
    image: ImageOpt = None,
    distributed: DistributedOpt = False,
    param: ParamOpt = None,
    pipeline: PipelineOpt = "train",
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Compile and start a run on a cluster; the token comes from KF_PIPELINES_TOKEN."""
    import tempfile

    from lowlight import cluster
    from lowlight.pipelines import runner

    with user_errors(), tempfile.TemporaryDirectory() as tmp:
        p = load_params(params)
        args = runner.arguments(p, param or [], pipeline)
        package = Path(tmp) / "pipeline.yaml"
        runner.compile_pipeline(p, package, image or cluster.IMAGE, distributed, pipeline)
        show("pipeline submit",
             runner.submit(package, host, args, experiment, namespace, run_name,
                           service_account))  # fmt: skip


export_app = typer.Typer(help="Export the trained generator for deployment.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("onnx")
def export_onnx(
    models_dir: Annotated[Path, typer.Argument(metavar="MODELS", help="trained models folder")],
    out: Annotated[Path, typer.Argument(metavar="OUT.onnx", help="ONNX file to write")],
    int8: Annotated[
        bool, typer.Option("--int8", help="static int8 (faster on a CPU), calibrated on patches")
    ] = False,
    calibration: Annotated[
        str, typer.Option(help="patch folder (local or s3://) whose dark patches calibrate --int8")
    ] = "data/patches/train",
) -> None:
    """ONNX with dynamic height and width (onnxruntime runs it without torch)."""
    from lowlight.export import export_onnx as run_export

    with user_errors():
        show("export onnx", run_export(models_dir, out, int8, calibration if int8 else None))


@export_app.command("pretrained")
def export_pretrained(
    models_dir: Annotated[Path, typer.Argument(metavar="MODELS", help="trained models folder")],
    reports: Annotated[Path, typer.Argument(metavar="REPORTS", help="folder with metrics.json")],
    params: ParamsOpt = Path("params.yaml"),
    reproduce: Annotated[
        str, typer.Option(help="the command that reproduces it, for the card")
    ] = "make pretrain",
    versus: Annotated[
        tuple[Path, Path] | None,
        typer.Option(help="MODELS REPORTS of its GAN fine-tune, shipped if validation favours it"),
    ] = None,
    validation: Annotated[
        tuple[Path, Path] | None,
        typer.Option(help="validation REPORTS of MODELS and of --versus (evaluate --split val)"),
    ] = None,
) -> None:
    """Make MODELS the model shipped with lowlight (src/lowlight/pretrained/), with its card."""
    from lowlight.shipping import ship

    with user_errors():
        p = load_params(params)
        summary = ship(models_dir, reports, p, str(params), reproduce, versus=versus,
                       validation=validation)  # fmt: skip
        show("export pretrained", summary)


if __name__ == "__main__":
    app()
