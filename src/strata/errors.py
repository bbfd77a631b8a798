"""Errors a user can act on. Each message says what is wrong, where, and how to fix it."""


class StrataError(Exception):
    """Base of every error the CLI reports as one line with exit code 2."""


class SpecError(StrataError):
    """A declaration (stack config or job file) is invalid."""


class CatalogError(StrataError):
    """An instance or slice type is not in the catalog."""


class ClusterError(StrataError):
    """Bringing a cluster up or down, or reaching it, failed."""


class JobError(StrataError):
    """A job could not run: its inputs are missing or it failed."""
