"""Quality metrics."""

from .structured import copied_fraction, distinct_ngrams, distinct_samples
from .toy import sliced_wasserstein

__all__ = ["sliced_wasserstein", "copied_fraction", "distinct_ngrams", "distinct_samples"]
