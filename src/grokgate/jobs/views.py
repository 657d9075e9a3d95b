"""How a job looks on the wire: the GET shape, and the seed's answers to the model endpoint. Plain functions."""

from __future__ import annotations

from typing import Any

from grokgate.jobs.models import Job
from grokgate.jobs.schemas import JobError, JobView
from grokgate.storage.links import MediaLinks

IMAGE_MESSAGE = "Image generated successfully."
VIDEO_MESSAGE = "Grok Imagine video job created. Poll /api/v1/jobs/{jobId} for status."
WORKFLOW_SLUG = "grok-imagine-generate"
MEDIA_REF = "media:"
"""How a job's `input` refers to an input image kept in our storage (a customer's `data:` URI, stored once)."""


def shown_input(data: dict[str, Any], links: MediaLinks) -> dict[str, Any]:
    """A job's input as the API echoes it: a stored input image as a signed link, never its bytes."""

    def shown(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(MEDIA_REF):
            return links.url(value[len(MEDIA_REF) :])
        return value

    result = dict(data)
    if "image_url" in result:
        result["image_url"] = shown(result["image_url"])
    if isinstance(result.get("image_urls"), list):
        result["image_urls"] = [shown(value) for value in result["image_urls"]]
    return result


def present(job: Job, links: MediaLinks) -> JobView:
    view = JobView(
        id=job.id,
        status=job.status,
        output=links.render(job.output),
        creditsCharged=job.credits_charged,
        workflowSlug=WORKFLOW_SLUG,
        createdAt=job.created_at,
        updatedAt=job.updated_at,
    )
    if job.status == "failed":
        view.error = JobError(code=job.error_code or "FAILED", message=job.error_message or "")
    if job.status in ("failed", "cancelled") or job.credits_refunded:  # a completed job refunds withheld images
        view.creditsRefunded = job.credits_refunded
    if job.progress is not None and job.status == "processing":
        view.progress = job.progress
    return view


def job_json(job: Job, links: MediaLinks) -> dict[str, Any]:
    return present(job, links).model_dump(mode="json", exclude_unset=True)


def image_answer(job: Job, links: MediaLinks) -> dict[str, Any]:
    """The seed's 200 for an image."""
    output = links.render(job.output)
    assert output is not None
    answer = {
        "jobId": job.id,
        "status": "completed",
        "message": IMAGE_MESSAGE,
        "creditsCharged": job.credits_charged,
        "imageUrl": output["imageUrl"],
        "resultUrls": output["resultUrls"],
    }
    if job.credits_refunded:  # some of the images asked for were withheld: their share came back
        answer["creditsRefunded"] = job.credits_refunded
    return answer


def video_answer(job: Job, links: MediaLinks, *, waited: bool = False) -> dict[str, Any]:
    """The seed's 202 for a video; after `Prefer: wait`, with the status reached and the result if there is one."""
    answer: dict[str, Any] = {
        "jobId": job.id,
        "status": job.status if waited else "pending",
        "message": VIDEO_MESSAGE,
        "creditsCharged": job.credits_charged,
        "externalJobId": job.external_job_id,
        "input": shown_input(job.input, links),
    }
    if waited:
        view = job_json(job, links)
        answer["output"] = view["output"]
        for extra in ("error", "creditsRefunded"):
            if extra in view:
                answer[extra] = view[extra]
    return answer


def generic_answer(job: Job, links: MediaLinks) -> dict[str, Any]:
    """`POST /api/v1/jobs` answers with links, as job queues do."""
    base_url = links.base_url
    view = job_json(job, links)
    answer: dict[str, Any] = {
        "id": job.id,
        "status": job.status,
        "workflow": job.workflow,
        "creditsCharged": job.credits_charged,
        "createdAt": view["createdAt"],
        "output": view["output"],
        "_links": {
            "self": f"{base_url}/api/v1/jobs/{job.id}",
            "cancel": f"{base_url}/api/v1/jobs/{job.id}",
        },
    }
    for extra in ("error", "creditsRefunded"):
        if extra in view:
            answer[extra] = view[extra]
    return answer
