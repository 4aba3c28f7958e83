"""The estimators the benchmarks measure: fastem's public API, imported in one
place (the asv suite and compare.py both go through here)."""
from fastem import GaussianMixture, KMeans, MiniBatchKMeans, kmeans_plusplus

__all__ = ["GaussianMixture", "KMeans", "MiniBatchKMeans", "kmeans_plusplus"]
