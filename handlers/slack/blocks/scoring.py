"""`/lead score` (the breakdown, a sparkline of the score over time), `/lead rules`, the rule form, and the
hot-lead alert."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from handlers.slack.blocks.common import TEMPERATURE_EMOJI, dump, esc, slack_date
from handlers.slack.blocks.messages import lead_line, open_button
from handlers.slack.ids import Action, RuleRef, View
from handlers.slack.ids import Block as BlockId
from lma_bot.models import LeadScoringRule
from lma_bot.scoring.service import ScoreBreakdown

SPARKS = "▁▂▃▄▅▆▇█"
KIND_LABEL = {"rule": "rule", "manual": "manual", "decay": "decay"}
REPEAT_POLICIES = ("once_per_lead", "once_per_event", "at_most")
CRITERIA_EXAMPLE = {
    "all": [
        {"field": "company", "op": "exists", "value": True},
        {"event": "email_opened", "count": 3, "within_days": 7},
    ]
}


def sparkline(values: Sequence[int], width: int = 24) -> str:
    """A one-line chart of ``values`` (oldest first), resampled to at most ``width`` points."""
    if not values:
        return ""
    if len(values) > width:
        step = len(values) / width
        values = [values[min(len(values) - 1, int(i * step + step - 1))] for i in range(width)]
    low, high = min(values), max(values)
    if high == low:
        return SPARKS[3] * len(values)
    return "".join(SPARKS[round((v - low) * (len(SPARKS) - 1) / (high - low))] for v in values)


def _signed(points: int) -> str:
    return f"+{points}" if points > 0 else str(points)


def score_blocks(
    breakdown: ScoreBreakdown, *, lead_name: str, rule_names: dict[int, str], can_adjust: bool
) -> list[dict[str, Any]]:
    b = breakdown
    emoji = TEMPERATURE_EMOJI.get(b.temperature, "")
    lock = f"  :lock: locked since {slack_date(b.locked_at)}" if b.locked_at else ""
    blocks: list[Block] = [
        HeaderBlock(text=f"Score of #{b.lead_id} {lead_name}"[:150]),
        SectionBlock(
            text=MarkdownTextObject(text=f"*{b.score}* points · {emoji} {b.temperature}{lock}"),
            accessory=open_button(b.lead_id),
        ),
    ]
    if b.series:
        values = [score for _, score in b.series]
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"`{sparkline(values)}`  {min(values)} to {max(values)} since {slack_date(b.series[0][0])}"
                    )
                ]
            )
        )
    lines = [
        f"{_signed(r.points)}  {esc(r.name)} · {r.firings} times"
        + (f" · last {slack_date(r.last_fired_at)}" if r.last_fired_at else "")
        for r in b.rules
        if r.points
    ]
    if b.manual_points:
        lines.append(f"{_signed(b.manual_points)}  manual adjustments")
    if b.decay_points:
        lines.append(f"{_signed(b.decay_points)}  decay (no engagement)")
    why = "\n".join(lines) if lines else "_No rule gives this lead points yet._"
    blocks += [DividerBlock(), SectionBlock(text=MarkdownTextObject(text=f"*Why {b.score}*\n{why}"))]
    if b.recent:
        changes = []
        for h in b.recent:
            label = rule_names.get(h.rule_id or 0) if h.kind == "rule" else KIND_LABEL.get(h.kind, h.kind)
            detail = f" ({esc(h.reason)})" if h.reason and h.kind != "rule" else ""
            changes.append(
                f"{slack_date(h.created_at)}  {h.previous_score} → *{h.new_score}* ({_signed(h.delta)}) "
                f"{esc(label or 'rule')}{detail}"
            )
        blocks.append(SectionBlock(text=MarkdownTextObject(text="*Last changes*\n" + "\n".join(changes))))
    if can_adjust:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"Adjust: `/lead score {b.lead_id} adjust +10 <reason>` (or `-5`, `=50`), "
                        f"`/lead score {b.lead_id} {'unlock' if b.locked_at else 'lock'}`"
                    )
                ]
            )
        )
    return dump(blocks)


def rules_blocks(rules: Sequence[LeadScoringRule], *, can_edit: bool) -> list[dict[str, Any]]:
    if not rules:
        text = "No scoring rules yet." + (" Add one with `/lead rules add`." if can_edit else "")
        return dump([SectionBlock(text=MarkdownTextObject(text=text))])
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=f"*Scoring rules* ({len(rules)})"))]
    for rule in rules:
        state = "" if rule.is_active else " · _disabled_"
        policy = rule.repeat_policy + (f" {rule.repeat_limit}" if rule.repeat_limit else "")
        text = (
            f"*{rule.id}. {esc(rule.name)}* · {_signed(rule.score_points)} · {policy} · priority {rule.priority}"
            f"{state}\n`{esc(json.dumps(rule.criteria, separators=(',', ':')))[:300]}`"
        )
        section = SectionBlock(text=MarkdownTextObject(text=text))
        blocks.append(section)
        if can_edit:
            ref = RuleRef(rule_id=rule.id).dumps()
            blocks.append(
                ActionsBlock(
                    elements=[
                        ButtonElement(text="Edit", action_id=Action.RULE_EDIT, value=ref),
                        ButtonElement(
                            text="Disable" if rule.is_active else "Enable",
                            action_id=Action.RULE_TOGGLE,
                            value=ref,
                            style="danger" if rule.is_active else "primary",
                        ),
                    ]
                )
            )
    return dump(blocks)


def _input(
    block: BlockId, label: str, element: dict[str, Any], *, optional: bool = False, hint: str = ""
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "input",
        "block_id": block,
        "optional": optional,
        "label": {"type": "plain_text", "text": label},
        "element": {"action_id": block, **element},
    }
    if hint:
        out["hint"] = {"type": "plain_text", "text": hint}
    return out


def _text(initial: str | None, *, multiline: bool = False, placeholder: str = "") -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "multiline": multiline}
    if initial:
        element["initial_value"] = initial
    if placeholder:
        element["placeholder"] = {"type": "plain_text", "text": placeholder}
    return element


def rule_modal(rule: LeadScoringRule | None, private_metadata: str) -> dict[str, Any]:
    policy = rule.repeat_policy if rule else "once_per_lead"
    options = [
        {"text": {"type": "plain_text", "text": p.replace("_", " ")}, "value": p} for p in REPEAT_POLICIES
    ]
    criteria = json.dumps(rule.criteria if rule else CRITERIA_EXAMPLE, indent=2)
    return {
        "type": "modal",
        "callback_id": View.RULE,
        "title": {"type": "plain_text", "text": "Edit rule" if rule else "New scoring rule"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": private_metadata,
        "blocks": [
            _input(
                BlockId.RULE_NAME, "Name", _text(rule.name if rule else None, placeholder="Opened 3 emails")
            ),
            _input(
                BlockId.RULE_POINTS,
                "Points",
                _text(str(rule.score_points) if rule else None, placeholder="10 or -5"),
                hint="A whole number; negative takes points away.",
            ),
            _input(
                BlockId.RULE_POLICY,
                "Repeat",
                {
                    "type": "static_select",
                    "options": options,
                    "initial_option": next(o for o in options if o["value"] == policy),
                },
            ),
            _input(
                BlockId.RULE_LIMIT,
                "At most (times)",
                _text(str(rule.repeat_limit) if rule and rule.repeat_limit else None, placeholder="3"),
                optional=True,
                hint="Only for the 'at most' repeat policy.",
            ),
            _input(
                BlockId.RULE_PRIORITY,
                "Priority",
                _text(str(rule.priority) if rule else "1"),
                optional=True,
            ),
            _input(
                BlockId.RULE_CRITERIA,
                "Criteria (JSON)",
                _text(criteria, multiline=True),
                hint="Field conditions (eq, neq, in, contains, gt, exists, matches...) and events with count and "
                "within_days, combined with all / any / not.",
            ),
        ],
    }


def hot_alert(
    *, lead_id: int, lead_name: str, score: int, owner_slack_id: str | None
) -> list[dict[str, Any]]:
    who = f" · owner <@{owner_slack_id}>" if owner_slack_id else ""
    return dump(
        [
            SectionBlock(
                text=MarkdownTextObject(
                    text=f":fire: {lead_line(lead_id, lead_name)} is now *hot* ({score} points){who}"
                ),
                accessory=open_button(lead_id),
            ),
            ContextBlock(elements=[MarkdownTextObject(text=f"Why: `/lead score {lead_id}`")]),
        ]
    )
