"""The retry schedule and the webhook client, without a database or a broker: back-off grows
and is capped, deliveries give up when they should, and whatever bytes a webhook answers, the
client returns only on a 2xx and otherwise raises an ordinary exception."""

from __future__ import annotations

import datetime as dt
import re
import socket
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enms_dagster.anomalies.alert_delivery import (
    DeliveryPolicy,
    alert_id_for,
    describe_error,
    post_webhook,
)

policies = st.builds(
    DeliveryPolicy,
    retry_base_s=st.floats(1, 600),
    retry_cap_s=st.floats(1, 86_400),
    max_attempts=st.integers(1, 100),
    give_up_after=st.timedeltas(dt.timedelta(minutes=1), dt.timedelta(days=30)),
)


@given(policies, st.integers(1, 10_000))
def test_back_off_doubles_until_the_cap(policy, attempts):
    delay = policy.retry_delay(attempts).total_seconds()  # to the microsecond
    doubled = policy.retry_base_s * 2.0 ** min(attempts - 1, 64)
    assert delay == pytest.approx(min(doubled, policy.retry_cap_s), abs=1e-6)
    assert policy.retry_delay(attempts + 1).total_seconds() >= delay


@given(policies, st.integers(1, 200), st.timedeltas(dt.timedelta(0), dt.timedelta(days=60)))
def test_a_delivery_gives_up_at_its_attempt_limit_or_age_and_not_before(policy, attempts, age):
    wait = policy.after_failure(attempts, age)
    gives_up = attempts >= policy.max_attempts or age >= policy.give_up_after
    assert (wait is None) == gives_up


def test_an_alert_id_is_the_same_for_the_same_event_and_severity_only():
    first = alert_id_for("CMP-01.out_of_hours.20260310T2100Z", "low")
    assert first == alert_id_for("CMP-01.out_of_hours.20260310T2100Z", "low")
    assert first != alert_id_for("CMP-01.out_of_hours.20260310T2100Z", "high")
    assert first != alert_id_for("CMP-02.out_of_hours.20260310T2100Z", "low")


@given(st.text())
def test_an_error_text_is_printable_whatever_the_exception_carried(text):
    described = describe_error(OSError(text))
    assert described.isprintable() and "\x00" not in described


class OneShotServer:
    """Answers each connection with ``reply`` after reading the request's headers, then
    closes."""

    def __init__(self) -> None:
        self.reply = b""
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with client:
                client.settimeout(5)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = client.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    client.sendall(self.reply)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(10)


@pytest.fixture(scope="module")
def server():
    s = OneShotServer()
    yield s
    s.close()


_OK = re.compile(rb"HTTP/1\.[01] 2\d\d[^\r\n]*\r\n(?:[!-9;-~]+: [ -~]*\r\n)*\r\n")
replies = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda status, junk: b"HTTP/1.1 %d X\r\n" % status + junk,
        st.integers(100, 999),
        st.binary(max_size=100),
    ),
    st.sampled_from([b"HTTP/1.1 204 No Content\r\n\r\n", b"HTTP/1.0 200 OK\r\nA: b\r\n\r\n"]),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(replies)
def test_the_webhook_client_returns_only_on_a_2xx_and_otherwise_raises_an_exception(server, reply):
    server.reply = reply
    try:
        post_webhook(f"http://127.0.0.1:{server.port}/x", b"{}", "id", timeout_s=5)
    except Exception:  # noqa: BLE001 - any ordinary exception is a failed attempt
        assert not _OK.fullmatch(reply)
    else:
        assert re.match(rb"HTTP/1\.[01] 2\d\d ", reply)
