"""The pipeline on object storage: an S3 server (moto's, on loopback) holds the inputs and
receives the outputs. The multilingual job of test_run.py (its local run is the package's
`multilingual_run`) run through `strata exec`'s code from `s3://` to `s3://` gives the same
shards and counts, and writes its run records there; `strata run` of a small job does too;
the secret key is in no file of Ray's or of the output. A missing object or prefix and a
denied bucket are refused before any work, naming the URI."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from strata.errors import JobError
from strata.jobs import LOCAL_TARGET, execute
from strata.pipeline.run import run_pipeline
from strata.shards import load_manifest
from strata.spec.pipeline import PipelineJob
from strata.storage import Location
from tests.pipeline.helpers import WARC, MultilingualRun, broken_folder

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_cluster")]
S3_INPUTS = [f"s3://data/in/{WARC.name}", "s3://data/in/broken"]
SMALL_RUN_DOCUMENTS = 12


def _job(inputs: str, out: str, **sections: object) -> PipelineJob:
    """A small job without language ID or quality filters (nothing it reads is dropped)."""
    return PipelineJob.model_validate(
        {
            **sections,
            "kind": "pipeline",
            "name": "object-storage",
            "seed": 3,
            "input": {"paths": [inputs]},
            "language": {"enabled": False},
            "quality": {
                name: {"enabled": False} for name in ("gopher_repetition", "gopher", "c4", "fineweb")
            },
            "tokenizer": {"vocab_size": 512},
            "shards": {"tokens_per_shard": 4096},
            "output": {"dir": out},
        }
    )


def _client(service: str) -> Any:
    import boto3

    return boto3.client(service)


@pytest.fixture(scope="module")
def s3(object_store_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 on the port of object_store_env, with buckets `data` and `denied` (refused to
    the user of the `denied_user` fixture), each holding the multilingual job's inputs under
    `in/` (the WARC, and the broken files under `in/broken/`) and a few demo documents under
    `small/`; yields the endpoint."""
    from moto.server import ThreadedMotoServer

    broken = broken_folder(tmp_path_factory.mktemp("inputs"))
    lines = Path("data/demo/corpus.jsonl").read_text(encoding="utf-8").splitlines()[:SMALL_RUN_DOCUMENTS]
    objects = {
        f"in/{WARC.name}": WARC.read_bytes(),
        **{f"in/broken/{f.name}": f.read_bytes() for f in broken.iterdir()},
        "small/docs.jsonl": ("\n".join(lines) + "\n").encode(),
    }
    endpoint = object_store_env["AWS_ENDPOINT_URL"]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(endpoint.rsplit(":", 1)[1]), verbose=False)
    server.start()
    try:
        client = _client("s3")
        for bucket in ("data", "denied"):
            client.create_bucket(Bucket=bucket)
            for key, body in objects.items():
                client.put_object(Bucket=bucket, Key=key, Body=body)
        yield endpoint
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3_run(s3: str, multilingual_run: MultilingualRun) -> dict[str, Any]:
    """The multilingual job from s3://data/in to s3://data/out, through `strata exec`'s code
    (checks, run records, start) on the package's Ray: its stats."""
    job = multilingual_run.job.with_values({"input.paths": S3_INPUTS, "output.dir": "s3://data/out"})
    return execute(job, LOCAL_TARGET)


def _object(key: str) -> bytes:
    return bytes(_client("s3").get_object(Bucket="data", Key=key)["Body"].read())


def _keys(prefix: str) -> list[str]:
    pages = _client("s3").get_paginator("list_objects_v2").paginate(Bucket="data", Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_s3_job_writes_the_shards_of_the_local_job(
    multilingual_run: MultilingualRun, s3_run: dict[str, Any]
) -> None:
    local_out = multilingual_run.out
    local = load_manifest(local_out / "shards")
    remote = json.loads(_object("out/shards/manifest.json"))
    assert len(local["shards"]) > 1
    assert [(s["sha256"], s["idx_sha256"]) for s in remote["shards"]] == [
        (s["sha256"], s["idx_sha256"]) for s in local["shards"]
    ]
    for shard in remote["shards"]:
        assert _object(f"out/shards/{shard['bin']}") == (local_out / "shards" / shard["bin"]).read_bytes()
    assert _object("out/tokenizer.json") == (local_out / "tokenizer.json").read_bytes()
    assert _object("out/stats/pipeline.png")[:4] == b"\x89PNG"
    assert json.loads(_object("out/stats/pipeline.json"))["tokens"] == s3_run["tokens"]
    assert s3_run["tokens"] == multilingual_run.stats["tokens"]
    assert s3_run["stages"]["minhash_dedup"] == multilingual_run.stats["stages"]["minhash_dedup"]
    assert not Path("s3:").exists()  # nothing went to a local folder named after the URI


def test_bad_records_on_s3_are_quarantined_and_counted(
    multilingual_run: MultilingualRun, s3_run: dict[str, Any]
) -> None:
    docs = s3_run["documents"]
    assert docs == multilingual_run.stats["documents"]
    assert (
        docs["quarantined_invalid_utf8"],
        docs["quarantined_invalid_json"],
        docs["quarantined_no_text"],
    ) == (
        2,
        1,
        1,
    )
    local = (multilingual_run.out / "quarantine.jsonl").read_text().splitlines()
    quarantine = [json.loads(line) for line in _object("out/quarantine.jsonl").decode().splitlines()]
    moved = {str(multilingual_run.broken): S3_INPUTS[1], str(WARC): S3_INPUTS[0]}

    def on_s3(source: str) -> str:
        for local_path, uri in moved.items():
            source = source.replace(local_path, uri)
        return source

    assert quarantine and all(q["source"].startswith("s3://data/in/") for q in quarantine)
    assert sorted(q["source"] for q in quarantine) == sorted(on_s3(json.loads(q)["source"]) for q in local)
    assert not [k for k in _keys("out/") if ".parts/" in k or "write-check" in k]


def test_strata_exec_writes_the_run_records_on_s3(s3_run: dict[str, Any]) -> None:
    manifest = json.loads(_object("out/run-manifest.json"))
    assert manifest["job_file"] == "s3://data/out/job.yaml"
    assert manifest["job"]["output"]["dir"] == "s3://data/out"
    assert manifest["job"]["input"]["paths"] == S3_INPUTS
    assert manifest["inputs"] == []  # objects are not fingerprinted, only local files
    assert yaml.safe_load(_object("out/job.yaml")) == manifest["job"]
    assert not Path("s3:").exists()


def _files_holding(secret: bytes, root: Path) -> list[str]:
    holding = []
    for path in root.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink() and secret in path.read_bytes():
                holding.append(str(path))
        except OSError:  # a file Ray removed meanwhile
            continue
    return holding


def test_the_secret_key_is_in_no_file_of_ray_or_of_the_output(
    ray_cluster: Path, object_store_env: dict[str, str], s3_run: dict[str, Any]
) -> None:
    secret = object_store_env["AWS_SECRET_ACCESS_KEY"].encode()
    assert any(ray_cluster.rglob("*.log")) or any(ray_cluster.rglob("*.out"))  # Ray's logs are here
    assert _files_holding(secret, ray_cluster) == []
    keys = _keys("out/")
    assert "out/run-manifest.json" in keys and "out/shards/manifest.json" in keys
    assert [k for k in keys if secret in _object(k)] == []


def test_strata_run_writes_its_outputs_and_records_on_s3(
    s3: str, object_store_env: dict[str, str], tmp_path: Path
) -> None:
    """`strata run` (a private Ray, `strata exec` in a child process) of a small job whose
    output.dir is on S3, started from an empty folder that must stay empty."""
    job_file = tmp_path / "job.yaml"
    # Fewer stages, fewer Ray Data operators to start: only where things go is checked here.
    lighter = {
        "extract": {"enabled": False},
        "dedup": {"exact": {"enabled": False}, "minhash": {"enabled": False}},
    }
    job = _job("s3://data/small", "s3://data/run-out", **lighter)
    job_file.write_text(yaml.safe_dump(job.model_dump(mode="json")))
    result = subprocess.run(
        [sys.executable, "-m", "strata", "run", str(job_file)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    keys = _keys("run-out/")
    for name in (
        "run-manifest.json",
        "job.yaml",
        "stats/pipeline.json",
        "shards/manifest.json",
        "tokenizer.json",
    ):
        assert f"run-out/{name}" in keys
    manifest = json.loads(_object("run-out/run-manifest.json"))
    assert manifest["job_file"] == "s3://data/run-out/job.yaml"
    stats = json.loads(_object("run-out/stats/pipeline.json"))
    assert stats["documents"]["total"] == SMALL_RUN_DOCUMENTS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.yaml"]  # no local `s3:` folder
    assert object_store_env["AWS_SECRET_ACCESS_KEY"] not in result.stdout + result.stderr


@pytest.mark.parametrize("size", [10, 12 * 2**20])  # one PUT; a multipart upload (s3fs: 5 MiB parts)
def test_a_write_that_fails_midway_leaves_no_object(s3: str, size: int) -> None:
    # fsspec's own context manager uploads what was written when the block raises (seen:
    # every size left a partial object before Location.open_write discarded it).
    target = Location(f"s3://data/partial/{size}.bin")
    with pytest.raises(RuntimeError, match="the writer dies"), target.open_write() as stream:
        stream.write(b"x" * size)
        raise RuntimeError("the writer dies")
    assert _keys("partial/") == []
    assert _client("s3").list_multipart_uploads(Bucket="data").get("Uploads", []) == []


@pytest.mark.parametrize(
    ("inputs_uri", "named"),
    [
        ("s3://data/missing/", "s3://data/missing/"),
        ("s3://data/in/missing.jsonl", "s3://data/in/missing.jsonl"),
        ("s3://no-such-bucket/in", "s3://no-such-bucket/in"),
    ],
)
def test_missing_object_or_prefix_is_refused_before_work(s3: str, inputs_uri: str, named: str) -> None:
    with pytest.raises(JobError, match=f"{named}: no such"):
        run_pipeline(_job(inputs_uri, "s3://data/refused-out"))
    assert "Contents" not in _client("s3").list_objects_v2(Bucket="data", Prefix="refused-out/")


@pytest.fixture(scope="module")
def data_only_key(s3: str) -> dict[str, str]:
    """The access key of an IAM user allowed only the bucket `data`."""
    iam = _client("iam")
    iam.create_user(UserName="pipeline")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": ["arn:aws:s3:::data", "arn:aws:s3:::data/*"]}
        ],
    }
    iam.put_user_policy(UserName="pipeline", PolicyName="data-only", PolicyDocument=json.dumps(policy))
    return dict(iam.create_access_key(UserName="pipeline")["AccessKey"])


@pytest.fixture
def denied_user(s3: str, data_only_key: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process acts as the user of `data_only_key`, with moto's authorization on; both
    are undone afterwards."""
    import s3fs

    _authorize(s3, "0")  # every request from now on is checked against IAM
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", data_only_key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", data_only_key["SecretAccessKey"])
    s3fs.S3FileSystem.clear_instance_cache()  # the cached client holds the credentials it started with
    try:
        yield
    finally:
        _authorize(s3, "inf")
        s3fs.S3FileSystem.clear_instance_cache()


def _authorize(endpoint: str, after_requests: str) -> None:
    """moto's switch: check credentials and IAM policies after this many requests ("inf": never)."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=after_requests.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


@pytest.mark.usefixtures("denied_user")
@pytest.mark.parametrize(
    ("inputs_uri", "out", "named"),
    [
        ("s3://denied/in", "s3://data/denied-out", "s3://denied/in"),
        ("s3://data/in", "s3://denied/out", "s3://denied/out"),
    ],
)
def test_denied_bucket_is_refused_before_work(inputs_uri: str, out: str, named: str) -> None:
    with pytest.raises(JobError, match=f"{named}: access denied"):
        run_pipeline(_job(inputs_uri, out))


def test_wrong_credentials_are_refused(s3: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import s3fs

    _authorize(s3, "0")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        with pytest.raises(JobError, match="s3://data/out-wrong: access denied"):
            run_pipeline(_job("s3://data/in", "s3://data/out-wrong"))
    finally:
        _authorize(s3, "inf")
        s3fs.S3FileSystem.clear_instance_cache()
