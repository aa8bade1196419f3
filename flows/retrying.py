"""Retry only what a retry can fix: the task's failure must be one of the given exception types."""

from __future__ import annotations


def retry_on(*exceptions: type[BaseException]):
    """A Prefect `retry_condition_fn` that retries a failed task only when it raised one of `exceptions`
    (a timeout, a refused connection, a 5xx reply...), never on a bad file or a wrong query."""

    def condition(task, task_run, state) -> bool:
        try:
            state.result()
        except exceptions:
            return True
        except Exception:
            return False
        return False

    return condition
