"""rnnkit.tasks: one module per task, the :class:`Task` contract and run folders.

Each task module holds the task's data handling (files to batches), model factory, loss,
evaluation and :class:`Predictor`; tasks are found by name through entry points
(:mod:`rnnkit.tasks.registry`).
"""

from rnnkit.tasks.base import Option, Predictor, Report, StepOutput, Task, TaskError
from rnnkit.tasks.registry import get_task, task_names

__all__ = [
    "Option",
    "Predictor",
    "Report",
    "StepOutput",
    "Task",
    "TaskError",
    "get_task",
    "task_names",
]
