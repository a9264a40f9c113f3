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
