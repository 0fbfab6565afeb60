"""The worker process's own log (never the jobs' output): structlog, configured once.

JSON lines when stdout is not a terminal, readable console output when it is. Standard
library loggers (grpc, asyncio) go through the same processors, so every line of the process
log has one format.

A job's secrets never reach it: tracebacks are rendered without local variables (a frame's
locals may hold a job's configuration), and every rendered line of a task working for an
attempt is masked with that attempt's secrets
(:func:`batchyard.worker.output.masking.mask_log_event`).
"""

from __future__ import annotations

import logging
import sys

import structlog

from batchyard.config import Flag, choice
from batchyard.worker.output.masking import mask_log_event

LOG_FORMAT = Flag(
    "log-format", choice("auto", "json", "console"), "process log format", default="auto"
)
LOG_LEVEL = Flag(
    "log-level", choice("debug", "info", "warning", "error"), "process log level", default="info"
)
FLAGS = (LOG_FORMAT, LOG_LEVEL)


def configure_process_logging(log_format: str = "auto", level: int | str = logging.INFO) -> None:
    """Configures structlog and stdlib logging for this process (only the first call acts)."""
    if structlog.is_configured():
        return
    json_output = log_format == "json" or (log_format == "auto" and not sys.stdout.isatty())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor
    if json_output:
        shared.append(
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        )
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                mask_log_event,  # the event's values, structured tracebacks included
                renderer,
                mask_log_event,  # what the renderer added (a console traceback)
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
