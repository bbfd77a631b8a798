"""KubeRayCluster and StaticCluster under Pulumi's mocks, and the program's validation."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest
import yaml

from strata.errors import SpecError
from strata.spec import load_cluster
from strata.stacks.kubernetes import KubeRayCluster
from strata.stacks.outputs import OUTPUT_KEYS
from strata.stacks.program import build_from_config
from tests.stacks.mocks import MOCKS, run_program

K8S = load_cluster(Path("stacks/Pulumi.k8s.yaml"))


def test_kuberay_operator_and_a_raycluster_with_gpu_and_efa_requests() -> None:
    program = run_program(lambda: KubeRayCluster("k", K8S, pulumi.Output.secret("t0ken")))
    release = program.one("kubernetes:helm.sh/v3:Release").inputs
    assert release["chart"] == "kuberay-operator"
    assert release["repositoryOpts"]["repo"] == "https://ray-project.github.io/kuberay-helm/"
    ray = program.one("kubernetes:ray.io/v1:RayCluster").inputs["spec"]
    assert ray["headGroupSpec"]["serviceType"] == "ClusterIP"  # never a LoadBalancer
    (group,) = ray["workerGroupSpecs"]
    assert group["replicas"] == 2
    pod = group["template"]["spec"]
    limits = pod["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == 8
    assert limits["vpc.amazonaws.com/efa"] == 32
    assert limits["hugepages-2Mi"] == "5120Mi"
    assert pod["nodeSelector"] == {"node.kubernetes.io/instance-type": "p5.48xlarge"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["RAY_AUTH_MODE"]["value"] == "token"
    assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "k-ray-token"
    claim = program.one("kubernetes:core/v1:PersistentVolumeClaim").inputs["spec"]
    assert claim["storageClassName"] == "fsx-lustre" and claim["resources"]["requests"]["storage"] == "2400Gi"
    assert program.outputs["tunnel_command"] == "kubectl -n strata port-forward service/k-head-svc 8265:8265"
    assert program.outputs["ray_address"] == "k-head-svc.strata.svc.cluster.local:6379"


def test_every_stack_exports_the_same_contract() -> None:
    for stack in ("aws-h100", "gcp-a3", "gcp-tpu-v5p", "k8s", "local"):
        raw = yaml.safe_load(Path(f"stacks/Pulumi.{stack}.yaml").read_text())["config"]["strata:cluster"]
        program = run_program(lambda raw=raw, stack=stack: build_from_config(stack, raw, ray_auth_token="t"))
        assert set(program.outputs) == set(OUTPUT_KEYS), stack
        assert program.outputs["ray_dashboard"].endswith(":8265"), stack


def test_static_hosts_declare_nothing_and_export_their_inventory() -> None:
    raw = yaml.safe_load(Path("stacks/Pulumi.local.yaml").read_text())["config"]["strata:cluster"]
    program = run_program(lambda: build_from_config("local", raw))
    assert [r.type for r in program.resources] == ["strata:static:Cluster"]
    assert program.outputs["inventory"] == yaml.safe_load(Path("playbooks/inventories/local.yml").read_text())
    assert program.outputs["ray_address"] == "127.0.0.1:6379"
    assert program.outputs["hourly_usd"] is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"instance_type": "p5.48xlarg"},
            r"key `config.strata:cluster.instance_type`: .*did you mean p5.48xlarge",
        ),
        ({"storage": {"kind": "lustre", "size_gib": 1500}}, r"1200 or a multiple of 2400"),
        ({"network": {"allowed_ingress_cidrs": ["0.0.0.0/0"]}}, r"opens the cluster to the whole internet"),
        ({"access": {"ssh_public_key": "-----BEGIN OPENSSH PRIVATE KEY-----"}}, r"never put a private key"),
        ({"storage": {"kind": "filestore"}}, r"storage.kind 'filestore' is not available on aws"),
        (
            {"head": {"disk_gib": 500}},
            r"head.disk_gib \(500\) sizes the head node only; the boot disk of the 2 other node\(s\) is now "
            r"`disk_gib` \(default 200\): set it too, e.g. `disk_gib: 500`",
        ),
    ],
)
def test_bad_declarations_are_refused_before_any_resource(change: dict[str, object], message: str) -> None:
    raw = yaml.safe_load(Path("stacks/Pulumi.aws-h100.yaml").read_text())["config"]["strata:cluster"]
    before = len(MOCKS.declared)
    with pytest.raises(SpecError, match=message):
        run_program(lambda: build_from_config("aws-h100", {**raw, **change}))
    assert MOCKS.declared[before:] == []


def test_kubernetes_without_its_token_secret_is_refused() -> None:
    raw = yaml.safe_load(Path("stacks/Pulumi.k8s.yaml").read_text())["config"]["strata:cluster"]
    with pytest.raises(SpecError, match="pulumi config set --secret strata:rayAuthToken"):
        run_program(lambda: build_from_config("k8s", raw))
