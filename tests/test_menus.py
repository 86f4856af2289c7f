"""The command menu follows the person's role and language, whoever changed them and wherever."""

from __future__ import annotations

from tests.dialog import ONBOARD, turns


async def test_a_role_given_from_the_command_line_shows_at_the_next_message(harness, store, clock):
    lan = harness.person("1001")
    await turns(lan, ONBOARD)
    assert "1001" not in harness.channel.commands  # a citizen keeps the default menu: no call per person
    user = await store.users.ensure("test", "1001", "1001", None, "vi", clock())
    await store.users.update(user.id, clock(), role="admin")  # what `danvan admin add` does, outside any chat
    await turns(lan, [("/huongdan", ["/thongbao"])])
    assert {"hopthu", "thongbao", "moicanbo"} <= set(harness.channel.commands["1001"])
    calls = dict(harness.channel.commands)
    await turns(lan, [("/huongdan", [])])
    assert harness.channel.commands == calls  # given once, not at every message


async def test_a_revoked_cadre_gets_the_citizens_menu_back(harness, store, clock):
    cadre = harness.person("7001")
    await turns(cadre, ONBOARD)
    user = await store.users.find("test", "7001")
    await store.users.update(user.id, clock(), role="cadre", unit_name="Ban Dân vận xã Hải Lăng")
    await turns(cadre, [("/huongdan", ["/hopthu"])])
    assert "hopthu" in harness.channel.commands["7001"]
    await store.roles.revoke(user.id, clock())  # from the command line, say
    await turns(cadre, [("/huongdan", ["!/hopthu"])])
    assert "hopthu" not in harness.channel.commands["7001"]


async def test_a_menu_another_worker_gave_the_chat_is_what_this_one_goes_by(harness, store, clock):
    """Several workers: the menu a chat has is read with the person at each message, not remembered by one worker,
    so a role taken away and given back while the chat was handled elsewhere still shows here."""
    cadre = harness.person("7001")
    await turns(cadre, ONBOARD)
    user = await store.users.find("test", "7001")
    await store.users.update(user.id, clock(), role="cadre", unit_name="Ban Dân vận xã Hải Lăng")
    await turns(cadre, [("/huongdan", ["/hopthu"])])  # this worker gives the cadre's menu
    await store.users.update(user.id, clock(), role="citizen")
    await store.conversations.set_menu("test", "7001", "citizen:vi", clock())  # another worker gave the citizen's
    harness.channel.commands["7001"] = ["batdau"]
    await store.users.update(user.id, clock(), role="cadre")  # and the role came back from the command line
    await turns(cadre, [("/huongdan", ["/hopthu"])])
    assert "hopthu" in harness.channel.commands["7001"]
