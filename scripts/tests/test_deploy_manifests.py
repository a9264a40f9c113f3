"""The Kubernetes manifests in deploy/k8s against the API schemas of a
recent Kubernetes release (kubernetes-validate ships them; no cluster or
network needed). Strict: a misspelled field fails. This checks their shape,
not that a cluster runs them; none was available here."""

import glob
import os

import kubernetes_validate
import pytest
import yaml

DEPLOY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy", "k8s")
MANIFESTS = sorted(glob.glob(os.path.join(DEPLOY, "*.yaml")))
KUBERNETES = "1.30.0"


def test_there_are_manifests():
    assert {os.path.basename(m) for m in MANIFESTS} >= {"predict-job.yaml", "serve.yaml", "retrain-cronjob.yaml"}


@pytest.mark.parametrize("path", MANIFESTS, ids=os.path.basename)
def test_manifest_is_valid(path):
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_strict_validation_catches_a_misspelled_field():
    with open(os.path.join(DEPLOY, "serve.yaml"), encoding="utf-8") as f:
        deployment = next(yaml.safe_load_all(f))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = deployment["spec"]["template"]["spec"][
        "containers"][0].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def test_serving_is_locked_down():
    """serve.yaml starts kerasgo serve with model management off, mounts the models read-only, and admits only
    labelled client pods to the serving ports through a NetworkPolicy."""
    with open(os.path.join(DEPLOY, "serve.yaml"), encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert not any(a.startswith("--allow-reload-under") or a.startswith("--reload-token-file") for a in container["args"]), \
        "the Deployment turns model management on"
    assert all(m.get("readOnly") for m in container["volumeMounts"]), "the model volume is writable by the server"
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    assert policies, "no NetworkPolicy: every pod in the cluster reaches the serving ports"
    policy = policies[0]["spec"]
    assert policy["podSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert policy["policyTypes"] == ["Ingress"]
    ports = {p["port"] for rule in policy["ingress"] for p in rule["ports"]}
    assert ports == {8500, 8501}
    assert all(rule.get("from") for rule in policy["ingress"]), "an ingress rule admits everyone"
