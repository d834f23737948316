"""/models, /models use:N (rollback), and the charts of /retrain and /dinoinfo, through the fake
Discord. Versions are made as in the registry tests (tagged copies of the shipped model), except
where a real fine-tune has to start from the version served."""
from __future__ import annotations

import pytest

from tests.bot.test_retrain import add_names, fields, is_summary
from tests.services.test_registry import add_version
from tests.support.harness import ADMIN, GUILD_A, GUILD_B, MEMBER
from tests.support.wording import assert_sentence

EPHEMERAL = 64
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


async def versions(dino, *statuses: str) -> None:
    for status in statuses:
        await add_version(dino.bot.store, dino.config.models_dir, GUILD_A, status=status)


async def models(dino, use: int | None = None, *, user=ADMIN, guild=GUILD_A) -> dict:
    options = {} if use is None else {"use": use}
    data = (await (await dino.fake.slash("models", options, user=user, guild=guild)).response())["data"]
    assert data["flags"] & EPHEMERAL
    return data


async def served_label(dino, guild: int = GUILD_A) -> str:
    data = (await (await dino.fake.slash("dinoinfo", guild=guild)).response())["data"]
    return fields(data)["Model"]


async def test_models_lists_versions_and_marks_the_served_one(dino):
    await versions(dino, "promoted", "discarded", "promoted")
    await dino.restart()  # the versions were recorded behind the running bot's back
    lines = (await models(dino))["embeds"][0]["description"].split("\n")
    assert lines[0].startswith("**v3** · <t:") and "· 30 names · val 1.530 · ✅ promoted ◀ **served**" in lines[0]
    assert lines[1].endswith("· 20 names · val 1.520 · ↩️ discarded")
    assert lines[3].startswith("**v0** · the shipped base model") and "served" not in lines[3]
    empty = (await models(dino, guild=GUILD_B))["embeds"][0]["description"]
    base_loss = dino.bot.registry.base.val_loss
    assert empty.startswith("No fine-tunes yet")
    assert f"**v0** · the shipped base model · val {base_loss:.3f} ◀ **served**" in empty
    dino.fake.assert_clean()


async def test_models_use_rolls_back_audited_and_survives_a_restart(dino):
    await versions(dino, "promoted", "promoted")
    await dino.restart()
    assert await served_label(dino) == "This server's model v2"
    text = (await models(dino, use=1))["content"]
    assert text.startswith("▶️ Now serving **v1** (trained <t:") and "audit log" in text
    assert await served_label(dino) == "This server's model v1"
    (entry,) = [e for e in await dino.bot.store.audit.recent(GUILD_A) if e.action == "model.use"]
    assert entry.actor_id == ADMIN.id and entry.details["version"] == 1
    await dino.restart()
    assert await served_label(dino) == "This server's model v1"
    assert "already serves" in (await models(dino, use=1))["content"]
    assert "the shipped **base model**" in (await models(dino, use=0))["content"]
    assert await served_label(dino) == "The base model"
    assert await served_label(dino, GUILD_B) == "The base model"
    dino.fake.assert_clean()


@pytest.mark.parametrize("use, fragment", [
    (2, "Version 2 cannot serve this server: it was discarded when it was made. Test."),
    (7, "Model version 7 was not found in this server."),
])
async def test_a_rollback_to_a_discarded_or_missing_version_is_refused(dino, use, fragment):
    await versions(dino, "promoted", "discarded", "promoted")
    await dino.restart()
    text = (await models(dino, use=use))["content"]
    assert text == fragment
    assert_sentence(text)
    assert await served_label(dino) == "This server's model v3"
    assert [e for e in await dino.bot.store.audit.recent(GUILD_A) if e.action == "model.use"] == []
    dino.fake.assert_clean()


async def test_models_is_for_moderators_only(dino):
    await versions(dino, "promoted", "promoted")
    await dino.restart()
    assert "Manage Server" in (await models(dino, use=1, user=MEMBER))["content"]
    assert await served_label(dino) == "This server's model v2"
    synced = {c["name"]: c for c in dino.fake.commands()}
    assert int(synced["models"]["default_member_permissions"]) == 32


async def test_a_fine_tune_after_a_rollback_starts_from_the_served_version_and_then_serves(dino):
    await versions(dino, "promoted", "promoted")
    await dino.restart()
    await models(dino, use=1)
    await add_names(dino.bot)
    handle = await dino.fake.slash("retrain", user=ADMIN)
    await handle.response()
    await handle.wait_for(lambda h: h.edits and is_summary(h.edits[-1]), timeout=20, what="the summary")
    (v3,) = [v for v in await dino.bot.store.versions.list(GUILD_A) if v.version == 3]
    assert v3.parent_version == 1  # fine-tuned from the version served, not from v2
    assert await served_label(dino) == "This server's model v3"


# ---------------------------------------------------------------------- charts


async def test_retrain_summary_attaches_the_loss_chart(dino):
    await add_names(dino.bot)
    jobs, request = [], dino.bot.trainer.request

    async def keep_the_job(*args, **kwargs):
        jobs.append(await request(*args, **kwargs))
        return jobs[-1]

    dino.bot.trainer.request = keep_the_job
    handle = await dino.fake.slash("retrain", user=ADMIN)
    await handle.response()
    await handle.wait_for(lambda h: h.edits and is_summary(h.edits[-1]), timeout=20, what="the summary")
    summary = handle.edits[-1]
    assert summary["embeds"][0]["image"]["url"] == "attachment://fine-tune.png"
    (attachment,) = handle.original.attachments
    assert attachment.filename == "fine-tune.png" and attachment.data.startswith(PNG_MAGIC)
    # What the chart drew: every epoch (2 in the test settings) of every network of the ensemble.
    members = len(dino.bot.registry.base.model.members)
    assert [(p.member, p.epoch) for p in jobs[0].history] == [(m, e) for m in range(members) for e in (1, 2)]
    dino.fake.assert_clean()


async def test_dinoinfo_charts_the_model_history_on_request(dino):
    await versions(dino, "promoted", "discarded", "promoted")
    await dino.restart()
    handle = await dino.fake.slash("dinoinfo", {"chart": True})
    assert (await handle.response())["type"] == 5  # "thinking…" while the chart is drawn
    (followup,) = await handle.wait_for_followups(1, timeout=15)
    assert followup.ephemeral and followup.embed["image"]["url"] == "attachment://model-history.png"
    assert followup.attachments[0].data.startswith(PNG_MAGIC)
    none = (await (await dino.fake.slash("dinoinfo", {"chart": True}, guild=GUILD_B)).response())["data"]
    assert "No fine-tunes yet" in str(none["embeds"][0]["fields"])
    dino.fake.assert_clean()
