"""Serving: the shipped model registered as the champion and served by MLflow's scoring server
(`mlflow models serve --env-manager local`): one request with a full-size a7S II frame, and
requests per second with 2 workers; the ``## serving`` section.

    .venv/bin/python bench/serving.py            # full run
    .venv/bin/python bench/serving.py --quick    # a small frame, prints only
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import benchlib
from benchlib import table

SECTION = "## serving"
FULL = "2832x4240"  # the a7S II's 4240x2832 mosaic
CLIENTS = 4  # requests at once for the throughput figure


def register_shipped(work: Path, uri: str) -> str:
    """The shipped model as version 1 of ``served``, alias champion; its models:/ URI."""
    import mlflow

    from lowlight import card, pyfunc
    from lowlight.config import Params

    mlflow.set_tracking_uri(uri)
    with mlflow.start_run():
        info = pyfunc.log_generator(card.shipped("bayer"), Params().infer, work)
    version = mlflow.register_model(info.model_uri, "served")
    mlflow.MlflowClient(uri).set_registered_model_alias("served", "champion", version.version)
    return "models:/served@champion"


def post(url: str, files: list[bytes]) -> float:
    """One request holding ``files``; its seconds (every row must have worked)."""
    data = [[base64.b64encode(f).decode()] for f in files]
    body = json.dumps({"dataframe_split": {"columns": ["image"], "data": data}}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        rows = json.loads(response.read())["predictions"]
    assert not any(r["error"] for r in rows), rows
    return time.perf_counter() - start


def main(argv: list[str]) -> None:
    args = benchlib.parse(benchlib.parser(__doc__), argv)
    size = "256x384" if args.quick else FULL
    with benchlib.scratch("serving", args.keep) as work:
        frame = sorted(benchlib.make_raws(work / "raw", 3, size).glob("short/1*.dng"))[0]
        uri = f"sqlite:///{work / 'mlflow.db'}"
        model = register_shipped(work, uri)
        port = benchlib.free_port()
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri,
               "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # fmt: skip
        command = ["mlflow", "models", "serve", "-m", model, "--env-manager", "local",
                   "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]  # fmt: skip
        with benchlib.server(command, f"http://127.0.0.1:{port}/ping", work / "serve.log", env):
            url, files = f"http://127.0.0.1:{port}/invocations", [frame.read_bytes()]
            post(url, files)  # both workers' first request pays torch's warm-up
            post(url, files)
            benchlib.wait_quiet()
            latency = min(post(url, files) for _ in range(args.repeat))
            start = time.perf_counter()
            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(lambda _: post(url, files), range(2 * CLIENTS)))
            throughput = 2 * CLIENTS / (time.perf_counter() - start)
    height, width = map(int, size.split("x"))
    lines = benchlib.header(
        SECTION,
        "The shipped model as a registered champion behind MLflow's scoring server (`mlflow "
        "models serve -m models:/NAME@champion --env-manager local --workers 2`): a synthetic "
        "a7S II DNG posted as base64 in a `dataframe_split` JSON request, the enhanced 16-bit "
        "PNG's bytes back. Latency: the best of sequential single requests after warm-up; "
        f"throughput: {2 * CLIENTS} requests from {CLIENTS} clients at once.",
        benchlib.machine(),
        benchlib.command(args),
    )
    lines += table(["frame", "DNG size", "latency of one request", "per raw megapixel",
                    "requests/s (2 workers)"],
                   [[f"{height} x {width} mosaic", f"{len(files[0]) / 2**20:.1f} MiB",
                     f"{latency:.2f} s", f"{1000 * latency / (height * width / 1e6):.0f} ms",
                     f"{throughput:.2f}"]])  # fmt: skip
    benchlib.publish(SECTION, lines, args.output)


if __name__ == "__main__":
    main(sys.argv[1:])
