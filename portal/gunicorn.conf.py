"""gunicorn's settings for the portal's web container (the Dockerfile and docker-compose use this file)."""

bind = "0.0.0.0:8000"
workers = 3
accesslog = "-"
# The path without its query string (%(U)s, not %(r)s) and no referrer: Entra ID's answer on
# /accounts/callback/ carries the authorization code and state in the query.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss "%(a)s"'


def child_exit(server, worker):
    """With PROMETHEUS_MULTIPROC_DIR set, a dead worker's live gauges leave /metrics (its counters stay)."""
    import os

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
