"""Block Kit for `/lead workflows` (list, manual run and its result) and `/lead admin integrations`."""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from handlers.slack.blocks.common import dump, esc, slack_date
from lma_bot.integrations.overview import IntegrationOverview
from lma_bot.workflows.service import ExecutionView, WorkflowView

STATUS_EMOJI = {
    "pending": ":hourglass_flowing_sand:",
    "running": ":arrow_forward:",
    "waiting": ":double_vertical_bar:",
    "success": ":white_check_mark:",
    "error": ":x:",
    "cancelled": ":no_entry_sign:",
}
TRIGGER_TEXT = {
    "lead_created": "when a lead is created",
    "status_changed": "when a lead's status changes",
    "assigned": "when a lead is assigned",
    "score_threshold": "when a lead's score crosses a threshold",
    "note_added": "when a note is added",
    "manual": "by hand only",
}


def _conditions(conditions: dict[str, Any]) -> str:
    if not conditions:
        return ""
    parts = [f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in sorted(conditions.items())]
    return " · if " + esc(", ".join(parts))


def _execution_line(execution: ExecutionView) -> str:
    emoji = STATUS_EMOJI.get(execution.status, ":grey_question:")
    lead = (
        f"lead #{execution.lead_id} {esc(execution.lead_name)}"
        if execution.lead_id is not None
        else "no lead"
    )
    extra = []
    if execution.response_status is not None:
        extra.append(f"HTTP {execution.response_status}")
    if execution.retry_count:
        extra.append(f"{execution.retry_count} retr{'y' if execution.retry_count == 1 else 'ies'}")
    if execution.error_message and execution.status in ("error", "pending"):
        extra.append(esc(execution.error_message[:120]))
    detail = f" ({'; '.join(extra)})" if extra else ""
    return (
        f"{emoji} `#{execution.id}` {execution.status} · {slack_date(execution.started_at)} · {lead}{detail}"
    )


def workflows_list(items: list[WorkflowView], *, can_run: bool) -> list[dict[str, Any]]:
    blocks: list[Block] = [HeaderBlock(text="Workflows")]
    if not items:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text="No workflows yet. An operator adds one with "
                    "`lma-bot workflows add --org ID --name N --trigger lead_created --url https://…`."
                )
            )
        )
        return dump(blocks)
    for workflow in items:
        state = ":large_green_circle: active" if workflow.is_active else ":white_circle: paused"
        head = (
            f"*`{workflow.id}` {esc(workflow.name)}* · {state}\n"
            f"{TRIGGER_TEXT.get(workflow.trigger, esc(workflow.trigger))}{_conditions(workflow.conditions)}"
            f" → {esc(workflow.url_host)}"
        )
        blocks.append(SectionBlock(text=MarkdownTextObject(text=head)))
        runs = "\n".join(_execution_line(e) for e in workflow.last_executions) or "_not run yet_"
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=runs)]))
    if can_run:
        blocks.append(DividerBlock())
        blocks.append(
            ContextBlock(
                elements=[MarkdownTextObject(text="Run one by hand: `/lead workflows run <workflow> <lead>`")]
            )
        )
    return dump(blocks)


def run_started(execution_id: int, workflow_id: int, workflow_name: str, lead_id: int, lead_name: str) -> str:
    return (
        f":rocket: Execution `#{execution_id}` of workflow `{workflow_id}` *{esc(workflow_name)}* "
        f"for lead *#{lead_id} {esc(lead_name)}* is on its way; the result follows."
    )


def run_result(
    execution_id: int,
    workflow_name: str,
    *,
    status: str,
    retry_count: int,
    response_status: int | None,
    error: str | None,
    settled: bool,
) -> str:
    name = f"`#{execution_id}` ({esc(workflow_name)})"
    if not settled:
        return f":hourglass_flowing_sand: Execution {name} has not been sent yet; `/lead workflows` shows it."
    if status == "pending":
        return (
            f":repeat: Execution {name}: n8n did not take it yet ({esc((error or '')[:200])}); "
            f"retrying with backoff (retry {retry_count})."
        )
    if status == "error":
        return f":x: Execution {name} failed: {esc((error or 'unknown error')[:300])}"
    code = f" (HTTP {response_status})" if response_status is not None else ""
    return f"{STATUS_EMOJI.get(status, '')} Execution {name}: n8n accepted it{code}; status *{status}*."


def integrations_admin(items: list[IntegrationOverview]) -> list[dict[str, Any]]:
    blocks: list[Block] = [HeaderBlock(text="Integrations")]
    if not items:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(text="None yet: `lma-bot integrations add --org ID --provider n8n`.")
            )
        )
        return dump(blocks)
    for item in items:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(item.counts.items())) or "no deliveries"
        last = slack_date(item.last_delivery_at) if item.last_delivery_at else "never"
        private = " · self-hosted targets allowed" if item.allow_private_targets else ""
        text = (
            f"*`{item.id}` {esc(item.display_name)}* ({item.provider}) · {item.status}{private}\n"
            f"Webhook: `{esc(item.webhook_route)}` (key shown once, at creation)\n"
            f"Last 24 h: {counts} · last delivery {last}"
        )
        blocks.append(SectionBlock(text=MarkdownTextObject(text=text)))
        if item.failures:
            lines = "\n".join(
                f":x: event `{f.event_id}` {esc(f.event_type)} · {slack_date(f.received_at)} · "
                f"{esc((f.error or '')[:150])}"
                for f in item.failures
            )
            blocks.append(
                ContextBlock(
                    elements=[MarkdownTextObject(text=lines + "\nReplay: `lma-bot webhooks replay <event>`")]
                )
            )
    return dump(blocks)
