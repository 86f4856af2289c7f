""""Dân vận khéo": the whole cycle in chat on both profiles — nominate → more information → verify → recognise →
vote → announcement — scope for cadres of another commune, races, and what /dulieu and /xoadulieu do with it."""

from __future__ import annotations

import json

import pytest

from bot.render import plain
from storage.dvk import repo
from tests.dialog import render, turns
from tests.images import jpeg
from tests.test_broadcast_flows import admin_of, sent_to
from tests.test_cases import cadre_of, citizen

pytestmark = pytest.mark.backends

PHOTO = jpeg()

NOMINATE = [
    ("dân vận khéo", ["Đề xuất mô hình", "(1/7)"]),
    ("Hiến đất mở rộng đường liên thôn", ["(2/7)", "Người hoặc tập thể"]),
    ("Chi hội Phụ nữ thôn Long Hưng", ["(3/7)", "xã Hải Lăng"]),
    ("[Đúng]", ["(4/7)", "Kinh tế", "Xây dựng hệ thống chính trị"]),
    ("[Kinh tế]", ["(5/7)", "không ghi thông tin riêng tư của người khác"]),
    ("ngắn", ["từ 20 đến 3000"]),
    ("Chi hội vận động 25 hộ hiến đất, tự tháo dỡ tường rào để mở rộng đường liên thôn.", ["(6/7)", "số liệu"]),
    ("Mở rộng 1.200 m đường; 25 hộ hiến 1.500 m² đất", ["(7/7)", "tối đa 5 ảnh"]),
]


async def nominate(p) -> None:
    await turns(p, NOMINATE)
    replies = await p.photo(PHOTO)
    assert "đã gửi 1" in render(replies)
    await turns(p, [("[Xong, xem lại]", ["xem lại trước khi gửi", "Hiến đất mở rộng đường", "Ảnh: 1"]),
                    ("[Gửi]", ["đã được tiếp nhận", "MH-26-000001"])])


def last_to(harness, chat_id: str):
    return sent_to(harness, chat_id)[-1]


async def reads_notice(p) -> str:
    """The person reads the latest message sent to them unasked (a notice) and may answer its options."""
    p.last = [last_to(p.h, p.id)]
    if not p.buttons:
        p.shown = await p._numbered()
    return p.text()


async def test_a_citizen_nominates_a_model_with_a_photo(harness, store):
    p = await citizen(harness)
    await nominate(p)
    model = (await repo(store).of_user((await store.users.find("test", "1001")).id))[0]
    assert (model.code, model.status, model.field, model.by_staff) == ("MH-26-000001", "nominated", "kinh_te", False)
    assert model.author == "Chi hội Phụ nữ thôn Long Hưng" and "25 hộ" in model.results
    assert len(await repo(store).photos(model.id)) == 1
    await turns(p, [("/danvankheo", ["đã đề xuất 1 mô hình", "MH-26-000001", "Chờ xác minh", "Đề xuất mô hình mới"]),
                    ("[MH-26-000001]", ["Hiến đất mở rộng đường", "Tình trạng", "Đề xuất"])])


async def test_a_second_send_is_the_same_nomination(harness, store):
    p = await citizen(harness)
    await turns(p, NOMINATE)
    await turns(p, [("[Không gửi ảnh]", ["xem lại"])])
    send = p.option("Gửi")
    await p.choose(send)
    replies = await p.choose(send)
    assert "MH-26-000001" in render(replies)
    assert (await repo(store).listing(None, ("nominated",)))[1] == 1


async def test_a_citizen_without_the_opinions_consent_is_asked_for_it(harness, store):
    p = harness.person()
    await turns(p, [("/start", []), ("[Đồng ý]", []), ("[Không đồng ý]", [])])
    await turns(p, [("/danvankheo", ["cần lưu nội dung", "Ông/Bà có đồng ý"]), ("[Không đồng ý]", ["chưa thể nhận"])])
    await turns(p, [("/danvankheo", []), ("[Đồng ý]", ["(1/7)"])])


async def test_the_whole_cycle(harness, store, clock):
    p = await citizen(harness)
    await nominate(p)
    cadre = await cadre_of(harness, store, "Hải Lăng")
    await turns(cadre, [
        ("/dvk", ["chờ xác minh", "MH-26-000001"]),
        ("[MH-26-000001]", ["Hiến đất mở rộng đường", "Người dân đề xuất", "Đề nghị bổ sung", "Xác minh: đạt"]),
        ("[Đề nghị bổ sung]", ["cần người đề xuất bổ sung"]),
        ("Đề nghị cho biết số hộ đã hiến đất theo từng đoạn đường.", ["Đã ghi", "Cán bộ đề nghị bổ sung"]),
    ])
    notice = await reads_notice(p)
    assert "đề nghị Ông/Bà bổ sung" in notice and "theo từng đoạn đường" in notice
    await turns(p, [
        ("[Bổ sung thông tin]", ["bổ sung cho đề xuất", "theo từng đoạn đường"]),
        ("Đoạn 1: 10 hộ; đoạn 2: 15 hộ, tổng 1.500 m².", ["Gửi bổ sung"]),
    ])
    for n in range(4):  # the nomination has one photo already
        assert f"đã gửi {n + 1}" in render(await p.photo(jpeg(color=(0, n, 0))))
    assert "tối đa 5 ảnh" in render(await p.photo(PHOTO))
    await turns(p, [
        ("[Gửi bổ sung]", ["Đã nhận nội dung bổ sung", "MH-26-000001"]),
    ])
    assert "đã bổ sung thông tin" in last_to(harness, "8001").text
    assert len(await repo(store).photos(1)) == 5
    await turns(cadre, [
        ("/dvk", []), ("[MH-26-000001]", ["Người đề xuất đã bổ sung: Đoạn 1: 10 hộ"]),
        ("[Ghi chép khảo sát]", ["chỉ cán bộ xem được"]),
        ("Đã đến thực địa, đường rộng 6 m, người dân đồng thuận.", ["Ghi chép khảo sát (nội bộ)"]),
        ("[Xác minh: đạt]", ["Đã ghi", "Đã xác minh, chờ công nhận", "!Công nhận cấp tỉnh"]),
    ])
    assert "Đã xác minh" in last_to(harness, "1001").text
    admin = await admin_of(harness, store)
    await turns(admin, [
        ("/dvk", []), ("[Đợt bình xét]", ["Các đợt bình xét", "Thêm đợt"]), ("[Thêm đợt]", ["Tên đợt"]),
        ("Bình xét mô hình Dân vận khéo năm 2026", ["Năm"]), ("26", ["từ 2000 đến 2100"]), ("2026", ["nhận đề xuất"]),
        ("31/12/2026 - 01/01/2026", ["ngày đầu không sau ngày cuối"]), ("01/01/2026 - 31/12/2026", ["Tiêu chí"]),
        ("Mô hình vận động được đông đảo người dân tham gia, có kết quả đo đếm được.", ["bình chọn"]),
        ("26/11/2026 - 15/12/2026", ["Đã tạo đợt bình xét", "26/11/2026 – 15/12/2026", "Báo cáo"]),
        ("[Báo cáo]", ["theo xã và lĩnh vực (Excel)", "tóm tắt"]),
    ])
    assert sorted(r.document.filename for r in admin.last if r.document) == ["dan-van-kheo-2026-1.docx",
                                                                             "dan-van-kheo-2026-1.xlsx"]
    await turns(admin, [
        ("/dvk", []), ("[Chờ công nhận (1)]", ["MH-26-000001"]),
        ("[MH-26-000001]", ["Công nhận cấp xã", "Công nhận cấp tỉnh", "Ghi chép khảo sát (nội bộ): Đã đến thực địa"]),
        ("[Công nhận cấp tỉnh]", ["Đã ghi", "Đã được công nhận", "Giấy chứng nhận mô hình MH-26-000001"]),
    ])
    assert any(r.photo is not None and r.photo.content.startswith(b"\x89PNG") for r in admin.last)
    assert [e.action for e in await store.audit.by_actor((await store.users.find("test", "9001")).id)][:3] == [
        "dvk.recognised", "dvk.report", "dvk.round_added"]
    assert "Đã được công nhận" in last_to(harness, "1001").text
    model = await repo(store).get(1)
    assert (model.status, model.level, model.round_id) == ("recognised", "province", 1)

    voter = await citizen(harness, "1002", name="Trần Văn Nam")
    await turns(voter, [
        ("mô hình hay", ["Mô hình hay", "Hiến đất mở rộng đường liên thôn (cấp tỉnh)"]),
        ("[Hiến đất mở rộng đường]", ["Chi hội Phụ nữ", "Đang trong thời gian bình chọn", "Bình chọn (0)"]),
    ])
    assert any(r.photo is not None for r in voter.last)
    await turns(voter, [("[Bình chọn (0)]", ["Cảm ơn Ông/Bà đã bình chọn", "1 lượt"])])
    await turns(voter, [("/mohinhhay", []), ("[Hiến đất]", ["Bình chọn (1)"]),
                        ("[Bình chọn (1)]", ["đã bình chọn", "rồi", "1 lượt"])])
    assert await repo(store).votes(1) == 1
    await turns(voter, [("/dulieu", ["Mô hình «Dân vận khéo» Ông/Bà đã đề xuất, bình chọn",
                                     "Đã bình chọn: MH-26-000001"])])

    await turns(admin, [
        ("/mohinhhay", []), ("[Hiến đất]", ["Đăng thành thông báo"]),
        ("[Đăng thành thông báo]", ["Đã chuẩn bị thông báo", "1 ảnh", "Nút bấm kèm thông báo"]),
        ("[Tiếp tục]", ["bản tiếng Anh"]), ("[Không có bản tiếng Anh]", []), ("[Tiếp tục]", []),
        ("[Gửi ngay]", ["Xem trước", "Hiến đất mở rộng đường liên thôn", "Chi hội Phụ nữ thôn Long Hưng"]),
    ])
    assert any(r.photo is not None for r in admin.last)
    await turns(admin, [("[Xác nhận gửi]", [])])
    [broadcast] = await store.broadcasts.recent(5)
    assert "Hiến đất mở rộng đường liên thôn" in broadcast.text_vi and "1.200 m đường" in broadcast.text_vi
    assert broadcast.photo_sha256 == (await repo(store).photos(1))[0]


async def test_a_cadre_of_another_commune_sees_and_does_nothing(harness, store):
    p = await citizen(harness)
    await nominate(p)
    other = await cadre_of(harness, store, "Đông Hà", user_id="8002", unit="Ban Dân vận phường Đông Hà")
    await turns(other, [("/dvk", ["chờ xác minh", "Chưa có đề xuất nào", "!MH-26-000001"])])
    for forged in ("1:dvks:1", "1:dvkc.model:verify", "1:dvka:1"):
        replies = await other.choose(forged)
        assert "MH-26-000001" not in render(replies)
    assert (await repo(store).get(1)).status == "nominated"
    denied = {e.target for e in await store.audit.by_actor((await store.users.find("test", "8002")).id)
              if e.action == "denied"}
    assert denied == {"dvk:1", "1:dvka:1"}  # the admin's button is refused by its role before its model is read
    # A cadre whose scope is the right commune but other topics does not handle nominations either
    narrow = await cadre_of(harness, store, "Hải Lăng", user_id="8003",
                            topics={(await store.topics.by_code("an-sinh")).id})
    await turns(narrow, [("/dvk", ["Chưa có đề xuất nào"])])


async def test_two_cadres_racing_the_loser_is_told(harness, store):
    p = await citizen(harness)
    await nominate(p)
    first = await cadre_of(harness, store, "Hải Lăng")
    second = await cadre_of(harness, store, "Hải Lăng", user_id="8004")
    for cadre in (first, second):
        await turns(cadre, [("/dvk", []), ("[MH-26-000001]", ["Xác minh: đạt"])])
    await turns(first, [("[Không đạt]", ["Lý do"]), ("Chưa có kết quả cụ thể.", ["Chưa được công nhận"])])
    await turns(second, [("[Xác minh: đạt]", ["vừa được người khác xử lý", "Chưa được công nhận", "chưa được ghi"])])
    assert (await repo(store).get(1)).status == "declined"
    assert "chưa được công nhận. Lý do: Chưa có kết quả cụ thể." in last_to(harness, "1001").text


async def test_dulieu_and_xoadulieu_with_a_nomination(harness, store):
    p = await citizen(harness)
    await nominate(p)
    replies = await p.say("/dulieu")
    # The chat's summary lists the nomination like a case: code, what it is, status, place.
    assert "MH-26-000001 — Hiến đất mở rộng đường liên thôn · Chờ xác minh · xã Hải Lăng" in plain(render(replies))
    export = json.loads(next(r.document for r in replies if r.document).content)
    [nomination] = export["dan_van_kheo"]["nominations"]
    assert nomination["code"] == "MH-26-000001" and nomination["author"] == "Chi hội Phụ nữ thôn Long Hưng"
    assert "xã Hải Lăng, tỉnh Quảng Trị" in nomination["locality"] and len(nomination["photos"]) == 1
    cadre = await cadre_of(harness, store, "Hải Lăng")
    await turns(p, [("/xoadulieu", []), ("[Xóa]", ["Đã xóa"])])
    model = await repo(store).get(1)
    assert model.user_id is None and model.erased and model.status == "withdrawn"
    assert model.author == "" and model.deeds == "" and model.field == "kinh_te"
    assert await repo(store).photos(1) == []
    assert await store.files.get(nomination["photos"][0]) is None  # nothing else referred to the file
    assert "MH-26-000001 đã được rút" in plain(last_to(harness, "8001").text)
    await turns(cadre, [("/dvk", ["Chưa có đề xuất nào"]), ("[Không đạt, đã rút (1)]", ["MH-26-000001"]),
                        ("[MH-26-000001]", ["đã xóa theo yêu cầu của người gửi", "!Chi hội Phụ nữ"])])


async def _recognised(store, clock, user_id, commune_code, field, name, *, vote=True, photos=()):
    """A model recognised in a round whose vote is open today (or closed, `vote` False), with these photos."""
    from datetime import date

    from storage.dvk import NewModel

    dvk = repo(store)
    rounds = await dvk.rounds()
    r = rounds[0] if rounds else await dvk.add_round(
        "Bình xét 2026", 2026, date(2026, 1, 1), date(2026, 12, 31), "Tiêu chí",
        (date(2026, 11, 20), date(2026, 12, 15)) if vote else None, None, clock())
    place = await store.localities.by_code(commune_code)
    kept = tuple([(await store.files.put(photo), len(photo)) for photo in photos])
    model = await dvk.create(NewModel(user_id, False, name, "Tập thể", place.id, field, "Vận động người dân cùng làm",
                                      "100 hộ", kept), r.id, clock())
    await dvk.record(model.id, None, "verified", clock(), expect=("nominated",), status="verified")
    return await dvk.record(model.id, None, "recognised", clock(), expect=("verified",), status="recognised",
                            level="commune")


async def test_residents_browse_by_field_and_commune(harness, store, clock):
    p = await citizen(harness)
    user = await store.users.find("test", "1001")
    await _recognised(store, clock, user.id, "19702", "kinh_te", "Hiến đất làm đường")
    await _recognised(store, clock, user.id, "19333", "van_hoa_xa_hoi", "Phân loại rác tại nguồn")
    await turns(p, [
        ("/mohinhhay", ["(2)", "Hiến đất làm đường", "Phân loại rác"]),
        ("[Lĩnh vực]", ["lĩnh vực nào"]),
        ("[Văn hóa – xã hội]", ["(1)", "Phân loại rác", "!Hiến đất"]),
        ("[Bỏ lọc]", ["(2)"]),
        ("[Xã, phường]", ["xã, phường nào"]),
        ("hai lang", ["Tìm thấy"]),
        ("[xã Hải Lăng]", ["(1)", "Hiến đất làm đường", "!Phân loại rác", "Địa bàn: xã Hải Lăng"]),
    ])


async def test_a_vote_needs_an_open_period_a_place_and_the_consent(harness, store, clock):
    p = await citizen(harness)
    user = await store.users.find("test", "1001")
    await _recognised(store, clock, user.id, "19702", "kinh_te", "Hiến đất làm đường")
    stranger = harness.person("1003")  # accepted news only, chose no place
    await turns(stranger, [("/start", []), ("[Đồng ý]", []), ("[Không đồng ý]", [])])
    await turns(stranger, [("/mohinhhay", []), ("[Hiến đất]", ["Bình chọn (0)"]),
                           ("[Bình chọn (0)]", ["Chỉ người dân trong tỉnh", "/caidat"])])
    no_consent = await citizen(harness, "1004")
    await store.users.record_consent((await store.users.find("test", "1004")).id, "opinions", False, "vi-x", clock())
    await turns(no_consent, [("/mohinhhay", []), ("[Hiến đất]", []), ("[Bình chọn (0)]", ["cần Ông/Bà đồng ý"])])
    assert await repo(store).votes(1) == 0
    clock.advance(days=30)  # the vote closed on 15/12
    await turns(p, [("/mohinhhay", []), ("[Hiến đất]", ["Tập thể", "!Bình chọn"])])


async def test_a_models_photos_are_sent_once_and_a_reask_repeats_only_the_question(harness, store, clock):
    p = await citizen(harness)
    user = await store.users.find("test", "1001")
    await _recognised(store, clock, user.id, "19702", "kinh_te", "Hiến đất làm đường",
                      photos=(PHOTO, jpeg(color=(0, 9, 0))))
    await turns(p, [("/mohinhhay", []), ("[Hiến đất]", ["Vận động người dân cùng làm", "Bình chọn (0)"])])
    assert len([r for r in p.last if r.photo]) == 2
    stranger = harness.person("1003")  # no place: the vote is refused and the step asked again
    await turns(stranger, [("/start", []), ("[Đồng ý]", []), ("[Không đồng ý]", []), ("/mohinhhay", []),
                           ("[Hiến đất]", [])])
    for person, said in ((p, "xin chào"), (stranger, "[Bình chọn (0)]")):
        await turns(person, [(said, ["Bình chọn (0)", "!Vận động người dân cùng làm"])])
        assert not [r for r in person.last if r.photo], "the photos went out with the card, once"


async def test_a_cadre_nominates_without_the_citizens_consent_step_and_at_most_five_photos(harness, store):
    cadre = await cadre_of(harness, store, "Hải Lăng")
    await turns(cadre, [("/danvankheo", ["(1/7)"]), ("Tổ tự quản an ninh thôn", []), ("Tổ tự quản thôn Long Hưng", []),
                        ("hai lang", []), ("[xã Hải Lăng]", ["thôn, tổ dân phố"]), ("[Bỏ qua]", ["(4/7)"]),
                        ("[Quốc phòng – an ninh]", []),
                        ("Các hộ luân phiên tuần tra buổi tối, báo tin bất thường cho công an xã.", []),
                        ("[Không có số liệu]", ["(7/7)"])])
    for n in range(5):
        await cadre.photo(jpeg(color=(n, 0, 0)))
    replies = await cadre.photo(PHOTO)
    assert "tối đa 5 ảnh" in render(replies)
    await turns(cadre, [("[Xong, xem lại]", ["Ảnh: 5", "Kết quả: (chưa có)"]), ("[Gửi]", ["MH-26-000001"]),
                        ("/dvk", []), ("[MH-26-000001]", ["Cán bộ đề xuất", "Ảnh: 5"])])


async def test_someone_elses_nomination_cannot_be_followed_or_supplemented(harness, store):
    p = await citizen(harness)
    await nominate(p)
    other = await citizen(harness, "1005", name="Lê Thị Hoa")
    for forged in ("1:dvkm:1", "1:dvkx:1"):
        replies = await other.choose(forged)
        assert "Không tìm thấy đề xuất này trong các đề xuất của Ông/Bà" in render(replies)
        assert "Hiến đất" not in render(replies)


async def test_a_recognised_model_stays_published_after_its_nominator_erases_their_data(harness, store, clock):
    p = await citizen(harness)
    user = await store.users.find("test", "1001")
    await _recognised(store, clock, user.id, "19702", "kinh_te", "Hiến đất làm đường")
    await turns(p, [("/xoadulieu", []), ("[Xóa]", ["Đã xóa"])])
    visitor = await citizen(harness, "1006")
    await turns(visitor, [("/mohinhhay", ["Hiến đất làm đường"]), ("[Hiến đất]", ["Vận động người dân cùng làm"])])
    assert (await repo(store).get(1)).user_id is None


async def test_an_erasure_that_keeps_content_only_unlinks_the_nomination(harness, store):
    p = await citizen(harness)
    await nominate(p)
    # Offered by /xoadulieu to a person who also sent cases («Xóa, nhưng giữ nội dung ý kiến»)
    await store.users.erase((await store.users.find("test", "1001")).id, "vi-xoa", harness.clock(),
                            marker="(đã xóa)", content=False)
    model = await repo(store).get(1)
    assert model.user_id is None and not model.erased and model.status == "nominated"
    assert model.author == "Chi hội Phụ nữ thôn Long Hưng" and len(await repo(store).photos(1)) == 1


async def test_a_rounds_report_gathers_its_numbers_once_for_both_documents(harness, store, clock, monkeypatch):
    from handlers import dvk_report

    user = await store.users.find("test", (await citizen(harness)).id)
    await _recognised(store, clock, user.id, "19702", "kinh_te", "Hiến đất làm đường")
    gathered = []

    async def counted(*args):
        gathered.append(args)
        return await gather(*args)

    gather = dvk_report.gather
    monkeypatch.setattr(dvk_report, "gather", counted)
    admin = await admin_of(harness, store)
    await turns(admin, [("/dvk", []), ("[Đợt bình xét]", []), ("[Bình xét 2026]", []),
                        ("[Báo cáo]", ["theo xã và lĩnh vực (Excel)", "tóm tắt"])])
    assert len([r for r in admin.last if r.document]) == 2
    assert len(gathered) == 1


async def test_a_person_with_many_nominations_reaches_the_older_ones_page_by_page(harness, store, clock):
    from storage.dvk import NewModel

    p = await citizen(harness)
    user = await store.users.find("test", p.id)
    place = await store.localities.by_code("19702")
    for n in range(1, 11):
        await repo(store).create(NewModel(user.id, False, f"Mô hình số {n}", "Tập thể", place.id, "kinh_te",
                                          "Vận động người dân cùng làm", None), None, clock())
    await turns(p, [
        ("/danvankheo", ["đã đề xuất 10 mô hình", "MH-26-000010", "MH-26-000003", "!MH-26-000002", "Trang 1/2",
                         "Sau »", "Đề xuất mô hình mới"]),
        ("[Sau »]", ["MH-26-000002", "MH-26-000001", "!MH-26-000003", "Trang 2/2", "« Trước"]),
        ("[MH-26-000001]", ["Mô hình số 1", "Tình trạng"]),
    ])


async def test_the_staff_list_counts_every_view_in_one_query(harness, store, clock, monkeypatch):
    p = await citizen(harness)
    await nominate(p)
    await _recognised(store, clock, None, "19702", "kinh_te", "Hiến đất làm đường")
    cadre = await cadre_of(harness, store, "Hải Lăng")
    read: list[str] = []
    original = store.db.fetchall  # fetchone reads through it

    def counted(sql, *args):
        read.append(sql)
        return original(sql, *args)

    monkeypatch.setattr(store.db, "fetchall", counted)
    await turns(cadre, [("/dvk", ["Chờ xác minh (1)", "Chờ công nhận (0)", "Đã công nhận (1)", "MH-26-000001"])])
    assert len([sql for sql in read if "count(*)" in sql and "dvk_models" in sql]) == 2  # the views, the page's total
