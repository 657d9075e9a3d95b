"""The plain rules: request -> spec, poll answer -> next state. No I/O, so every branch is cheap to pin down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from grokgate.catalogue.catalogue import load
from grokgate.errors import ApiError
from grokgate.jobs import render_times, states
from grokgate.jobs.schemas import GenerateRequest
from grokgate.jobs.spec import build_spec
from grokgate.upstream.base import VideoPoll
from grokgate.upstream.xai import poll_from_body

CATALOGUE = load()

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


def spec(**body: object) -> object:
    return build_spec(GenerateRequest.model_validate(body), max_image_url_bytes=10_000, catalogue=CATALOGUE)


def test_defaults_follow_the_seed() -> None:
    video = build_spec(GenerateRequest.model_validate({"prompt": " hi "}), max_image_url_bytes=10, catalogue=CATALOGUE)
    assert (video.kind, video.model, video.duration, video.prompt) == ("video", "text-to-video", 6, "hi")
    image = build_spec(
        GenerateRequest.model_validate({"prompt": "hi", "model": "text-to-image"}),
        max_image_url_bytes=10,
        catalogue=CATALOGUE,
    )
    assert (image.kind, image.duration) == ("image", None)
    assert image.echo() == {"model": "text-to-image", "prompt": "hi"}


def test_image_to_video_prompt_is_optional() -> None:
    result = build_spec(
        GenerateRequest.model_validate({"model": "image-to-video", "image_url": "https://x.test/a.png"}),
        max_image_url_bytes=100,
        catalogue=CATALOGUE,
    )
    assert result.prompt is None
    assert result.echo() == {"model": "image-to-video", "image_url": "https://x.test/a.png", "duration": 6}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "text-to-video"}, "prompt"),
        ({"model": "image-to-video"}, "image_url"),
        ({"model": "text-to-image", "prompt": "x", "duration": 3}, "duration"),
        ({"model": "text-to-video", "prompt": "x", "image_url": "https://x.test/a.png"}, "image_url"),
    ],
)
def test_cross_field_rules_name_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(ApiError) as caught:
        spec(**body)
    assert caught.value.status == 400
    assert caught.value.details["field"] == field
    assert caught.value.message.startswith(f"{field}:")


def test_pending_poll_waits_one_interval_then_processing() -> None:
    decision = states.after_poll(VideoPoll(state="pending"), now=NOW, deadline=LATER, interval=5, requested_duration=6)
    assert decision == states.Wait(status="processing", next_poll_at=NOW + timedelta(seconds=5))


def test_wait_never_goes_past_the_deadline() -> None:
    decision = states.after_silence(now=NOW, deadline=NOW + timedelta(seconds=2), delay=5, status="pending")
    assert isinstance(decision, states.Wait)
    assert decision.next_poll_at == NOW + timedelta(seconds=2)
    assert states.after_silence(now=LATER, deadline=LATER, delay=5, status="pending") == states.Fail(
        "DEADLINE_EXCEEDED", "xAI did not finish the video before the job's deadline"
    )


def test_done_poll_asks_for_the_result_to_be_stored() -> None:
    poll = VideoPoll(state="done", url="https://v.test/a.mp4", duration=6.0, cost_in_usd_ticks=3)
    decision = states.after_poll(poll, now=NOW, deadline=LATER, interval=5, requested_duration=6)
    assert decision == states.Deliver("https://v.test/a.mp4", 6, 3)
    unmeasured = VideoPoll(state="done", url="u")
    assert states.after_poll(unmeasured, now=NOW, deadline=LATER, interval=5, requested_duration=4) == states.Deliver(
        "u", 4, None
    )


def test_stored_output_keeps_ids_not_links() -> None:
    assert states.stored_output({"video": ["med_v"], "poster": ["med_p"]}, 6) == {
        "media": {"video": ["med_v"], "poster": ["med_p"]},
        "duration": 6,
    }
    assert states.stored_output({"image": ["med_i"]}, None) == {"media": {"image": ["med_i"]}}


@pytest.mark.parametrize(
    ("poll", "code"),
    [
        (VideoPoll(state="failed", error_code="internal_error", error_message="m"), "UPSTREAM_INTERNAL_ERROR"),
        (VideoPoll(state="expired"), "UPSTREAM_EXPIRED"),
        (VideoPoll(state="moderated"), "CONTENT_MODERATED"),
        (VideoPoll(state="not_found"), "UPSTREAM_NOT_FOUND"),
    ],
)
def test_endings_without_a_result_fail(poll: VideoPoll, code: str) -> None:
    decision = states.after_poll(poll, now=NOW, deadline=LATER, interval=5, requested_duration=6)
    assert isinstance(decision, states.Fail)
    assert decision.code == code


def test_back_off_grows_and_is_capped() -> None:
    delays = [states.retry_delay(5, failures) for failures in range(1, 12)]
    assert delays[:3] == [10, 20, 40]
    assert max(delays) == 60
    assert states.retry_delay(120, 3) == 120


def test_lost_requests_fail_by_kind() -> None:
    assert states.lost_request("video").code == "SUBMIT_INTERRUPTED"
    assert states.lost_request("image").code == "REQUEST_INTERRUPTED"


@pytest.mark.parametrize(
    ("status", "body", "state"),
    [
        (202, None, "pending"),
        (202, {"status": "pending", "progress": 40}, "pending"),
        (200, {"status": "queued"}, "pending"),
        (200, {"status": "done", "video": {"url": "u", "duration": 6, "respect_moderation": True}}, "done"),
        (200, {"status": "done", "video": {"url": "", "respect_moderation": False}}, "moderated"),
        (200, {"status": "failed", "error": {"code": "invalid_argument", "message": "no"}}, "failed"),
        (200, {"status": "expired"}, "expired"),
        (404, {"code": "not_found"}, "not_found"),
        (200, "garbage", "pending"),
    ],
)
def test_poll_answers_are_read_as_xai_documents_them(status: int, body: object, state: str) -> None:
    assert poll_from_body(status, body).state == state


def test_poll_progress_and_cost_are_kept() -> None:
    assert poll_from_body(202, {"status": "pending", "progress": 40}).progress == 40
    done = poll_from_body(
        200, {"status": "done", "video": {"url": "u", "duration": 6}, "usage": {"cost_in_usd_ticks": 7}}
    )
    assert (done.url, done.duration, done.cost_in_usd_ticks) == ("u", 6.0, 7)


def test_a_pending_video_is_not_asked_again_before_its_kind_is_seldom_done() -> None:
    pending = VideoPoll(state="pending")
    soon, later = NOW + timedelta(seconds=2), NOW + timedelta(seconds=30)
    waits = [
        states.after_poll(pending, now=NOW, deadline=LATER, interval=5, requested_duration=6, not_before=moment)
        for moment in (soon, later, LATER + timedelta(hours=1))
    ]
    assert [wait.next_poll_at for wait in waits if isinstance(wait, states.Wait)] == [
        NOW + timedelta(seconds=5),
        later,
        LATER,
    ]


def test_render_times_are_trusted_after_enough_videos_and_follow_the_latest() -> None:
    times = render_times.RenderTimes(keep=30, least=20, quantile=0.1)
    kind = render_times.kind_of("text-to-video", {"duration": 6, "resolution": "480p"})
    assert kind != render_times.kind_of("text-to-video", {"duration": 10, "resolution": "480p"})
    for seconds in range(40, 59):
        times.observe(kind, float(seconds))
    assert times.earliest(kind) is None  # 19 seen
    times.observe(kind, 59.0)
    assert times.earliest(kind) == 41.0  # the 2nd of 20
    for _ in range(30):
        times.observe(kind, 10.0)  # xAI got faster: only the latest 30 count
    assert times.earliest(kind) == 10.0
    assert render_times.rendered_at_least(NOW, NOW + timedelta(seconds=12)) == 12.0
    assert render_times.rendered_at_least(NOW, None) is None
    assert render_times.rendered_at_least(None, NOW) is None
