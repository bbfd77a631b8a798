"""The data pipeline: JSONL → quality filter → exact and MinHash dedup → BPE → token shards."""
