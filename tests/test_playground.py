"""The playground's guards and helpers without a browser (the flows: tests/browser)."""

from __future__ import annotations

import pytest

from lma_bot.config import ConfigError, Settings
from lma_bot.entrypoints.cli import main
from lma_bot.playground import directory
from lma_bot.playground.driver import escape_text
from lma_bot.playground.server import refuse_real_slack


@pytest.mark.parametrize("variable", ["SLACK_BOT_TOKEN", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"])
def test_refuses_to_start_with_real_slack_credentials(
    variable: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(variable, "xoxb-real-looking-value")
    with pytest.raises(ConfigError, match=variable):
        refuse_real_slack(Settings())
    assert main(["playground", "--port", "18999"]) == 2
    err = capsys.readouterr().err
    assert variable in err
    assert "never talks to Slack" in err
    assert err.count("\n") == 1


def test_no_slack_credentials_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    refuse_real_slack(Settings(_env_file=None))  # type: ignore[call-arg]


def test_the_composer_escapes_mentions_and_channels_like_slack() -> None:
    text = escape_text(directory.ACME, "note 4 ask @Mia in #approvals, not @gus or @nobody; mail a@b.test")
    assert (
        text == "note 4 ask <@U1MANAGER|mia> in <#C1APPROVALS|approvals>, not @gus or @nobody; mail a@b.test"
    )


def test_workspaces_never_share_ids() -> None:
    ids = [c.id for w in directory.WORKSPACES for c in w.channels]
    ids += [p.slack_id for w in directory.WORKSPACES for p in w.people]
    ids += [p.dm_channel for w in directory.WORKSPACES for p in w.people]
    assert len(ids) == len(set(ids))
    assert directory.workspace_of_channel("D1REP1") is directory.ACME
    assert directory.workspace_of_channel("C2GENERAL") is directory.GLOBEX
