"""Container and node images: the compatibility table and the rendered recipes."""
