"""Package: the `ray_cluster` fixture (conftest.py) lives as long as the tests of this folder."""
