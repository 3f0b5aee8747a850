"""values.schema.json: strict everywhere, and a bad value is refused with a message naming it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from chart_helpers import CHART, ROOT

SCHEMA = json.loads((CHART / "values.schema.json").read_text())


def _object_schemas(node, path="$"):
    """Every sub-schema that describes an object, with where it is."""
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            yield path, node
        for key, value in node.items():
            yield from _object_schemas(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _object_schemas(value, f"{path}[{i}]")


def test_no_object_accepts_unknown_keys() -> None:
    """additionalProperties: false on every object with fixed keys; maps (labels, annotations,
    extraEnv) instead constrain the type of their values. Never an open object."""
    found = list(_object_schemas(SCHEMA))
    assert len(found) > 40
    for path, node in found:
        extra = node.get("additionalProperties")
        if "properties" in node:
            assert extra is False, f"{path} must set additionalProperties: false"
        else:
            assert isinstance(extra, dict) and extra.get("type"), f"{path} is an open object"


# (--set arguments, text the error must contain: the field's path)
INVALID = [
    (["hub.oidc.clientSecrt=x"], "clientSecrt"),
    (["nonsense=1"], "nonsense"),
    (["hub.db.type=mysql"], "/hub/db/type"),
    (["culler.timeout=1h"], "/culler/timeout"),
    (["hub.uid=0"], "/hub/uid"),
    (["operator.resources.limits.memory=null"], "/operator/resources/limits"),
    (["workspaces.storage.reclaimPolicy=Recycle"], "/workspaces/storage/reclaimPolicy"),
    (["global.imageRegistry=https://registry.example.internal"], "/global/imageRegistry"),
    (["operator.image.digest=latest"], "/operator/image/digest"),
    (["proxy.service.type=ExternalName"], "/proxy/service/type"),
    (["llm.providers[0].name=Bad_Name", "llm.providers[0].baseURL=http://v.llm.svc/v1",
      "llm.providers[0].models[0]=m"], "/llm/providers/0/name"),
    (["llm.providers[0].name=vllm", "llm.providers[0].baseURL=ftp://v/",
      "llm.providers[0].models[0]=m"], "/llm/providers/0/baseURL"),
    (["workspaces.egressAllowlist[0].cidr=example.internal"], "/workspaces/egressAllowlist/0/cidr"),
    (["hub.profiles[0].slug=Big One"], "/hub/profiles/0/slug"),
    (["hub.profiles[0].slug=big", "hub.profiles[0].cpu=4"], "cpu"),
    (["workspaces.namespace.name=Workspaces"], "/workspaces/namespace/name"),
    (["workspaces.allowedImageRegistries[0]=https://registry.example"],
     "/workspaces/allowedImageRegistries/0"),
    (["llm.apiKeySecrets[0]=ws-bob-hub"], "/llm/apiKeySecrets/0"),
    (["workspaces.resourceQuota.hard.pods=lots"], "/workspaces/resourceQuota/hard/pods"),
    (["workspaces.limitRange.volumeMax=big"], "/workspaces/limitRange/volumeMax"),
]  # fmt: skip


@pytest.mark.parametrize(("sets", "field"), INVALID, ids=[f for _, f in INVALID])
def test_invalid_values_are_refused_naming_the_field(helm, sets: list[str], field: str) -> None:
    args = ["template", "x", str(CHART)]
    for s in sets:
        args += ["--set", s]
    result = helm(*args)
    assert result.returncode != 0, f"accepted {sets}"
    assert "schema" in result.stderr, result.stderr
    assert field in result.stderr, result.stderr


def test_every_ci_value_set_is_valid(helm) -> None:
    """The shipped examples pass the schema (a schema that refused everything would pass the
    test above)."""
    for values in sorted((CHART / "ci").glob("*-values.yaml")):
        result = helm("template", "x", str(CHART), "--values", str(values))
        assert result.returncode == 0, f"{values.name}: {result.stderr}"


def test_every_key_has_a_description_from_the_values_comments() -> None:
    """values.yaml's comment on a key is its description in the schema (one source, copied by
    hack/chart-schema-docs.py), and every property, list items' fields too, has one."""
    script = ROOT / "hack" / "chart-schema-docs.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
