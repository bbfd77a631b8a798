"""Quality filters: each a `Filter` subclass with one `keep` hook."""
