"""Each kind of bad declaration is refused with a message naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from strata.cli import main
from strata.errors import SpecError
from strata.spec import ClusterSpec, PipelineJob, SweepJob, TrainJob, load_spec

STATIC = """
config:
  strata:cluster:
    provider: static
    instance_type: {instance}
    node_count: {nodes}
    inventory: playbooks/inventories/local.yml
"""
TRAIN = """
kind: train
name: t
data: {{shards: runs/x}}
steps: 10
output: {{dir: runs/t}}
zero: {{stage: {stage}}}
"""
PIPELINE = """
kind: pipeline
name: p
input: {{paths: [{path}]}}
output: {{dir: runs/p}}
"""


def refused(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return str(info.value)


def test_the_repository_declarations_are_valid() -> None:
    files = [
        *Path("jobs").rglob("*.yaml"),
        *Path("stacks").glob("Pulumi.*.yaml"),
        *Path("tests/fixtures").glob("*.yaml"),
    ]
    assert len(files) >= 4
    kinds = {type(load_spec(f)) for f in files}
    assert kinds == {ClusterSpec, PipelineJob, SweepJob, TrainJob}


def test_unknown_instance_type_names_key_and_close_matches(write_yaml) -> None:
    message = refused(write_yaml(STATIC.format(instance="p5.48xlarg", nodes=1)))
    assert "spec.yaml: key `config.strata:cluster.instance_type`" in message
    assert "p5.48xlarge" in message  # the close match


@pytest.mark.parametrize("nodes", [0, -3])
def test_node_count_below_one_is_refused(write_yaml, nodes: int) -> None:
    message = refused(write_yaml(STATIC.format(instance="cpu", nodes=nodes)))
    assert "key `config.strata:cluster.node_count`" in message
    assert "at least 1" in message


def test_zero_stage_4_is_refused_with_allowed_values(write_yaml) -> None:
    message = refused(write_yaml(TRAIN.format(stage=4)))
    assert "key `zero.stage`" in message
    assert "0, 1, 2 or 3" in message and "got 4" in message


def test_missing_pipeline_input_is_refused(write_yaml) -> None:
    message = refused(write_yaml(PIPELINE.format(path="data/nowhere.jsonl")))
    assert "key `input.paths`" in message and "data/nowhere.jsonl" in message


def test_unknown_top_level_key_lists_allowed_keys(write_yaml) -> None:
    message = refused(write_yaml(TRAIN.format(stage=2) + "learning_rate: 0.1\n"))
    assert "key `learning_rate`: unknown key" in message
    assert "optimizer" in message and "steps" in message


def test_unknown_nested_key_in_a_stack_lists_that_section(write_yaml) -> None:
    message = refused(
        write_yaml(STATIC.format(instance="cpu", nodes=1) + "    storage: {kind: nfs, sise_gib: 5}\n")
    )
    assert "key `config.strata:cluster.storage.sise_gib`: unknown key" in message
    assert "size_gib" in message


def test_unknown_strata_config_key_is_refused(write_yaml) -> None:
    message = refused(write_yaml(STATIC.format(instance="cpu", nodes=1) + "  strata:clusters: {}\n"))
    assert "config.strata:clusters" in message


def test_job_kind_must_be_known(write_yaml) -> None:
    message = refused(write_yaml("kind: evaluate\nname: x\n"))
    assert "key `kind`" in message and "pipeline, train" in message


def test_invalid_yaml_names_the_file(write_yaml) -> None:
    assert "not valid YAML" in refused(write_yaml("kind: [train\n"))


def test_ingress_from_the_whole_internet_is_refused(write_yaml) -> None:
    text = STATIC.format(instance="cpu", nodes=1) + "    network: {allowed_ingress_cidrs: ['0.0.0.0/0']}\n"
    message = refused(write_yaml(text))
    assert "network.allowed_ingress_cidrs" in message and "whole internet" in message


def test_cloud_instance_on_the_wrong_provider_is_refused(write_yaml) -> None:
    text = STATIC.format(instance="v5p-8", nodes=1).replace(
        "provider: static", "provider: aws\n    region: us-east-1"
    )
    assert "gcp-tpu type" in refused(write_yaml(text))


def test_reserved_capacity_needs_an_id(write_yaml) -> None:
    text = STATIC.format(instance="cpu", nodes=1) + "    capacity: {type: reserved}\n"
    assert "reservation_id" in refused(write_yaml(text))


def test_a_global_batch_that_does_not_divide_across_workers_is_refused(write_yaml) -> None:
    text = (
        TRAIN.format(stage=2)
        + "workers: {num_workers: 4}\nbatch: {micro_batch_size: 2, global_batch_size: 12}\n"
    )
    message = refused(write_yaml(text))
    assert "batch.global_batch_size 12 does not divide" in message and "multiple of 8" in message


def test_the_global_batch_sets_the_accumulation_for_the_worker_count(write_yaml) -> None:
    text = TRAIN.format(stage=2) + "batch: {micro_batch_size: 2, global_batch_size: 16}\n"
    two = load_spec(write_yaml(text + "workers: {num_workers: 2}\n"))
    one = load_spec(write_yaml(text + "workers: {num_workers: 1}\n"))
    assert (two.batch.grad_accum_steps, one.batch.grad_accum_steps) == (4, 8)
    assert two.global_batch == one.global_batch == 16
    contradiction = text.replace("global_batch_size: 16", "global_batch_size: 16, grad_accum_steps: 1")
    assert "contradicts global_batch_size 16" in refused(write_yaml(contradiction))


def test_heads_must_divide_the_hidden_size(write_yaml) -> None:
    text = TRAIN.format(stage=2) + "model: {d_model: 100, n_heads: 3}\n"
    assert "d_model(100) % n_heads(3) != 0" in refused(write_yaml(text))


def test_cli_validate_exits_2_with_the_message(write_yaml, capsys) -> None:
    path = write_yaml(TRAIN.format(stage=4))
    with pytest.raises(SystemExit) as info:
        main(["validate", str(path)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("strata: error: ") and "zero.stage" in err


def test_cli_validate_show_prints_the_deepspeed_config(capsys) -> None:
    main(["validate", "jobs/demo/train.yaml", "--show"])
    out = capsys.readouterr().out
    assert "valid train declaration" in out
    assert '"train_batch_size": 16' in out  # 8 per worker x 2 workers x 1 accumulation step


def test_balance_groups_only_by_known_columns(write_yaml) -> None:
    text = PIPELINE.format(path="data/demo/corpus.jsonl") + "balance: {enabled: true, by: [country]}\n"
    message = refused(write_yaml(text))
    assert "balance.by" in message and "'language'" in message and "'source'" in message


def test_collect_needs_a_folder_and_http_urls(write_yaml) -> None:
    base = PIPELINE.format(path="data/demo/corpus.jsonl")
    message = refused(write_yaml(base + "collect: {urls: ['https://example.org/a.jsonl.gz']}\n"))
    assert "collect.dir is required" in message
    message = refused(write_yaml(base + "collect: {dir: raw, urls: ['ftp://example.org/a.jsonl']}\n"))
    assert "collect.urls must be http(s) URLs" in message
    message = refused(write_yaml(base + "collect: {dir: raw, common_crawl: [{crawl: CC-2024}]}\n"))
    assert "collect.common_crawl.0.crawl" in message


@pytest.mark.parametrize(
    ("old", "new", "key", "fix"),
    [
        ("{dir: runs/t}", "{dir: 's3://b/runs/t'}", "output.dir", "aws s3 sync DIR s3://b/runs/t"),
        ("{shards: runs/x}", "{shards: 's3://b/shards'}", "data.shards", "aws s3 sync s3://b/shards DIR"),
    ],
)
def test_training_refuses_object_storage_naming_the_key_and_the_fix(
    write_yaml, old: str, new: str, key: str, fix: str
) -> None:
    """Training writes and memory-maps local files; only a pipeline's outputs may be on S3."""
    text = TRAIN.format(stage=2).replace(old, new)
    message = refused(write_yaml(text))
    assert f"key `{key}`: must be a local folder" in message and fix in message


def test_rehydration_table_needs_positive_sizes_and_copies(write_yaml) -> None:
    text = PIPELINE.format(path="data/demo/corpus.jsonl") + "dedup: {minhash: {rehydrate: {0: 2}}}\n"
    assert "at least 1" in refused(write_yaml(text))


def test_pipeline_stages_share_the_workers_with_data_parallelism(write_yaml) -> None:
    text = (
        TRAIN.format(stage=1) + "model: {family: llama, n_layers: 4}\nparallel: {pipeline_stages: 2}\n"
        "workers: {num_workers: 4}\nbatch: {micro_batch_size: 2, global_batch_size: 16}\n"
    )
    job = load_spec(write_yaml(text))
    assert (job.data_parallel, job.batch.grad_accum_steps, job.global_batch) == (2, 4, 16)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("model: {n_layers: 4}\n", "the model's family must be llama"),
        ("model: {family: llama, n_layers: 4, tie_embeddings: true}\n", "tied embeddings cannot be split"),
        ("model: {family: llama, n_layers: 1}\n", "model.n_layers (1) must be at least the stages"),
        (
            "model: {family: llama, n_layers: 4}\nworkers: {num_workers: 3}\n",
            "(3) must be a multiple of the stages",
        ),
        ("model: {family: llama, n_layers: 4}\nzero: {stage: 2}\n", "take ZeRO 0 or 1, not 2"),
        ("model: {family: llama, n_layers: 4}\ncompile: true\n", "compile is not supported"),
    ],
)
def test_a_pipeline_deepspeed_cannot_run_is_refused_by_name(write_yaml, change: str, named: str) -> None:
    text = (
        TRAIN.format(stage=1).replace("zero: {stage: 1}\n", "") + "parallel: {pipeline_stages: 2}\n" + change
    )
    if "zero:" not in change:
        text += "zero: {stage: 1}\n"
    message = refused(write_yaml(text))
    assert "parallel.pipeline_stages 2" in message and named in message


def test_tensor_parallelism_names_each_refusal(write_yaml) -> None:
    message = refused(write_yaml(TRAIN.format(stage=3) + "parallel: {tensor: 2}\ncompile: true\n"))
    assert "parallel.tensor 2" in message and "family must be llama" in message and "compile" in message
