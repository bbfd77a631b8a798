"""KubeRayCluster: a Ray cluster on an existing Kubernetes cluster through the KubeRay operator.

The operator comes from its Helm chart; the RayCluster asks for the catalog's GPUs (and,
on EFA instance types, every EFA device with the huge pages libfabric needs) per worker
pod. The head service is ClusterIP only: users reach the dashboard with
`kubectl port-forward`. Ray's auth token comes from a Pulumi secret, never from a file.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from strata.spec import ClusterSpec
from strata.spec.catalog import load_catalog
from strata.stacks.base import StrataCluster
from strata.stacks.outputs import kubernetes_outputs

KUBERAY_REPO = "https://ray-project.github.io/kuberay-helm/"
RAY_VERSION = "2.60.0"
EFA_HUGEPAGES = "5120Mi"


class KubeRayCluster(StrataCluster):
    """Namespace, KubeRay operator, token secret, data volume claim and the RayCluster."""

    def __init__(
        self,
        name: str,
        spec: ClusterSpec,
        ray_auth_token: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("strata:kubernetes:RayCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        kube = spec.kubernetes
        namespace = k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": kube.namespace}, opts=child)
        ns = namespace.metadata.apply(lambda m: m.name)
        operator = k8s.helm.v3.Release(
            f"{name}-kuberay",
            chart="kuberay-operator",
            version=kube.kuberay_version,
            namespace=ns,
            repository_opts={"repo": KUBERAY_REPO},
            opts=child,
        )
        token = k8s.core.v1.Secret(
            f"{name}-ray-token",
            metadata={"namespace": ns, "name": f"{name}-ray-token"},
            string_data={"token": ray_auth_token},
            opts=child,
        )
        claim_name = f"{name}-data"
        k8s.core.v1.PersistentVolumeClaim(
            claim_name,
            metadata={"namespace": ns, "name": claim_name},
            spec={
                "access_modes": ["ReadWriteMany"],
                "storage_class_name": kube.storage_class,
                "resources": {"requests": {"storage": f"{kube.volume_gib}Gi"}},
            },
            opts=child,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-ray",
            api_version="ray.io/v1",
            kind="RayCluster",
            metadata={"namespace": ns, "name": name},
            spec=ray_cluster_spec(name, spec, token_secret=f"{name}-ray-token", claim=claim_name),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[operator, token]),
        )
        self.outputs = pulumi.Output.from_input(
            kubernetes_outputs(spec, service=f"{name}-head-svc", namespace=kube.namespace, claim=claim_name)
        )
        self.register_outputs({"outputs": self.outputs})


def ray_cluster_spec(name: str, spec: ClusterSpec, *, token_secret: str, claim: str) -> dict[str, Any]:
    """The RayCluster's spec: a CPU head and `node_count` GPU workers of the catalog's shape."""
    kube, row = spec.kubernetes, load_catalog().get(spec.instance_type)
    env = [
        {"name": "RAY_AUTH_MODE", "value": "token"},
        {"name": "RAY_AUTH_TOKEN", "valueFrom": {"secretKeyRef": {"name": token_secret, "key": "token"}}},
        {"name": "RAY_USAGE_STATS_ENABLED", "value": "0"},
    ]
    mount = {"name": "data", "mountPath": spec.storage.mount_point}
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
    limits: dict[str, str | int] = {}
    if row.is_gpu:
        limits["nvidia.com/gpu"] = row.accelerators_per_node
    if spec.network.efa and row.efa_count:
        limits["vpc.amazonaws.com/efa"] = row.efa_count
        limits["hugepages-2Mi"] = EFA_HUGEPAGES
    # Leave room for the kubelet and daemon sets: 90% of the node's CPUs and memory.
    requests = {"cpu": str(max(1, int(row.vcpus * 0.9))), "memory": f"{int(row.memory_gib * 0.9)}Gi"}
    worker = {
        "name": "ray-worker",
        "image": kube.image,
        "env": env,
        "volumeMounts": [mount],
        "resources": {"limits": {**limits, "memory": requests["memory"]}, "requests": {**requests, **limits}},
    }
    head = {
        "name": "ray-head",
        "image": kube.image,
        "env": env,
        "volumeMounts": [mount],
        "ports": [
            {"containerPort": p, "name": n}
            for n, p in (
                ("gcs", spec.ray.gcs_port),
                ("dashboard", spec.ray.dashboard_port),
                ("client", spec.ray.client_port),
            )
        ],
        "resources": {
            "requests": {"cpu": str(kube.head_cpus), "memory": f"{kube.head_memory_gib}Gi"},
            "limits": {"cpu": str(kube.head_cpus), "memory": f"{kube.head_memory_gib}Gi"},
        },
    }
    tolerations = [t.model_dump(exclude_none=True) for t in kube.tolerations]
    return {
        "rayVersion": RAY_VERSION,
        "headGroupSpec": {
            "serviceType": "ClusterIP",
            "rayStartParams": {
                "num-gpus": "0",
                "port": str(spec.ray.gcs_port),
                "dashboard-port": str(spec.ray.dashboard_port),
            },
            "template": {"spec": {"containers": [head], "volumes": volumes}},
        },
        "workerGroupSpecs": [
            {
                "groupName": "gpu",
                "replicas": spec.node_count,
                "minReplicas": spec.node_count,
                "maxReplicas": spec.node_count,
                "rayStartParams": {},
                "template": {
                    "spec": {
                        "containers": [worker],
                        "volumes": volumes,
                        "nodeSelector": dict(kube.node_selector),
                        "tolerations": tolerations,
                    }
                },
            }
        ],
    }
