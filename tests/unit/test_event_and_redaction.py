from __future__ import annotations

import pytest

from common.errors import EventFormatError
from common.redaction import MASK, redact, register
from common.rotation import RotationEvent, original_username, partner_username

EVENT = {
    "Step": "createSecret",
    "SecretId": "arn:x",
    "ClientRequestToken": "v1",
    "RotationToken": "rt-opaque-123",
}


def test_event_parses_with_and_without_rotation_token() -> None:
    parsed = RotationEvent.parse(EVENT)
    assert (parsed.step, parsed.secret_id, parsed.token, parsed.rotation_token) == (
        "createSecret",
        "arn:x",
        "v1",
        "rt-opaque-123",
    )
    assert "rt-opaque-123" not in repr(parsed)
    without = {k: v for k, v in EVENT.items() if k != "RotationToken"}
    assert RotationEvent.parse(without).rotation_token is None


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "not a JSON object"),
        ({**EVENT, "Step": "dropSecret"}, "Step 'dropSecret' is not one of"),
        ({k: v for k, v in EVENT.items() if k != "SecretId"}, "lacks 'SecretId'"),
        ({**EVENT, "ClientRequestToken": 7}, "lacks 'ClientRequestToken'"),
        ({**EVENT, "RotationToken": 7}, "'RotationToken' is not a string"),
    ],
)
def test_bad_events_are_named(event: object, message: str) -> None:
    with pytest.raises(EventFormatError, match=message):
        RotationEvent.parse(event)


def test_rotation_token_is_registered_for_redaction() -> None:
    RotationEvent.parse({**EVENT, "RotationToken": "opaque-token-xyz"})
    assert redact("token=opaque-token-xyz") == f"token={MASK}"


def test_redaction_covers_json_escaped_values() -> None:
    register('pa"ss\\word-77')
    assert redact('{"m": "pa\\"ss\\\\word-77"}') == '{"m": "***"}'
    assert redact('raw pa"ss\\word-77') == "raw ***"


def test_partner_names() -> None:
    assert partner_username("app") == "app_clone"
    assert partner_username("app_clone") == "app"
    assert original_username("app_clone") == "app"
    assert original_username("app") == "app"


def test_log_formatter_masks_registered_secrets_wherever_they_appear() -> None:
    import io

    from common.observability import logger

    register("formatter-secret-42")
    stream = io.StringIO()
    handler = logger.registered_handler
    original, handler.stream = handler.stream, stream  # type: ignore[attr-defined]
    try:
        logger.info("msg formatter-secret-42", extra={"k": "x formatter-secret-42 y"})
        try:
            raise ValueError("formatter-secret-42")
        except ValueError:
            logger.exception("failed")
    finally:
        handler.stream = original  # type: ignore[attr-defined]
    text = stream.getvalue()
    assert "formatter-secret-42" not in text
    assert text.count(MASK) >= 3


def test_redaction_covers_every_written_form_of_non_ascii_values() -> None:
    import json

    secret = 'Pä"ß\\wörd-91'
    register(secret)
    for form in (
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(json.dumps(secret))[1:-1],
        repr(secret)[1:-1],
        repr(json.dumps(secret).encode())[2:-1],
    ):
        masked = redact(f"before {form} after")
        assert form not in masked and "91" not in masked and MASK in masked


def test_short_values_are_masked_only_where_they_stand_alone() -> None:
    register("k3y")
    assert redact('{"password": "k3y"}') == '{"password": "***"}'
    assert redact("monk3yish") == "monk3yish"


def test_every_logger_of_the_process_is_masked(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    import common.observability  # noqa: F401 - installs the process guard

    register("foreign-logger-secret-5")
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("some.library").warning("got %s", {"password": "foreign-logger-secret-5"})
    assert "foreign-logger-secret-5" not in caplog.text
    assert MASK in caplog.text
    # The SDK's wire loggers stay above DEBUG whatever the root level.
    assert logging.getLogger("botocore").getEffectiveLevel() >= logging.INFO


def test_echoed_inputs_are_clipped() -> None:
    with pytest.raises(EventFormatError) as raised:
        RotationEvent.parse({**EVENT, "Step": "x" * 100_000})
    assert len(str(raised.value)) < 300


def test_a_lone_surrogate_is_registered_and_masked_without_failing() -> None:
    register("bad-\ud800-surrogate")
    assert redact("x bad-\ud800-surrogate y") == f"x {MASK} y"
    assert redact("an ordinary line") == "an ordinary line"


def test_tracebacks_and_exception_messages_of_any_logger_are_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    import common.observability  # noqa: F401 - installs the process guard

    register("traceback-secret-77")
    library = logging.getLogger("another.library")
    with caplog.at_level(logging.DEBUG):
        try:
            raise RuntimeError("failed with traceback-secret-77")
        except RuntimeError:
            library.exception("it broke")
        library.warning(RuntimeError("object message traceback-secret-77"))
    text = caplog.text + "".join(record.exc_text or "" for record in caplog.records)
    assert "traceback-secret-77" not in text
    assert "Traceback" in text and text.count(MASK) >= 2


def test_registering_and_masking_from_many_threads_at_once() -> None:
    from concurrent.futures import ThreadPoolExecutor

    def work(index: int) -> str:
        value = f"threaded-secret-{index:04d}"
        register(value)
        return redact(f"line {value}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        lines = list(pool.map(work, range(400)))
    assert lines == ["line ***"] * 400
