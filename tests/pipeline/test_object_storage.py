"""The pipeline on object storage: an S3 server (moto's, on loopback) holds the inputs and
receives the outputs. The same job on local files and on `s3://` gives the same shards; a
missing object or prefix and a denied bucket are refused before any work, naming the URI."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strata.errors import JobError
from strata.pipeline.run import run_pipeline
from strata.shards import load_manifest
from strata.spec.pipeline import PipelineJob

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_cluster")]
DOCUMENTS = 40
BAD_LINES = b'{"id": "x", "text": "caf\xe9"}\n{oops\n{"id": "y"}\n'


def _job(inputs: str, out: str) -> PipelineJob:
    return PipelineJob.model_validate(
        {
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
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inputs") / "in"
    folder.mkdir()
    lines = Path("data/demo/corpus.jsonl").read_text(encoding="utf-8").splitlines()[:DOCUMENTS]
    (folder / "docs.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "bad.jsonl").write_bytes(BAD_LINES)
    return folder


@pytest.fixture(scope="module")
def s3(object_store_env: dict[str, str], inputs: Path) -> Iterator[str]:
    """moto's S3 on the port of object_store_env, with buckets `data` (inputs under `in/`) and
    `denied` (refused to the user of the `denied_user` fixture); yields the endpoint."""
    from moto.server import ThreadedMotoServer

    endpoint = object_store_env["AWS_ENDPOINT_URL"]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(endpoint.rsplit(":", 1)[1]), verbose=False)
    server.start()
    try:
        client = _client("s3")
        for bucket in ("data", "denied"):
            client.create_bucket(Bucket=bucket)
            for file in inputs.iterdir():
                client.put_object(Bucket=bucket, Key=f"in/{file.name}", Body=file.read_bytes())
        yield endpoint
    finally:
        server.stop()


@pytest.fixture(scope="module")
def runs(s3: str, inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run on local files (output in `local_out`) and one from s3://data/in to
    s3://data/out: their stats."""
    local_out = tmp_path_factory.mktemp("local-out")
    return {
        "local": run_pipeline(_job(str(inputs), str(local_out))),
        "s3": run_pipeline(_job("s3://data/in", "s3://data/out")),
        "local_out": local_out,
    }


def _object(key: str) -> bytes:
    return bytes(_client("s3").get_object(Bucket="data", Key=key)["Body"].read())


def test_s3_job_writes_the_shards_of_the_local_job(runs: dict[str, Any]) -> None:
    local_out = runs["local_out"]
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
    assert json.loads(_object("out/stats/pipeline.json"))["tokens"] == runs["s3"]["tokens"]
    assert runs["s3"]["tokens"] == runs["local"]["tokens"]
    assert not Path("s3:").exists()  # nothing went to a local folder named after the URI


def test_bad_records_on_s3_are_quarantined_and_counted(runs: dict[str, Any]) -> None:
    docs = runs["s3"]["documents"]
    assert docs == runs["local"]["documents"]
    assert (
        docs["quarantined_invalid_utf8"],
        docs["quarantined_invalid_json"],
        docs["quarantined_no_text"],
    ) == (
        1,
        1,
        1,
    )
    quarantine = [json.loads(line) for line in _object("out/quarantine.jsonl").decode().splitlines()]
    assert [q["source"] for q in quarantine] == [f"s3://data/in/bad.jsonl:{n}" for n in (1, 2, 3)]
    keys = [o["Key"] for o in _client("s3").list_objects_v2(Bucket="data", Prefix="out/")["Contents"]]
    assert not [k for k in keys if ".parts/" in k or "write-check" in k]


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
