"""fastem's benchmarks.

``bench_*.py`` are the asv suite (see ``asv.conf.json`` at the repository
root); ``compare.py`` is the side-by-side comparison with scikit-learn and the
optional peers (faiss-cpu, scikit-learn-intelex/daal4py). ``_data.py`` holds
the deterministic data generators and initial parameters both use.
"""
