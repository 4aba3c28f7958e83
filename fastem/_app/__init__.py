"""fastem's application layer: users of the estimators, apart from them.

``cli`` (the ``fastem`` command and ``python -m fastem``), ``io`` (reading
data files), ``persistence`` (model files: ``estimator.save``,
``fastem.load``), ``select_k`` (choosing the number of clusters) and
``demo`` (the Old Faithful demo). The public API is re-exported by
``fastem``; nothing here is imported by the estimators' fitting code.
"""
