"""The shipped Slack app manifest matches what the code serves and asks for."""

from __future__ import annotations

from pathlib import Path

import yaml

from handlers.slack.oauth import BOT_SCOPES

MANIFEST = Path(__file__).resolve().parent.parent / "slack" / "manifest.yml"


def test_manifest_points_every_surface_at_our_routes_and_scopes_match_the_code() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/lead"
    assert command["url"] == "https://YOUR-HOST/slack/events"
    assert command["should_escape"] is True  # mentions arrive as <@U123|name>
    assert manifest["settings"]["interactivity"] == {
        "is_enabled": True,
        "request_url": "https://YOUR-HOST/slack/events",
    }
    assert manifest["settings"]["event_subscriptions"]["request_url"] == "https://YOUR-HOST/slack/events"
    assert "app_home_opened" in manifest["settings"]["event_subscriptions"]["bot_events"]
    assert manifest["oauth_config"]["redirect_urls"] == ["https://YOUR-HOST/slack/oauth_redirect"]
    assert tuple(manifest["oauth_config"]["scopes"]["bot"]) == BOT_SCOPES
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
