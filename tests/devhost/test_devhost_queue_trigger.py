"""The development host runs queue triggers against Azurite like the Functions host."""

from __future__ import annotations

import base64

import pytest
from devhost_stack import Stack

pytestmark = pytest.mark.stack


def test_messages_are_processed_once_and_deleted(stack: Stack) -> None:
    """Every message reaches the function once, with its metadata, and leaves the queue."""
    texts = [f"message {i}" for i in range(10)]
    stack.send(stack.input_queue, *texts)

    host = stack.run_until_idle()

    records = stack.records()
    assert sorted(r["text"] for r in records) == sorted(texts)
    assert all(r["dequeue_count"] == 1 for r in records)
    assert all(r["has_pop_receipt"] and r["has_insertion_time"] for r in records)
    assert stack.peek(stack.input_queue) == []
    assert host.stderr.count("record ok") == len(texts)


def test_message_encoding_none_passes_the_text_as_utf8(stack: Stack) -> None:
    """With messageEncoding none the body is the message text encoded as UTF-8."""
    stack.send(stack.input_queue, "héllo wörld ✓")

    stack.run_until_idle()

    [record] = stack.records()
    assert base64.b64decode(record["b64"]) == "héllo wörld ✓".encode()


def test_message_encoding_base64_decodes_the_body(stack: Stack) -> None:
    """With messageEncoding base64 the body is the decoded bytes, binary included."""
    stack.set_queue_options(messageEncoding="base64")
    payload = b"\x00\xffbinary \xe2\x9c\x93"
    stack.send(stack.input_queue, base64.b64encode(payload).decode("ascii"))

    stack.run_until_idle()

    [record] = stack.records()
    assert base64.b64decode(record["b64"]) == payload


def test_text_that_is_not_base64_goes_to_poison_without_running(stack: Stack) -> None:
    """In base64 mode an undecodable message is poisoned at once, as the real host does."""
    stack.set_queue_options(messageEncoding="base64")
    stack.send(stack.input_queue, "plain text, not base64!")

    host = stack.run_until_idle()

    assert stack.records() == []
    assert stack.peek(stack.poison_queue) == ["plain text, not base64!"]
    assert stack.peek(stack.input_queue) == []
    assert "not valid base64" in host.stderr


def test_a_failing_message_is_retried_then_moved_to_poison_with_its_text(stack: Stack) -> None:
    """A message that keeps failing runs maxDequeueCount times, then lands on -poison."""
    stack.send(stack.input_queue, "please fail", "fine")

    host = stack.run_until_idle()

    attempts = [r["dequeue_count"] for r in stack.records() if r["text"] == "please fail"]
    assert sorted(attempts) == [1, 2]
    assert stack.peek(stack.poison_queue) == ["please fail"]
    assert stack.peek(stack.input_queue) == []
    assert "failed" in host.stderr
    assert "(dequeue 1/2)" in host.stderr
    assert "RuntimeError: fixture failure for 'please fail'" in host.stderr
    assert f"moved to {stack.poison_queue}" in host.stderr


def test_a_failed_message_waits_for_the_visibility_timeout(stack: Stack) -> None:
    """After a failure below maxDequeueCount the message is invisible for visibilityTimeout."""
    stack.set_queue_options(visibilityTimeout="00:10:00")
    stack.send(stack.input_queue, "please fail")

    host = stack.run_until_idle()

    assert [r["dequeue_count"] for r in stack.records()] == [1]
    assert stack.peek(stack.input_queue) == []  # still in the queue, but invisible
    queue = stack.queue(stack.input_queue)
    assert queue.get_queue_properties().approximate_message_count == 1
    assert "retry after 00:10:00" in host.stderr


def test_a_message_already_past_max_dequeue_count_is_poisoned_without_running(
    stack: Stack,
) -> None:
    """A message a dead host left behind with too many dequeues goes straight to poison."""
    stack.send(stack.input_queue, "left over")
    queue = stack.queue(stack.input_queue)
    for _ in range(2):  # two receives that never completed, as if a host had been killed
        [message] = queue.receive_messages(max_messages=1)
        queue.update_message(message, visibility_timeout=0)

    stack.run_until_idle()

    assert stack.records() == []
    assert stack.peek(stack.poison_queue) == ["left over"]


def test_settings_file_values_load_but_the_real_environment_wins(stack: Stack) -> None:
    """Values come from the settings file unless the environment already sets them."""
    stack.send(stack.input_queue, "hi")

    host = stack.run_until_idle(FIXTURE_GREETING="from-env")

    [record] = stack.records()
    assert record["greeting"] == "from-env"
    assert record["file_only"] == "file-only"
    assert "FIXTURE_GREETING from the environment overrides the settings file" in host.stderr


def test_local_settings_json_is_preferred_to_the_sample(stack: Stack) -> None:
    """local.settings.json, when present, is read instead of local.settings.sample.json."""
    sample = (stack.app_dir / "local.settings.sample.json").read_text(encoding="utf-8")
    (stack.app_dir / "local.settings.json").write_text(
        sample.replace('"file-only"', '"from-local-settings"'), encoding="utf-8"
    )
    stack.send(stack.input_queue, "hi")

    stack.run_until_idle()

    [record] = stack.records()
    assert record["file_only"] == "from-local-settings"


def test_at_most_batch_size_plus_new_batch_threshold_messages_run_at_once(stack: Stack) -> None:
    """With batchSize 4 and newBatchThreshold 2, no more than 6 invocations overlap."""
    stack.send(stack.input_queue, *[f"sleep:0.6 #{i}" for i in range(14)])

    stack.run_until_idle()

    records = stack.records()
    starts = {r["id"]: r["at"] for r in records if r["stage"] == "started"}
    ends = {r["id"]: r["at"] for r in records if r["stage"] == "done"}
    assert len(starts) == len(ends) == 14
    overlap = max(
        sum(1 for other in starts if starts[other] <= starts[one] < ends[other]) for one in starts
    )
    assert 1 < overlap <= 6


def test_an_invocation_longer_than_function_timeout_fails_and_is_retried(stack: Stack) -> None:
    """functionTimeout cancels the invocation and counts it as a failure."""
    host_json = stack.app_dir / "host.json"
    host_json.write_text(
        host_json.read_text(encoding="utf-8").replace('"00:01:00"', '"00:00:01"'),
        encoding="utf-8",
    )
    stack.send(stack.input_queue, "sleep:30")

    host = stack.run_until_idle()

    assert [r["stage"] for r in stack.records()] == ["started", "started"]
    assert stack.peek(stack.poison_queue) == ["sleep:30"]
    assert "timed out after 00:00:01 (host.json functionTimeout)" in host.stderr
