"""Poison-message bookkeeping: message fingerprints, and how dead landings are counted."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enms_dagster.db import connect
from enms_dagster.ingest.attempts import (
    POISON_AFTER,
    Suspect,
    begin_attempt,
    fold_attempts,
    message_fingerprint,
    note_attempt_error,
    settle_attempt,
)

# MQTT topics are UTF-8 without NUL
topics = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=40
)


@given(topics, st.binary(max_size=64), topics, st.binary(max_size=64))
def test_different_messages_have_different_fingerprints(topic_a, payload_a, topic_b, payload_b):
    same = (topic_a, payload_a) == (topic_b, payload_b)
    assert (message_fingerprint(topic_a, payload_a) == message_fingerprint(topic_b, payload_b)) == (
        same
    )


def test_a_suspect_is_poison_after_two_dead_landings():
    assert not Suspect(POISON_AFTER - 1, None).is_poison
    assert Suspect(POISON_AFTER, "boom").is_poison
    assert (
        "2 times" in Suspect(2, "boom").poison_detail and "boom" in Suspect(2, "boom").poison_detail
    )


@pytest.mark.integration
def test_only_the_landings_that_did_not_commit_count_against_their_messages(local_services):
    a, b, c = (message_fingerprint("enms/s/m/telemetry", p) for p in (b"a", b"b", b"c"))
    with connect(local_services.database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE raw.ingest_attempts, raw.ingest_suspects")
        settled, twice, died = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        begin_attempt(conn, "me", settled, [a, b, c])
        with conn.transaction():
            settle_attempt(conn, settled)
        begin_attempt(conn, "me", twice, [a, b, b])  # died; b twice in it counts once
        begin_attempt(conn, "me", twice, [a, b, b])  # written again by a retry: still one
        begin_attempt(conn, "me", died, [a])  # died with a known error
        note_attempt_error(conn, died, "boom")
        begin_attempt(conn, "someone-else", uuid.uuid4(), [c])  # another's landing in progress

        suspects = fold_attempts(conn, "me")

        assert suspects == {a: Suspect(2, "boom"), b: Suspect(1, None)}
        assert suspects[a].is_poison and not suspects[b].is_poison
        (left,) = conn.execute("SELECT array_agg(client_id) FROM raw.ingest_attempts").fetchone()
        assert left == ["someone-else"]
        assert fold_attempts(conn, "me") == suspects  # folding again counts nothing twice
        conn.execute("TRUNCATE raw.ingest_attempts, raw.ingest_suspects")
