"""The support-desk agent demo in Chromium: the model's text streams into the run page as it arrives, a person
edits and approves the refund from the run page, and the final answer streams in, then stays as the stored
message (real daphne, real RQ workers, the recovery loop, Redis; the demo's scripted models stream slowly)."""

from __future__ import annotations

import re

import pytest

from examples.support_desk import ORDERS
from workflows.models import AgentMessage, Run, RunStatus, StepRun

from .conftest import SIMPLE
from .test_dashboard import LIVE_TIMEOUT, login, wait_live

pytestmark = pytest.mark.e2e

STREAM_DELAY = "0.3"  # seconds between two words of the demo's scripted models (workers' environment)

# Records every text the streaming card shows, per model request, as the page changes it.
TOKEN_RECORDER = """
window.__streamed = {};
document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("streaming-messages");
  if (!list) return;
  new MutationObserver(() => {
    for (const li of list.querySelectorAll("li[data-streaming-step]")) {
      const seen = (window.__streamed[li.dataset.streamingStep] ??= []);
      const text = li.querySelector("pre").textContent;
      if (seen.at(-1) !== text) seen.push(text);
    }
  }).observe(list, { subtree: true, childList: true, characterData: true });
});
"""


def streamed(page, step: str) -> list[str]:
    return page.evaluate("(step) => window.__streamed[step] || []", step)


def growing_prefixes(texts: list[str], final: str) -> bool:
    """Each text a prefix of the next, the last a prefix of ``final``: the text arrived in pieces, in order."""
    return all(b.startswith(a) and len(b) > len(a) for a, b in zip(texts, texts[1:], strict=False)) and (
        not texts or final.startswith(texts[-1])
    )


def test_support_desk__tokens_stream_live_the_refund_is_approved_on_the_run_page_the_answer_arrives(
    new_page, server, e2e_user, start_workers, recovery_loop, shot
):
    page = new_page()
    page.add_init_script(TOKEN_RECORDER)
    login(page, server, e2e_user)
    page.goto(f"{server}/workflows/support-desk/")
    wait_live(page)
    page.click("button[data-submit]")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    run_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    run_url = page.url
    wait_live(page)
    page.evaluate("window.__sameDocument = true")

    start_workers(2, SIMPLE, env={"WORKFLOWS_DEMO_STREAM_DELAY": STREAM_DELAY})

    # the support agent's second request streams "Proposing a refund." before it asks for the refund
    page.wait_for_selector('#streaming-messages li[data-streaming-step="answer/model#2"]', timeout=LIVE_TIMEOUT)
    shot(page, "run-support-desk-streaming-proposal")
    approval = page.locator('section[data-approval="propose_refund"]')
    approval.wait_for(timeout=LIVE_TIMEOUT)
    page.wait_for_selector("#run-page[data-status=suspended]")
    assert "A-1001" in approval.inner_text() and "249" in approval.inner_text()
    proposal = streamed(page, "answer/model#2")
    assert proposal and growing_prefixes(proposal, "Proposing a refund."), proposal
    page.wait_for_selector("#run-conversation >> text=Proposing a refund.")  # the stored message replaced it
    assert page.locator("#streaming").is_hidden()
    shot(page, "run-support-desk-approval")

    # edit the arguments: a value the tool's schema refuses shows its error next to the field and changes nothing
    approval.locator("details.edit-args summary").click()
    amount = approval.locator('input[name="args.amount"]')
    assert amount.input_value() == "249.0"
    order = approval.locator('input[name="args.order_id"]')
    order.fill("")  # the tool's schema requires an order id
    approval.locator('button[data-action="approve-edited"]').click()
    approval.locator('[data-field="args.order_id"].has-error').wait_for()
    shot(page, "run-support-desk-approval-invalid")
    assert Run.objects.get(pk=run_id).status == RunStatus.SUSPENDED
    order.fill("A-1001")
    amount.fill("200")
    approval.locator('button[data-action="approve-edited"]').click()

    # the final answer streams in word by word, then is the stored message
    final = "Dear customer, thank you for your patience. A refund of 200.00 EUR for order A-1001 is on its way."
    page.wait_for_selector('#streaming-messages li[data-streaming-step="answer/model#3"]', timeout=LIVE_TIMEOUT)
    shot(page, "run-support-desk-streaming-answer")
    mid = page.context.new_page()  # a second page opened while the answer streams
    mid.errors = []
    mid.on("pageerror", lambda exc: mid.errors.append(str(exc)))
    mid.add_init_script(TOKEN_RECORDER)
    mid.goto(run_url)
    page.wait_for_selector("#run-page[data-status=succeeded]", timeout=LIVE_TIMEOUT)
    page.wait_for_selector(f"#run-conversation >> text={final}")
    assert page.locator("#streaming").is_hidden()
    assert page.locator('section[data-approval="propose_refund"]').count() == 0
    shot(page, "run-support-desk-succeeded")

    answer = streamed(page, "answer/model#3")
    assert len(answer) >= 2 and growing_prefixes(answer, final), answer  # in pieces, in order
    assert len(answer[0]) < len(final)
    assert page.evaluate("window.__sameDocument") is True, "the page must not reload"

    mid.wait_for_selector("#run-page[data-status=succeeded]", timeout=LIVE_TIMEOUT)
    mid.wait_for_selector(f"#run-conversation >> text={final}")
    seen_mid = streamed(mid, "answer/model#3")
    assert growing_prefixes(seen_mid, final), seen_mid  # if it opened mid-stream: the text so far, then the rest

    run = Run.objects.get(pk=run_id)
    assert run.status == RunStatus.SUCCEEDED and run.output == final
    call = StepRun.objects.get(run=run, path="answer/tool:propose_refund#1")
    assert call.input["args"] == {**_proposed(), "amount": 200} and call.input["edited_args"] is True
    stored = AgentMessage.objects.filter(run=run, request_path="answer/model#3", kind="response").get()
    assert stored.text == final  # one row for the whole streamed answer
    assert not page.errors and not mid.errors, (page.errors, mid.errors)


def _proposed() -> dict:
    order = ORDERS["A-1001"]
    return {"order_id": order["id"], "amount": order["total"], "reason": order["status"]}
