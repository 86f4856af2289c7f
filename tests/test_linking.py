"""One person on Telegram and Zalo: a one-time code links the two accounts, after which they are one person; staff
act through Zalo with numbered choices and join by typing the invite code."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from storage.dvk import NewModel, repo
from tests.dialog import BUTTONS, ONBOARD, TEXT_ONLY, Harness, RecordingChannel, turns
from tests.test_cases import send_report

pytestmark = pytest.mark.backends


def two_channels(store, clock, first: str = "telegram") -> tuple[Harness, Harness]:
    """A Telegram-like channel with buttons and a Zalo-like text-only one, both reachable from either router."""
    tg = Harness(store, clock, RecordingChannel(name=first, capabilities=BUTTONS))
    zl = Harness(store, clock, RecordingChannel(name="zalo", capabilities=TEXT_ONLY))
    tg.router.outbound.add(zl.channel)
    zl.router.outbound.add(tg.channel)
    return tg, zl


def code_in(person) -> str:
    return re.search(r"Mã liên kết của Ông/Bà: (?:<b>)?(\d{6})", person.text()).group(1)


async def test_the_greeting_says_it_is_an_automated_assistant(store, clock):
    for h in two_channels(store, clock):
        await turns(h.person("1001"), [("/start", ["trợ lý tự động", "Ban Dân vận Tỉnh ủy Quảng Trị"])])


async def test_a_telegram_and_a_zalo_account_become_one_person(store, clock):
    tg, zl = two_channels(store, clock)
    lan_tg, lan_zl = tg.person("1001"), zl.person("z-77")
    await turns(lan_tg, ONBOARD)
    await turns(lan_tg, [("/lienket", ["Mã liên kết", "hết hạn sau 15 phút"])])
    code = code_in(lan_tg)
    await turns(lan_tg, [(f"/lienket {code}", ["tạo trên chính kênh này"])])
    await turns(lan_zl, [
        ("liên kết 000000", ["không đúng"]),
        (f"liên kết {code}", ["Đã liên kết hai tài khoản"]),
        ("/caidat", ["xã Hải Lăng", "Xây dựng nông thôn mới"]),  # Telegram's settings, now on Zalo
        ("/lienket", ["đã được liên kết"]),
    ])
    told = [r.text for chat, r, _ in tg.channel.sent if chat == "1001"]
    assert "vừa được liên kết với tài khoản của Ông/Bà trên Zalo." in told[-1]
    person = await store.users.find("telegram", "1001")
    assert (await store.users.ensure("zalo", "z-77", "z-77", None, "vi", clock())).id == person.id
    assert any(e.action == "account.linked" for e in await store.audit.by_actor(person.id))
    await turns(lan_zl, [("/dulieu", ["(trên Telegram)"])])  # the account kept, named as people name it
    export = json.loads(lan_zl.last[-1].document.content)
    [linked] = export["linked_accounts"]
    assert (linked["channel"], linked["account_id"], linked["consents"]) == ("zalo", "z-77", [])
    await turns(lan_zl, [("/xoadulieu", ["có chắc muốn xóa"]), ("[Xóa dữ liệu]", ["cả tài khoản đã liên kết"])])
    assert await store.users.find("telegram", "1001") is None and await store.users.find("zalo", "z-77") is None


async def test_expired_codes_linked_accounts_and_two_staff_accounts_are_refused(store, clock):
    tg, zl = two_channels(store, clock)
    lan_tg, lan_zl, hoa_zl = tg.person("1001"), zl.person("z-77"), zl.person("z-88", name="Hoa")
    await turns(lan_tg, ONBOARD + [("/lienket", ["Mã liên kết"])])
    code = code_in(lan_tg)
    clock.advance(minutes=16)
    await turns(lan_zl, [(f"/lienket {code}", ["đã hết hạn"])])
    await turns(lan_tg, [("/lienket", ["Mã liên kết"])])
    code = code_in(lan_tg)
    await turns(lan_zl, [(f"/lienket {code}", ["Đã liên kết"])])
    await turns(lan_tg, [("/lienket", ["đã được liên kết"])])
    await turns(hoa_zl, [(f"/lienket {code}", ["không đúng"])])  # used once
    for p, chat in ((lan_tg, "1001"), (hoa_zl, "z-88")):
        user = await store.users.find(p.h.channel.name, chat)
        await store.users.update(user.id, clock(), role="cadre")
    await turns(hoa_zl, ONBOARD[:1])
    binh_tg = tg.person("2002", name="Bình")
    await turns(binh_tg, ONBOARD)
    await store.users.update((await store.users.find("telegram", "2002")).id, clock(), role="cadre")
    await turns(binh_tg, [("/lienket", ["Mã liên kết"])])
    await turns(hoa_zl, [(f"/lienket {code_in(binh_tg)}", ["Cả hai tài khoản đều là tài khoản cán bộ"])])


async def test_a_cadre_joins_on_zalo_by_typing_the_invite_and_answers_a_case(store, clock):
    tg, zl = two_channels(store, clock, first="test")
    lan = tg.person("1001")
    await turns(lan, ONBOARD)
    case = await send_report(tg, store, lan)
    commune = (await store.localities.search("hai lang", level=1))[0]
    token, _ = await store.roles.create_invite([commune.code], [], "Ban Dân vận xã Hải Lăng", None, clock(),
                                               timedelta(days=7))
    binh = zl.person("z-5", name="Cán bộ Bình")
    await turns(binh, [
        (f"i_{token}", ["cán bộ", "Ban Dân vận xã Hải Lăng"]),
        ("/hopthu", ["Mới (1)", case.code]),
        (f"[{case.code}]", ["Đường bê tông"]),
        ("[Trả lời]", ["ký tên đơn vị"]),
        ("UBND xã sẽ sửa đoạn đường trong tuần tới.", ["Xem trước"]),
        ("[Gửi]", ["đã trả lời"]),
    ])
    assert (await store.users.find("zalo", "z-5")).role == "cadre"
    told = [r.text for chat, r, _ in tg.channel.sent if chat == "1001"]
    assert any("UBND xã sẽ sửa" in n for n in told)


ZALO_ONBOARD = [  # the same person, started on Zalo too: elsewhere, another topic, all three consents
    ("/start", ["Mục đích 1/2"]), ("[Đồng ý]", ["Mục đích 2/2"]),
    ("[Đồng ý]", ["xã, phường nào"]), ("dong ha", ["Tìm thấy"]), ("[phường Đông Hà]", ["thôn, tổ dân phố"]),
    ("[Bỏ qua]", ["lĩnh vực nào"]), ("[Đô thị văn minh]", []),
    ("[Góp ý văn kiện Đại hội]", ["dữ liệu cá nhân nhạy cảm"]), ("[Đồng ý]", ["✅ Góp ý văn kiện Đại hội"]),
    ("[Xong]", ["phường Đông Hà", "Góp ý văn kiện: có"]),
]
SUGGESTION = [("/gopy", []), ("[Đô thị văn minh]", []), ("[Đúng]", []),
              ("Đề nghị lắp thêm đèn chiếu sáng ở đường Lê Duẩn", []), ("[Tiếp tục]", []), ("[Gửi kèm tên]", []),
              ("[Gửi]", ["GY-26-000001"])]


async def test_what_linking_moves_and_what_stays_and_both_sides_are_told(store, clock):
    """The account that typed the code brings its cases and topics; the one that gave it keeps its locality and
    consents, which are then in force on both channels. The link is recorded and each side is told."""
    tg, zl = two_channels(store, clock, first="test")  # "test": tests/test_cases.py finds the reporter there
    lan_tg, lan_zl = tg.person("1001"), zl.person("z-77")
    await turns(lan_tg, ONBOARD)
    report = await send_report(tg, store, lan_tg)
    await turns(lan_zl, ZALO_ONBOARD + SUGGESTION)
    on_zalo = await store.users.find("zalo", "z-77")
    await turns(lan_tg, [("/lienket", ["Mã liên kết"])])
    await turns(lan_zl, [(f"liên kết {code_in(lan_tg)}", ["Đã liên kết hai tài khoản"])])
    told = [r.text for chat, r, _ in tg.channel.sent if chat == "1001"]
    assert "vừa được liên kết với tài khoản của Ông/Bà trên Zalo." in told[-1]

    kept = await store.users.find("test", "1001")
    assert (await store.users.get(on_zalo.id)).linked_to == kept.id
    [linked] = [e for e in await store.audit.by_actor(kept.id) if e.action == "account.linked"]
    assert linked.target == f"user:{on_zalo.id}" and linked.detail == {"channel": "zalo"}
    both_cases = [report.code, "GY-26-000001"]
    for person in (lan_zl, lan_tg):
        await turns(person, [("/theodoi", ["(2). Chọn một ý kiến", *both_cases])])
        await turns(person, [("/caidat", ["Địa bàn: xã Hải Lăng", "Xây dựng nông thôn mới, Đô thị văn minh",
                                          "Góp ý văn kiện: không", "!Đông Hà"])])
    await turns(lan_zl, [("/theodoi", []), (f"[{report.code}]", ["Đường bê tông", "xã Hải Lăng"])])
    assert (await store.cases.get(report.id)).user_id == kept.id
    await lan_zl.say("/dulieu")
    export = json.loads(lan_zl.last[-1].document.content)
    assert sorted(c["code"] for c in export["cases"]) == sorted(both_cases)
    assert export["profile"]["locality"]["name"] == "xã Hải Lăng, tỉnh Quảng Trị"
    # The Zalo account's sensitive topic did not come along: the kept account never consented to it.
    assert export["topics"] == ["Xây dựng nông thôn mới", "Đô thị văn minh"]
    assert {c["purpose"]: c["granted"] for c in export["consents"]} == {"news": True, "opinions": True}
    [zalo] = export["linked_accounts"]  # what the Zalo account still holds of its own is exported too
    assert zalo["account_id"] == "z-77" and zalo["locality"]["name"] == "phường Đông Hà, tỉnh Quảng Trị"
    assert {c["purpose"]: c["granted"] for c in zalo["consents"]} == {"news": True, "opinions": True,
                                                                        "sensitive": True}


async def test_linking_moves_the_other_accounts_nominations_and_votes(store, clock):
    """A "Dân vận khéo" nomination sent on Zalo is followed on Telegram after the link; a model both accounts voted
    for keeps one vote, since it is one person."""
    tg, zl = two_channels(store, clock)
    lan_tg, lan_zl = tg.person("1001"), zl.person("z-77")
    await turns(lan_tg, ONBOARD)
    await turns(lan_zl, ZALO_ONBOARD)
    on_tg, on_zalo = (await store.users.find("telegram", "1001")).id, (await store.users.find("zalo", "z-77")).id
    dvk, place = repo(store), (await store.localities.by_code("19702")).id
    both, only_zalo, nominated = [
        await dvk.create(NewModel(user, False, name, "Tập thể thôn", place, "kinh_te", "Vận động người dân cùng làm",
                                  None), None, clock())
        for user, name in ((on_tg, "Hiến đất làm đường"), (on_tg, "Thắp sáng đường quê"),
                           (on_zalo, "Tổ tự quản vệ sinh môi trường"))]
    for user, model in ((on_tg, both), (on_zalo, both), (on_zalo, only_zalo)):
        assert await dvk.vote(model.id, user, clock())
    await turns(lan_tg, [("/lienket", ["Mã liên kết"])])
    await turns(lan_zl, [(f"liên kết {code_in(lan_tg)}", ["Đã liên kết hai tài khoản"])])
    assert (await dvk.get(nominated.id)).user_id == on_tg
    assert (await dvk.votes(both.id), await dvk.votes(only_zalo.id)) == (1, 1)
    assert await dvk.voted_by(on_tg) == [both.code, only_zalo.code] and await dvk.voted_by(on_zalo) == []
    await turns(lan_tg, [("/danvankheo", [nominated.code, "Chờ xác minh"])])


async def test_a_cadre_account_that_never_started_takes_the_citizen_accounts_profile_and_consents(store, clock):
    """Staff keep the data (their role and scope stay where they were given); a cadre who joined by invite never
    answered /start's questions, so the citizen account's locality, topics and consents move over with its case."""
    tg, zl = two_channels(store, clock, first="test")
    binh_zl, binh_tg = zl.person("z-5", name="Bình"), tg.person("8001", name="Cán bộ Bình")
    await turns(binh_zl, ZALO_ONBOARD + SUGGESTION + [("/lienket", ["Mã liên kết"])])
    commune = (await store.localities.search("hai lang", level=1))[0]
    token, _ = await store.roles.create_invite([commune.code], [], "Ban Dân vận xã Hải Lăng", None, clock(),
                                               timedelta(days=7))
    await turns(binh_tg, [(f"/start i_{token}", ["Ban Dân vận xã Hải Lăng"]),
                          (f"/lienket {code_in(binh_zl)}", ["Đã liên kết hai tài khoản"]),
                          ("/theodoi", ["GY-26-000001"]),
                          ("/caidat", ["Địa bàn: phường Đông Hà", "Đô thị văn minh", "Góp ý văn kiện: có"])])
    assert "vừa được liên kết" in binh_zl.h.channel.sent[-1][1].text
    cadre = await store.users.find("test", "8001")
    assert cadre.role == "cadre" and cadre.onboarded and (await store.roles.scope(cadre.id)).locality_ids == {
        commune.id}
    assert {p: c.granted for p, c in (await store.users.consents(cadre.id)).items()} == {
        "news": True, "opinions": True, "sensitive": True}
    assert (await store.users.find("zalo", "z-5")).linked_to == cadre.id
