"""Quality metrics."""

from .toy import sliced_wasserstein

__all__ = ["sliced_wasserstein"]
