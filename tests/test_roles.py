"""Admins, cadre invites, scopes, revocation, authorization and the audit log."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from storage.clock import iso
from tests.dialog import ONBOARD, turns

pytestmark = pytest.mark.backends


async def make_admin(harness, store, user_id="9000"):
    admin = harness.person(user_id, name="Quản trị")
    await admin.say("/huongdan")
    user = await store.users.find("test", user_id)
    await store.users.update(user.id, harness.clock(), role="admin")
    return admin


async def invite_via_chat(admin) -> str:
    await turns(admin, [
        ("/moicanbo", ["phụ trách địa bàn nào", "(chưa có)"]),
        ("[Thêm xã/phường]", ["Chọn địa bàn"]),
        ("hai lang", []),
        ("[xã Hải Lăng]", ["Đã chọn", "xã Hải Lăng", "Tiếp tục"]),
        ("[Tiếp tục]", ["lĩnh vực nào"]),
        ("[Xây dựng nông thôn mới]", []),
        ("[Xong]", ["tên đơn vị"]),
        ("x", ["từ 2 đến 120"]),
        ("Ban Dân vận Đảng ủy xã Hải Lăng", ["Đã tạo lời mời", "https://t.me/danvan_test_bot?start=i_"]),
    ])
    return re.search(r"start=(i_[A-Za-z0-9_-]+)", admin.text()).group(1)


async def test_admin_invites_cadre_who_accepts_once(harness, store):
    admin = await make_admin(harness, store)
    payload = await invite_via_chat(admin)
    assert len(payload) <= 64
    cadre = harness.person("7001", name="Trần Văn Bình")
    await turns(cadre, [(f"/start {payload}", ["cán bộ", "Ban Dân vận Đảng ủy xã Hải Lăng", "xã Hải Lăng",
                                               "Xây dựng nông thôn mới", "Phạm vi phụ trách"])])
    user = await store.users.find("test", "7001")
    assert user.role == "cadre" and user.unit_name == "Ban Dân vận Đảng ủy xã Hải Lăng"
    scope = await store.roles.scope(user.id)
    hai_lang = (await store.localities.search("hai lang", level=1))[0]
    assert scope.locality_ids == {hai_lang.id}
    assert harness.channel.commands["7001"] == ["start", "gopy", "phananh", "theodoi", "caidat", "nhantin", "dunggui",
                                                "quyenriengtu", "dulieu", "xoadulieu", "huongdan", "huy", "lienket",
                                                "khaosat", "hopthu", "phamvi", "bantin", "nhiemvu", "xuat",
                                                "danvankheo", "mohinhhay", "dvk", "gopyvankien", "vankien"]
    await turns(cadre, [("/phamvi", ["xã Hải Lăng", "cán bộ"])])
    # One time only.
    other = harness.person("7002")
    await turns(other, [(f"/start {payload}", ["đã được sử dụng", "Mục đích 1/2"])])
    assert (await store.users.find("test", "7002")).role == "citizen"
    actions = [e.action for e in await store.audit.recent()]
    assert {"invite.created", "invite.accepted", "invite.refused"} <= set(actions)


async def test_invite_token_is_stored_hashed_and_expires(harness, store, clock):
    token, invite = await store.roles.create_invite(["44"], [], "Ban Dân vận Tỉnh ủy", None, clock(),
                                                    timedelta(days=7))
    row = await store.db.fetchone("SELECT token_hash, expires_at FROM invites WHERE id = ?", (invite.id,))
    assert token not in row["token_hash"] and row["expires_at"] == iso(clock() + timedelta(days=7))
    clock.advance(days=7, seconds=1)
    p = harness.person("7003")
    await turns(p, [(f"/start i_{token}", ["đã hết hạn"])])
    assert (await store.users.find("test", "7003")).role == "citizen"


async def test_whole_province_scope(harness, store):
    admin = await make_admin(harness, store)
    await turns(admin, [("/moicanbo", []), ("[Toàn tỉnh]", ["lĩnh vực nào"]), ("[Xong]", []),
                        ("Ban Dân vận Tỉnh ủy", ["Đã tạo lời mời"])])
    payload = re.search(r"start=(i_[A-Za-z0-9_-]+)", admin.text()).group(1)
    cadre = harness.person("7010")
    await turns(cadre, [(f"/start {payload}", ["tỉnh Quảng Trị", "tất cả lĩnh vực"])])


async def test_admin_revokes_cadre(harness, store):
    admin = await make_admin(harness, store)
    payload = await invite_via_chat(admin)
    cadre = harness.person("7001", name="Trần Văn Bình")
    await cadre.say(f"/start {payload}")
    await turns(admin, [
        ("/thuhoi", ["Chọn cán bộ", "Trần Văn Bình"]),
        ("[Trần Văn Bình]", ["Thu hồi quyền cán bộ của Trần Văn Bình"]),
        ("[Thu hồi]", ["Đã thu hồi"]),
    ])
    user = await store.users.find("test", "7001")
    assert user.role == "citizen" and (await store.roles.scope(user.id)).locality_ids == frozenset()
    assert "phamvi" not in harness.channel.commands["7001"]
    await turns(cadre, [("/phamvi", ["chỉ dành cho cán bộ"])])
    assert "cadre.revoked" in [e.action for e in await store.audit.recent()]


async def test_citizen_cannot_use_staff_commands_or_buttons(harness, store):
    p = harness.person()
    await turns(p, ONBOARD)
    for command in ("/moicanbo", "/thuhoi", "/phamvi"):
        await turns(p, [(command, ["chỉ dành cho cán bộ"])])
    assert await store.conversations.get("test", "1001") is None
    # Forged buttons of admin flows and of the menu.
    for data in ("1:inv.scope:all", "1:inv.unit", "1:rev.confirm:yes", "1:rev.pick:1", "1:m:moicanbo",
                 "1:m:thuhoi", "1:m:phamvi"):
        replies = await p.choose(data)
        assert any("chỉ dành cho" in r.text or p.stale in r.text for r in replies), data
    assert await store.conversations.get("test", "1001") is None
    invites = await store.db.fetchone("SELECT count(*) FROM invites")
    assert invites[0] == 0
    assert [e.action for e in await store.audit.recent()].count("denied") >= 6


async def test_revoked_admin_mid_flow_cannot_finish(harness, store):
    admin = await make_admin(harness, store)
    await turns(admin, [("/moicanbo", []), ("[Toàn tỉnh]", []), ("[Xong]", ["tên đơn vị"])])
    user = await store.users.find("test", "9000")
    await store.users.update(user.id, harness.clock(), role="citizen")
    await turns(admin, [("Ban Dân vận Tỉnh ủy", ["chỉ dành cho", "!Đã tạo lời mời"])])
    assert (await store.db.fetchone("SELECT count(*) FROM invites"))[0] == 0


async def test_invite_refused_on_a_channel_without_staff(store, clock):
    from handlers.base import Capabilities
    from tests.dialog import Harness, RecordingChannel

    web = Harness(store, clock, RecordingChannel(name="web", capabilities=Capabilities(staff=False)))
    token, _ = await store.roles.create_invite(["44"], [], "Ban Dân vận", None, clock(), timedelta(days=1))
    p = web.person("w1")
    await turns(p, [(f"/start i_{token}", ["không dùng được trên kênh này"])])
    assert (await store.users.find("web", "w1")).role == "citizen"
    assert (await store.db.fetchone("SELECT used_at FROM invites"))[0] is None
