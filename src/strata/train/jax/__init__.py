"""A JAX backend for train jobs (`backend: jax`): the Llama family on a device mesh (TPU
slices; XLA's host-platform CPU devices in tests), with the torch path's parameter names,
shards, sample order, optimizer and schedule. Imports JAX; DeepSpeed is not needed."""
