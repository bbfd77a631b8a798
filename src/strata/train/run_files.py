"""Names of the files a finished training run leaves in its `output.dir` for `strata export`
(no torch, no JAX: both trainers and the exporter import them)."""

WEIGHTS = "model.pt"  # the whole model's torch state dict (the DeepSpeed trainer's rank 0)
WEIGHTS_NPZ = "model.npz"  # the same names and shapes as numpy fp32 arrays (the JAX trainer)
MODEL_CONFIG = "model-config.json"  # the model's shape (strata.spec.models.describe), beside them
