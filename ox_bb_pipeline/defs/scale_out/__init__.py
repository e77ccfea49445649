"""Scale-out: the scan stage on Celery workers over a Redis broker (production only)."""
