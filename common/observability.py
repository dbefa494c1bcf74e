"""Structured logging and metrics (AWS Lambda Powertools), with the redaction guard.

One logger and one metrics object per container. Log lines carry the secret ARN, step,
version token, engine and user as keys; the formatter masks every registered secret in
the finished line, and the process guard masks them in every other logger's records
(botocore's included) and keeps the SDK's wire logs out even under a DEBUG root logger.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from common.errors import ConfigurationError
from common.redaction import install_process_guard, redact
from common.settings import log_level, service_name

if TYPE_CHECKING:
    import logging

DEFAULT_NAMESPACE = "SecretsRotation"


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter with every registered secret masked in the output."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _level() -> str | None:
    """The level for the logger built at import: a bad ``POWERTOOLS_LOG_LEVEL`` falls back
    to INFO here (Powertools would raise a bare ValueError, and an import error is no
    failed step) and fails each step, named, through ``Settings.from_environ``."""
    try:
        return log_level(os.environ)
    except ConfigurationError:
        return "INFO"


logger = Logger(
    service=service_name(os.environ),
    level=_level(),
    logger_formatter=RedactingFormatter(),
)
metrics = Metrics(
    service=service_name(os.environ),
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE),
)
install_process_guard(self_masking=logger.name)
