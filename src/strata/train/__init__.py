"""Training: a GPT over the pipeline's shards with DeepSpeed ZeRO on Ray Train workers."""
