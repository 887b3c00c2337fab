"""Scale-out: the heavy per-image work of a stage run by Ray Data instead of one local process.

DVC still owns the DAG and each stage's outputs; a stage with ``engine: ray`` starts (or joins,
via ``RAY_ADDRESS``) a Ray cluster for its own work, reads the stores with
``ray.data.read_parquet``, holds the model in ``map_batches`` actors and writes the store layout
through a Datasink, then hands back the same results as the local engine. Ray is imported only
here and only when a stage asks for it, so the default install does not need it.
"""
