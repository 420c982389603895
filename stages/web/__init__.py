"""Web: what serves people and machines over HTTP while a job runs: the live view (page, MJPEG,
/status.json) and the Prometheus metrics it serves at /metrics."""
