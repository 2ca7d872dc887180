"""The scoring pipeline and its edges: batch jobs, Dask, drift monitoring and the served model."""
