"""The Celery app of scripts/bench-celery.sh: broker and result backend on one private Redis
(CELERY_BENCH_REDIS_URL), late acks, one task reserved at a time, results stored."""
import os

from celery import Celery

URL = os.environ.get("CELERY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
app = Celery("tasks", broker=URL, backend=URL)
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=False,
    broker_connection_retry_on_startup=True,
)


@app.task
def echo(value):
    """The no-op job: returns its argument (Vertebra's /vertebra/echo)."""
    return value
