"""The registry of secret values that must never be printed, and the redactor.

Every password parsed or generated and every ``RotationToken`` received is registered
here. The log formatter masks registered values in every finished line of ours, and
:func:`install_process_guard` masks every record any logger of the process creates
(message, traceback and stack), and keeps the SDK's and drivers' wire loggers above
DEBUG. Messages are built so that no credential is put into a log field or an error in
the first place: the mask is a safety net, not the defence.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from typing import Any

MASK = "***"
_MAX_REMEMBERED = 256
# Shorter values are masked only where they stand alone (between non-word characters):
# a three-letter password must not turn every word that contains it into ***.
_SHORT = 6
# Echoed inputs (a Step, a token, a secret id) are cut to this many characters.
ECHO_LIMIT = 80

_registered: OrderedDict[str, None] = OrderedDict()
_lock = threading.Lock()
_pattern: re.Pattern[str] | None = None


def register(value: str | None) -> None:
    """Remember ``value`` as secret for the rest of the container's life (bounded).
    Thread-safe: an application's workers register and mask at the same time."""
    global _pattern  # noqa: PLW0603 - one registry per process, rebuilt lazily
    if not value:
        return
    with _lock:
        if value in _registered:
            _registered.move_to_end(value)
            return
        _registered[value] = None
        while len(_registered) > _MAX_REMEMBERED:
            _registered.popitem(last=False)
        _pattern = None


def _forms(value: str) -> set[str]:
    """The ways ``value`` can be written into a log line: as is, JSON-escaped with and
    without ``ensure_ascii`` (Powertools writes non-ASCII as is), JSON-escaped twice (a
    secret string inside a request body), and as Python reprs of the text and its UTF-8
    bytes (what a logged ``dict`` or ``bytes`` body shows)."""
    once = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    twice = {json.dumps(text, ensure_ascii=only_ascii)[1:-1] for text in once for only_ascii in (True, False)}
    forms = once | twice
    for text in once | twice:
        forms.add(repr(text)[1:-1])
        forms.add(repr(text.encode("utf-8", "surrogatepass"))[2:-1])
    return {form for form in forms if form}


def _compiled() -> re.Pattern[str] | None:
    global _pattern  # noqa: PLW0603 - see register
    with _lock:
        values, pattern = list(_registered), _pattern
    if pattern is not None or not values:
        return pattern
    alternatives = []
    # Longest first, so that a value containing another is masked whole.
    for form in sorted({f for v in values for f in _forms(v)}, key=len, reverse=True):
        escaped = re.escape(form)
        alternatives.append(escaped if len(form) >= _SHORT else rf"(?<!\w){escaped}(?!\w)")
    pattern = re.compile("|".join(alternatives))
    with _lock:
        # Kept only if nothing was registered meanwhile (that registration reset it).
        if _pattern is None and len(_registered) == len(values) and list(_registered) == values:
            _pattern = pattern
    return pattern


def redact(text: str) -> str:
    """``text`` with every registered value, in any of its written forms, replaced by ``***``."""
    pattern = _compiled()
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` cut to ``limit`` characters for echoing an input back in a message."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


# botocore's DEBUG records carry whole request and response bodies: a GetSecretValue
# response is logged before any code of ours has seen (and registered) the value in it, so
# no mask can catch it. urllib3's carry URLs and headers, the database drivers' their
# commands and connection settings. Lambda's advanced logging
# controls set the root logger's level, so these loggers are held at INFO explicitly
# whatever the root level is.
WIRE_LOGGERS = (
    "botocore",
    "boto3",
    "urllib3",
    "s3transfer",
    "aws_lambda_powertools.utilities.parameters",
    "pymongo",
    "pymysql",
    "redshift_connector",
)


def install_process_guard(self_masking: str = "") -> None:
    """Mask registered secrets in every log record the process creates, from any logger,
    and keep the AWS SDK's wire loggers above DEBUG. Idempotent. Records of the logger
    named ``self_masking`` keep their exception for its formatter, which masks the whole
    finished line (tracebacks included)."""
    for name in WIRE_LOGGERS:
        wire = logging.getLogger(name)
        if wire.level == logging.NOTSET or wire.level < logging.INFO:
            wire.setLevel(logging.INFO)
    factory = logging.getLogRecordFactory()
    if getattr(factory, "redacting", False):
        return

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        if _registered:
            _mask_record(record, keep_exception=record.name == self_masking)
        return record

    redacting_factory.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_factory)


_TRACEBACKS = logging.Formatter()


def _mask_record(record: logging.LogRecord, *, keep_exception: bool) -> None:
    """Mask a record in place: its message (whatever object it is), its stack, and its
    traceback, rendered to text now (unless ``keep_exception``) so that no handler
    renders the raw one."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record is logging's to report, not ours
        return
    masked = redact(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and record.exc_info[0] is not None and not keep_exception:
        record.exc_text = redact(_TRACEBACKS.formatException(record.exc_info))
        record.exc_info = None
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
