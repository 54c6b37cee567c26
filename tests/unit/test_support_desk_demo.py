"""The support-desk demo (examples/support_desk.py) runs offline on its scripted models."""

from examples import support_desk as desk
from workflows.models import AgentMessage

from .test_engine import finished


def test_support_desk__triage_lookup_refund_approval_answer_offline(engine_db):
    run = finished(desk.support_desk.start({}))
    assert run.status == "suspended", run.error
    assert run.step("triage").output == {"category": "refund", "urgent": True}
    payload = run.step("answer").suspend_payload
    assert payload["tool"] == "propose_refund" and payload["args"]["amount"] == 249.0

    run.resume(data={"approved": True, "args": {**payload["args"], "amount": 200.0}})
    run = finished(run)
    assert run.status == "succeeded", run.error
    assert "A refund of 200.00 EUR for order A-1001" in run.output
    assert run.usage["requests"] == 4  # triage 1, answer 3
    assert AgentMessage.objects.filter(run=run, thread="customer-42").exists()


def test_support_desk__a_delivery_question_needs_no_approval(engine_db):
    run = finished(desk.support_desk.start({"order_id": "A-1002", "message": "Where is my grinder?"}))
    assert run.status == "succeeded", run.error
    assert run.output == "Dear customer, your order is in transit."
