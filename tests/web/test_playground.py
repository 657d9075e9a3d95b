"""The playground in Chromium: sign up, an image generated and seen, a video that plays, the price before
submitting, the balance and the usage chart after, and the whole form used with the keyboard alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import Console, sign_up

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(90)]


async def _balance(page: Any) -> int:
    await page.goto("/billing")
    return int(await page.locator("#balance").inner_text())


async def test_image_in_the_playground_then_billing_shows_it(context: Any, console: Console, artefacts: Path) -> None:
    page = await context.new_page()
    await sign_up(page, console.email("painter"), "Painters")
    assert await _balance(page) == 1000
    assert await page.locator("#usage svg").get_attribute("data-total") == "0"

    await page.goto("/playground")
    await page.wait_for_selector("form[data-ready]")
    await page.get_by_label("Sub-model").select_option("text-to-image")
    await page.get_by_label("Prompt").fill("A lighthouse at dawn")
    await page.get_by_label("Number of images").fill("2")
    price = page.locator("#price")
    await price.filter(has_text="16 credits").wait_for()  # the quote: 2 images x 8, before anything is charged
    assert await _balance(page) == 1000

    await page.goto("/playground")
    await page.wait_for_selector("form[data-ready]")
    await page.get_by_label("Prompt").fill("A lighthouse at dawn")
    await page.get_by_label("Number of images").fill("2")
    await price.filter(has_text="16 credits").wait_for()
    await page.get_by_role("button", name="Generate").click()
    images = page.locator("img.result-image")
    await images.nth(1).wait_for()
    await page.wait_for_function(
        "[...document.querySelectorAll('img.result-image')].every(i => i.complete && i.naturalWidth > 0)"
    )
    assert await page.get_by_role("link", name="Download image 1").get_attribute("download") is not None
    assert "completed" in await page.locator("#status").inner_text()
    await page.screenshot(path=artefacts / "playground-image.png", full_page=True)

    assert await _balance(page) == 1000 - 16
    bars = page.locator('#usage rect[data-model="text-to-image"]')
    assert await bars.count() == 1
    assert await bars.first.get_attribute("data-credits") == "16"
    assert await page.locator("#ledger tbody tr").first.locator(".amount").inner_text() == "-16"
    await page.screenshot(path=artefacts / "billing.png", full_page=True)


async def test_video_plays_with_its_poster_and_shows_in_history(
    context: Any, console: Console, artefacts: Path
) -> None:
    page = await context.new_page()
    await sign_up(page, console.email("director"), "Directors")
    await page.goto("/playground")
    await page.wait_for_selector("form[data-ready]")
    await page.get_by_label("Sub-model").select_option("text-to-video")
    await page.get_by_label("Prompt").fill("Slow dolly through a neon alley")
    await page.get_by_label("Duration").fill("2")
    await page.locator("#price").filter(has_text="150 credits").wait_for()
    await page.get_by_role("button", name="Generate").click()
    video = page.locator("#result-video")
    await video.wait_for()
    await page.wait_for_function(
        "() => { const v = document.getElementById('result-video');"
        " return v && v.readyState >= 1 && v.duration > 0 && isFinite(v.duration); }"
    )
    assert await video.get_attribute("poster")
    assert (await page.locator("#status").get_attribute("data-status")) == "completed"
    assert await page.get_by_role("link", name="Download video").count() == 1
    await page.screenshot(path=artefacts / "playground-video.png", full_page=True)

    await page.goto("/history?status=completed&model=text-to-video")
    cards = page.locator("#gallery li.card")
    assert await cards.count() == 1
    await cards.first.locator("a").click()
    await page.wait_for_url("**/history/job_*")
    assert await page.locator("#charged").inner_text() == "150"
    assert await page.locator("#refunded").inner_text() == "0"
    await page.wait_for_function("document.getElementById('job-video').readyState >= 1")
    await page.screenshot(path=artefacts / "job.png", full_page=True)
    await page.goto("/history?status=failed")
    assert await page.locator("#gallery li.card").count() == 0
    await page.screenshot(path=artefacts / "history.png", full_page=True)

    await page.get_by_role("link", name="Billing").click()
    assert int(await page.locator("#balance").inner_text()) == 1000 - 150
    assert await page.locator('#usage rect[data-model="text-to-video"]').get_attribute("data-credits") == "150"


async def test_the_playground_with_the_keyboard_alone(context: Any, console: Console) -> None:
    page = await context.new_page()
    await sign_up(page, console.email("keys-only"), "Keyboardists")
    await page.goto("/playground")
    await page.wait_for_selector("form[data-ready]")

    async def tab_to(element_id: str) -> None:
        for _ in range(40):
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement && document.activeElement.id") == element_id:
                return
        raise AssertionError(f"Tab never reached #{element_id}")

    await tab_to("model")
    assert await page.evaluate("document.activeElement.value") == "text-to-image"
    await tab_to("f-prompt")
    await page.keyboard.type("A red kite over the sea")
    await tab_to("f-resolution")
    await page.keyboard.press("ArrowDown")  # 1k -> 2k: the price follows
    await page.locator("#price").filter(has_text="12 credits").wait_for()
    await tab_to("generate")
    await page.keyboard.press("Enter")
    await page.locator("img.result-image").wait_for()
    await page.wait_for_function("document.querySelector('img.result-image').naturalWidth > 0")
    focus_ring = await page.evaluate(
        "() => { const b = document.getElementById('generate'); b.focus(); return getComputedStyle(b).outlineStyle; }"
    )
    assert focus_ring != "none"
