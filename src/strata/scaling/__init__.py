"""Scaling laws, the compute-optimal planner and sweep fitting: pure functions, no I/O."""
