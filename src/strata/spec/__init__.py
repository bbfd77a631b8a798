"""Typed, validated declarations: cluster, pipeline job, train job; and the catalog."""

from strata.spec.cluster import ClusterSpec
from strata.spec.load import load_cluster, load_job, load_pipeline_job, load_spec, load_train_job
from strata.spec.pipeline import PipelineJob
from strata.spec.sweep import SweepJob
from strata.spec.train import TrainJob

__all__ = [
    "ClusterSpec",
    "PipelineJob",
    "SweepJob",
    "TrainJob",
    "load_cluster",
    "load_job",
    "load_pipeline_job",
    "load_spec",
    "load_train_job",
]
