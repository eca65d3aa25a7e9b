"""deploy/: every manifest parses, runs commands the CLI has, and matches the API's port and routes.

There is no container engine or cluster on the test machines, so the images are not built and the
manifests not applied; what can be checked without them is checked against the real code: the
Typer app parses every ``cgan`` command line the manifests run (so a renamed flag fails here),
torchrun's own argument parser takes their torchrun options, probe paths are routes of the
FastAPI app, and the Dockerfile's entrypoint is the ``cgan`` console script.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from conftest import REPO

DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"


# --- helpers ------------------------------------------------------------------------------------
def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _k8s_objects() -> dict[tuple[str, str], dict[str, Any]]:
    objects = {}
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in _documents(path):
            if doc["kind"] != "Kustomization":
                objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


def _pod_specs(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if obj["kind"] in ("Deployment", "Job"):
        yield obj["spec"]["template"]["spec"]
    elif obj["kind"] == "PyTorchJob":
        for replica in obj["spec"]["pytorchReplicaSpecs"].values():
            yield replica["template"]["spec"]


def _root_command():
    from typer.main import get_command

    from cgan_core.cli import build_app

    return get_command(build_app())


def parse_cgan(args: list[str]) -> tuple[str, dict[str, Any]]:
    """Parse ``cgan ARGS`` with the real CLI (no callback runs); returns the command path and its params."""
    command = _root_command()
    context = command.make_context("cgan", list(args))
    path = []
    while hasattr(command, "commands"):
        remaining = list(getattr(context, "protected_args", None) or getattr(context, "_protected_args", [])) \
            + list(context.args)
        name, command, rest = command.resolve_command(context, remaining)
        path.append(name)
        context = command.make_context(name, rest, parent=context)
    return " ".join(path), context.params


def cgan_argv(container: dict[str, Any]) -> list[str]:
    """The cgan arguments a container runs: under torchrun (``-m cgan_core.cli``) or as the entrypoint."""
    command = container.get("command")
    args = [str(a) for a in container.get("args", [])]
    if command is None:
        return args
    assert command == ["torchrun"], f"unexpected command {command}"
    from torch.distributed.run import get_args_parser

    parsed = get_args_parser().parse_args(args)  # torchrun's own parser: its flags must exist
    assert parsed.module and parsed.training_script == "cgan_core.cli"
    return list(parsed.training_script_args)


def _api_routes() -> set[str]:
    from cgan_core.serve.app import create_app
    from cgan_core.serve.settings import ServeSettings

    return {route.path for route in create_app(ServeSettings(runs=[]), open_store=False).routes}


def _serve_port(params: dict[str, Any]) -> int:
    return int(params["port"])


# --- Dockerfile -------------------------------------------------------------------------------------
def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_is_multi_stage_non_root_with_the_cli_as_entrypoint_and_a_healthcheck():
    instructions = _dockerfile_instructions()
    froms = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage: a build stage and a runtime stage"
    final = instructions[froms[-1]:]
    keywords = [keyword for keyword, _ in final]
    entrypoints = [json.loads(rest) for keyword, rest in final if keyword == "ENTRYPOINT"]
    assert entrypoints[-1] == ["cgan"]
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["cgan"] == "cgan_core.cli:main"  # the entrypoint is the CLI's console script
    user = [rest for keyword, rest in final if keyword == "USER"][-1]
    assert user.split(":")[0] not in ("root", "0") and keywords.index("USER") < keywords.index("ENTRYPOINT")
    assert any(keyword == "COPY" and rest.startswith("--from=") for keyword, rest in final)
    # build args choose CPU or CUDA wheels; the extras baked in exist in pyproject
    args = dict(rest.split("=", 1) for keyword, rest in instructions if keyword == "ARG" and "=" in rest)
    assert args["TORCH_VARIANT"] == "cpu"
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(args["CGAN_EXTRAS"].split(",")) <= set(extras)
    # the healthcheck asks the API's liveness route on the port cgan serve listens on by default
    env = " ".join(rest for keyword, rest in final if keyword == "ENV")
    url = re.search(r"CGAN_HEALTHCHECK_URL=(\S+)", env).group(1)
    health = [rest for keyword, rest in final if keyword == "HEALTHCHECK"][-1]
    assert "CGAN_HEALTHCHECK_URL" in health
    _, params = parse_cgan(["serve", "runs/x"])
    assert url == f"http://127.0.0.1:{_serve_port(params)}/healthz" and "/healthz" in _api_routes()
    assert [rest for keyword, rest in final if keyword == "EXPOSE"] == [str(_serve_port(params))]
    # what the build copies exists, and the per-Dockerfile ignore file lets exactly that through
    copied = [rest.split()[:-1] for keyword, rest in instructions if keyword == "COPY" and "--from" not in rest]
    for sources in copied:
        for source in sources:
            assert (REPO / source).exists(), source
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text()
    for source in ("pyproject.toml", "README.md", "cgan_core", "plugins"):
        assert f"!{source}" in ignore


# --- Kubernetes -------------------------------------------------------------------------------------
def test_every_manifest_parses_and_kustomizations_list_existing_files():
    for path in sorted(K8S.rglob("*.yaml")) + [DEPLOY / "compose.yaml"]:
        assert _documents(path), f"{path} is empty"
    for kustomization in K8S.rglob("kustomization.yaml"):
        (doc,) = _documents(kustomization)
        assert doc["kind"] == "Kustomization"
        for resource in doc["resources"]:
            assert (kustomization.parent / resource).is_file(), f"{kustomization}: {resource}"
            for obj in _documents(kustomization.parent / resource):
                assert obj["apiVersion"] and obj["metadata"]["name"]
        assert {image["name"] for image in doc["images"]} == {"cgan"}
    listed = {r for k in K8S.rglob("kustomization.yaml") for r in _documents(k)[0]["resources"]}
    assert {p.name for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"} == listed


K8S_VERSION = "1.30.0"  # the Kubernetes release deploy/README.md says the manifests are checked against


def _schema_checked(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects of ``obj`` that Kubernetes' own schemas cover: the object itself, or for a
    Kubeflow PyTorchJob (a custom resource) the pod templates of its replicas as PodTemplates."""
    if obj["kind"] != "PyTorchJob":
        return [obj]
    return [{"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": f"{obj['metadata']['name']}-{role}"},
             "template": replica["template"]} for role, replica in obj["spec"]["pytorchReplicaSpecs"].items()]


def test_every_manifest_matches_the_kubernetes_schemas_strictly():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    checked = []
    for obj in _k8s_objects().values():
        for part in _schema_checked(obj):
            kubernetes_validate.validate(part, K8S_VERSION, strict=True)  # unknown fields are errors too
            checked.append(part["kind"])
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "Secret", "PersistentVolumeClaim", "Job",
            "PodTemplate"} <= set(checked)
    # The check can fail: a misspelt field in the API Deployment is refused.
    broken = json.loads(json.dumps(_k8s_objects()[("Deployment", "cgan-api")]))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_every_container_runs_a_cgan_command_the_cli_accepts():
    commands = {}
    for (kind, name), obj in _k8s_objects().items():
        for pod in _pod_specs(obj):
            for container in pod["containers"]:
                assert container["image"] == "cgan"  # the name kustomize's images: rewrites
                path, params = parse_cgan(cgan_argv(container))
                commands[(kind, name)] = (path, params)
    assert commands[("Deployment", "cgan-api")][0] == "serve"
    assert commands[("Job", "cgan-train-digits")][0] == "run"
    assert commands[("PyTorchJob", "cgan-train-multinode")][0] == "run"
    for key in (("Job", "cgan-train-digits"), ("PyTorchJob", "cgan-train-multinode")):
        params = commands[key][1]
        assert params["auto_resume"] and params["out"].as_posix().startswith("/data/")


def test_parse_cgan_rejects_flags_the_cli_does_not_have():
    import click

    with pytest.raises(Exception) as error:
        parse_cgan(["serve", "--prot", "8000", "runs/x"])
    assert "No such option" in str(error.value) or isinstance(error.value, click.UsageError)
    assert parse_cgan(["content", "export", "s3://bucket/x", "--run", "r"])[0] == "content export"


def test_api_deployment_ports_probes_and_service_match_the_api():
    objects = _k8s_objects()
    deployment = objects[("Deployment", "cgan-api")]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    _, params = parse_cgan(cgan_argv(container))
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["http"] == _serve_port(params) and params["host"] == "0.0.0.0"
    routes = _api_routes()
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        http = container[probe]["httpGet"]
        assert http["path"] in routes and http["port"] in ports
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    service = objects[("Service", "cgan-api")]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert all(port["targetPort"] in ports or port["targetPort"] in ports.values() for port in service["spec"]["ports"])
    hpa = objects[("HorizontalPodAutoscaler", "cgan-api")]
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) in objects
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_secrets_volumes_environment_and_users_are_consistent():
    objects = _k8s_objects()
    secret = objects[("Secret", "cgan-secrets")]
    claims = {name for kind, name in objects if kind == "PersistentVolumeClaim"}
    source = "\n".join(p.read_text() for p in (REPO / "cgan_core").rglob("*.py"))
    uid = [rest for keyword, rest in _dockerfile_instructions() if keyword == "USER"][-1].split(":")[0]
    for (kind, name), obj in objects.items():
        for pod in _pod_specs(obj):
            assert pod["securityContext"]["runAsNonRoot"] and str(pod["securityContext"]["runAsUser"]) == uid
            for volume in pod.get("volumes", []):
                if "persistentVolumeClaim" in volume:
                    assert volume["persistentVolumeClaim"]["claimName"] in claims
            for container in pod["containers"]:
                for env in container.get("env", []):
                    if env["name"].startswith("CGAN_"):
                        assert f'"{env["name"]}"' in source, f"cgan does not read {env['name']}"
                    ref = env.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        assert ref["name"] == "cgan-secrets" and ref["key"] in secret["stringData"]
                mounts = {mount["name"] for mount in container.get("volumeMounts", [])}
                assert mounts <= {volume["name"] for volume in pod.get("volumes", [])}
    from cgan_core.serve.auth import KEYS_ENV

    assert KEYS_ENV in secret["stringData"] and "CGAN_DB_URL" in secret["stringData"]


def test_training_jobs_run_under_torchrun():
    objects = _k8s_objects()
    job = objects[("Job", "cgan-train-digits")]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["torchrun"] and "--nproc-per-node=2" in container["args"]
    pytorchjob = objects[("PyTorchJob", "cgan-train-multinode")]
    assert int(pytorchjob["spec"]["nprocPerNode"]) >= 1
    replicas = pytorchjob["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1 and replicas["Worker"]["replicas"] >= 1
    commands = [(r["template"]["spec"]["containers"][0]["command"], r["template"]["spec"]["containers"][0]["args"])
                for r in replicas.values()]
    assert commands[0] == commands[1]  # every node runs the same command; the operator sets the ranks


# --- compose ----------------------------------------------------------------------------------------
def test_compose_runs_the_api_with_postgresql_and_a_volume():
    (compose,) = _documents(DEPLOY / "compose.yaml")
    services = compose["services"]
    assert {"api", "postgres", "train"} <= set(services)
    api = services["api"]
    assert (DEPLOY / api["build"]["context"] / api["build"]["dockerfile"]).resolve() == (DEPLOY / "Dockerfile")
    path, params = parse_cgan(api["command"])
    assert path == "serve" and params["host"] == "0.0.0.0"
    assert api["ports"] == [f"{_serve_port(params)}:{_serve_port(params)}"]
    health = " ".join(api["healthcheck"]["test"])
    assert f"127.0.0.1:{_serve_port(params)}/readyz" in health and "/readyz" in _api_routes()
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert re.match(r"postgresql://cgan:.*@postgres:5432/cgan$", api["environment"]["CGAN_DB_URL"])
    volumes = {volume.split(":")[0] for service in services.values() for volume in service.get("volumes", [])}
    assert volumes <= set(compose["volumes"]) and "cgan-data" in volumes
    path, params = parse_cgan(services["train"]["command"])
    assert path == "run" and params["nproc"] == 2 and params["auto_resume"]


def _readme_cgan_commands() -> list[list[str]]:
    """cgan command lines in deploy/README.md: inline code, code-block lines, ``docker run IMAGE ARGS``."""
    text = (DEPLOY / "README.md").read_text().replace("\\\n", " ")
    candidates = re.findall(r"`([^`\n]+)`", text) + text.splitlines()
    commands = []
    for candidate in candidates:
        candidate = candidate.strip()
        image = re.search(r"docker run .*?\bcgan:\S+\s+(.*)$", candidate)
        if image:
            args = shlex.split(image.group(1))
        elif re.match(r"cgan (run|serve|pipeline|evaluate|generate|content)\b", candidate):
            args = shlex.split(candidate.split("#")[0])[1:]
        else:
            continue
        if "..." not in args and "...`" not in candidate:
            commands.append(args)
    return commands


def test_readme_commands_use_real_flags():
    commands = _readme_cgan_commands()
    assert len(commands) >= 5
    paths = set()
    for args in commands:
        try:
            paths.add(parse_cgan(args)[0])
        except Exception as exc:  # a fragment in prose may leave out an argument, never misspell a flag
            if type(exc).__name__ != "MissingParameter":
                raise AssertionError(f"deploy/README.md: cgan {' '.join(args)}: {exc}") from None
    assert {"run", "serve", "pipeline run", "evaluate", "generate", "content export"} <= paths
