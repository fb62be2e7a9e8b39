"""Every `/lead` flow the playground promises, clicked through in Chromium. Each test leaves a screenshot
(``screenshot.png`` in its ``tmp_path``)."""

from __future__ import annotations

import re
import uuid

from playwright.async_api import Locator, Page, expect

ACME, GLOBEX = "T0PLAYACME", "T0PLAYGLOBEX"
ROB, MIA, RAE, GUS = "U1REP1", "U1MANAGER", "U1REP2", "U2ADMIN"


async def act_as(page: Page, user: str, team: str = ACME) -> None:
    if await page.locator("#workspace").input_value() != team:
        await page.select_option("#workspace", team)
        await expect(page.locator(f"#actor option[value={user}]")).to_have_count(1)
    await page.select_option("#actor", user)
    await expect(page.locator("#actor")).to_have_value(user)


async def open_channel(page: Page, testid: str) -> None:
    await page.click(f"[data-testid={testid}]")
    await expect(page.locator(f"[data-testid={testid}]")).to_have_class(re.compile("active"))


async def send(page: Page, text: str) -> None:
    await page.fill("#composer-input", text)
    await page.press("#composer-input", "Enter")


def message(page: Page, text: str) -> Locator:
    return page.locator("#messages .msg", has_text=text).last


def unique(word: str) -> tuple[str, str]:
    tag = uuid.uuid4().hex[:6]
    return f"{word}{tag}", f"{word.lower()}.{tag}@example.test"


async def create_lead(page: Page, last: str, email: str) -> str:
    await send(page, f"/lead create {email} Zoe {last} company={last}Co")
    created = message(page, f"Zoe {last}")
    await expect(created).to_contain_text("Created")
    found = re.search(r"#(\d+)", await created.inner_text())
    assert found is not None
    return found.group(1)


async def test_create_a_lead_with_the_composer_and_see_its_card(page: Page) -> None:
    await act_as(page, ROB)
    await open_channel(page, "channel-general")
    last, email = unique("Card")
    lead_id = await create_lead(page, last, email)
    await send(page, f"/lead show {lead_id}")
    card = message(page, f"#{lead_id} Zoe {last}")
    await expect(card.locator(".block-header")).to_contain_text(f"#{lead_id} Zoe {last}")
    await expect(card).to_contain_text(email)
    await expect(card).to_contain_text(f"{last}Co")
    await expect(card.get_by_role("button", name="Add note")).to_be_visible()


async def test_a_note_mentioning_the_manager_reaches_her_by_dm(page: Page) -> None:
    await act_as(page, ROB)
    await open_channel(page, "channel-general")
    last, email = unique("Note")
    lead_id = await create_lead(page, last, email)
    await send(page, f"/lead note {lead_id} Demo went well, @mia can you join the pricing call?")
    await expect(message(page, "Note added")).to_contain_text("@mia")
    await act_as(page, MIA)
    await open_channel(page, "dm-bot")
    dm = message(page, f"#{lead_id} Zoe {last}")
    await expect(dm).to_contain_text("@rob mentioned you")
    await expect(dm).to_contain_text("can you join the pricing call?")


async def test_a_rep_requests_a_reassignment_and_the_manager_approves_it_in_approvals(page: Page) -> None:
    await act_as(page, ROB)
    await open_channel(page, "channel-general")
    last, email = unique("Move")
    lead_id = await create_lead(page, last, email)
    await send(page, f"/lead assign {lead_id} @rae she knows them")
    await expect(message(page, "Request #")).to_contain_text(f"Zoe {last}")
    await act_as(page, MIA)
    await open_channel(page, "channel-approvals")
    request = message(page, f"Zoe {last}")
    await expect(request).to_contain_text("Reassignment request")
    await request.get_by_role("button", name="Approve").click()
    await expect(request).to_contain_text("Approved by")
    await expect(request.get_by_role("button", name="Approve")).to_have_count(0)


async def test_a_modal_shows_the_field_error_of_an_invalid_submission(page: Page) -> None:
    await act_as(page, RAE)
    await open_channel(page, "channel-general")
    await send(page, "/lead create")
    modal = page.get_by_role("dialog", name="New lead")
    await expect(modal).to_be_visible()
    await modal.locator("[data-input-block=email] input").fill("not-an-email")
    await modal.locator("[data-input-block=first_name] input").fill("Nina")
    await modal.get_by_role("button", name="Create").click()
    error = modal.locator("[data-input-block=email] .field-error")
    await expect(error).to_contain_text("not a valid email")
    await expect(modal.locator("[data-input-block=first_name] input")).to_have_value("Nina")
    await modal.get_by_role("button", name="Cancel").click()
    await expect(modal).to_have_count(0)


async def test_the_app_home_tab(page: Page) -> None:
    await act_as(page, MIA)
    await page.click("#nav-home")
    await expect(page.locator("#home .block-header").first).to_contain_text("Hi Mia")
    await expect(page.locator("#home")).to_contain_text("Pending approvals")


async def test_the_second_workspace_cannot_see_the_first_ones_leads(page: Page) -> None:
    await act_as(page, ROB)
    await open_channel(page, "channel-general")
    last, email = unique("Wall")
    lead_id = await create_lead(page, last, email)
    await act_as(page, GUS, GLOBEX)
    await open_channel(page, "channel-general")
    await expect(page.locator("#messages")).not_to_contain_text(last)
    await send(page, f"/lead show {lead_id}")
    await expect(message(page, f"lead {lead_id}")).to_contain_text("not found")
    await send(page, f"/lead find {last}")
    answer = page.locator("#messages .msg.ephemeral").last
    await expect(answer).not_to_contain_text(f"Zoe {last}")
    await send(page, "/lead list")
    listing = message(page, "Ltd")
    await expect(listing).not_to_contain_text(f"Zoe {last}")


async def test_score_shows_why(page: Page) -> None:
    await act_as(page, ROB)
    await open_channel(page, "channel-general")
    last, email = unique("Score")
    await send(page, f"/lead create {email} Zoe {last} source=referral")
    created = message(page, f"Zoe {last}")
    await expect(created).to_contain_text("Created")
    found = re.search(r"#(\d+)", await created.inner_text())
    assert found is not None
    await send(page, f"/lead score {found.group(1)}")
    card = message(page, f"Score of #{found.group(1)}")
    await expect(card).to_contain_text("20 points")
    await expect(card).to_contain_text("Referral")
    await expect(card).to_contain_text("Why 20")
