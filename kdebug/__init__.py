"""kdebug: a shell beside a Kubernetes container that has none."""

__version__ = "0.1.0"
