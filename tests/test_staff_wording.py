"""Staff are addressed as "đồng chí" wherever the bot speaks to them; lists read well on a phone."""

from __future__ import annotations

import pytest

from tests.dialog import ONBOARD, turns
from tests.test_roles import make_admin


async def test_staff_are_greeted_and_guided_as_dong_chi(harness, store):
    admin = await make_admin(harness, store)
    await turns(admin, [("/start", ["Kính chào đồng chí", "!Kính chào Ông/Bà"])])
    await turns(admin, [("[Đồng ý]", []), ("[Đồng ý]", ["Chọn địa bàn", "!Ông/Bà đang"]),
                        ("hai", ["Đồng chí chọn địa bàn"]), ("zzzz", ["Đồng chí kiểm tra lại"]),
                        ("hai lang", []), ("[xã Hải Lăng]", ["Chọn thôn, tổ dân phố"]), ("[Bỏ qua]", []),
                        ("[Xong]", [])])
    await turns(admin, [("/start", ["Kính chào đồng chí đã trở lại"]), ("/menu", ["Đồng chí có thể chọn"])])
    if not admin.buttons:  # the hint under a numbered list
        assert "Đồng chí trả lời bằng số" in admin.text() and "Ông/Bà" not in admin.text()
    await turns(admin, [("/hopthu", []), ("nonsense", ["Đồng chí vui lòng"])])
    lan = harness.person("1001")
    await turns(lan, ONBOARD)
    await turns(lan, [("/caidat", [])])
    if not lan.buttons:
        assert "Ông/Bà trả lời bằng số" in lan.text()


async def test_invite_refusals_speak_to_a_cadre(harness, store):
    person = harness.person("7001")
    await turns(person, [("/start i_" + "x" * 20, ["Mã mời không đúng. Đồng chí"])])


async def test_page_position_is_text_not_a_button_and_cut_labels_end_with_an_ellipsis(harness, store):
    admin = await make_admin(harness, store)
    await turns(admin, [("/hopthu", []), ("[Lọc địa bàn]", ["Chọn địa bàn", "Trang 1/10"])])
    assert not [label for label in admin.labels() if "Trang" in label], admin.labels()
    await store.campaigns.upsert("ntm-2026", "Cuộc vận động toàn dân đoàn kết xây dựng nông thôn mới, đô thị văn minh"
                                 " giai đoạn 2026–2030 trên địa bàn tỉnh", "Mô tả", None)
    await turns(admin, [("/chiendich", [])])
    [label] = [label for label in admin.labels() if "ntm-2026" in label]
    assert label.endswith("…") and len(label) <= 64


async def test_every_cadre_can_be_reached_in_revoke_and_assign(harness, store, clock):
    from tests.people import make_people
    from tests.schedule_kit import add_case

    cadres = await make_people(store, 45, channel="test", first_chat=800, role="cadre")
    admin = await make_admin(harness, store)
    await turns(admin, [("/thuhoi", ["Trang 1/6", "Người 0", "!Người 8"])])
    for page in range(2, 7):
        await turns(admin, [("[Sau »]", [f"Trang {page}/6"])])
    await turns(admin, [("[Người 44]", ["Thu hồi quyền cán bộ của Người 44"]), ("[Thu hồi]", ["Đã thu hồi"])])
    assert (await store.users.get(cadres[44])).role == "citizen"
    user = await store.users.find("test", "1001") or await store.users.ensure("test", "1001", "1001", "Lan", "vi",
                                                                              clock())
    hai_lang = (await store.localities.search("hai lang", level=1))[0]
    case = await add_case(store, clock(), user.id, hai_lang.id)
    await admin.choose(f"1:cs:{case.id}")
    await turns(admin, [("[Giao cán bộ]", ["Trang 1/6"])])
    for page in range(2, 7):
        await turns(admin, [("[Sau »]", [f"Trang {page}/6"])])
    await turns(admin, [("[Người 43]", ["Đã giao"])])
    assert (await store.cases.get(case.id)).assigned_to == cadres[43]


async def test_an_admin_changes_a_cadres_places_and_topics_in_chat(harness, store, clock):
    from tests.test_cases import cadre_of

    nong_thon = await store.topics.by_code("nong-thon-moi")
    binh = await cadre_of(harness, store, "hai lang", topics={nong_thon.id})
    admin = await make_admin(harness, store)
    await turns(admin, [
        ("/canbo", ["Chọn cán bộ"]),
        ("[Ban Dân vận xã Hải Lăng]", ["Cán bộ Bình", "xã Hải Lăng", "Xây dựng nông thôn mới", "Sửa địa bàn"]),
        ("[Sửa địa bàn]", ["✖ xã Hải Lăng"]),
        ("[Thêm xã/phường]", ["Chọn địa bàn"]), ("dong ha", []),
        ("[phường Đông Hà]", ["✖ xã Hải Lăng", "✖ phường Đông Hà"]),
        ("[✖ xã Hải Lăng]", ["!✖ xã Hải Lăng", "✖ phường Đông Hà"]),
        ("[Lưu]", ["Đã lưu phạm vi", "• phường Đông Hà", "!• xã Hải Lăng"]),
        ("[Sửa lĩnh vực]", ["✅ Xây dựng nông thôn mới"]),
        ("[Khác]", ["✅ Khác"]), ("[Xong]", ["Đã lưu phạm vi", "Xây dựng nông thôn mới, Khác"]),
    ])
    user = await store.users.find("test", binh.id)
    scope = await store.roles.scope(user.id)
    dong_ha = (await store.localities.search("dong ha", level=1))[0]
    khac = await store.topics.by_code("khac")
    assert scope.locality_ids == {dong_ha.id} and scope.topic_ids == {nong_thon.id, khac.id}
    assert user.role == "cadre"  # no revoke, no new invite
    assert any("vừa được quản trị viên cập nhật" in r.text for chat, r, _ in harness.channel.sent if chat == binh.id)
    await turns(binh, [("/phamvi", ["• phường Đông Hà", "!• xã Hải Lăng"])])
    assert "cadre.scope" in [a.action for a in await store.audit.recent()]


async def test_admins_keep_the_topics_in_chat(harness, store):
    admin = await make_admin(harness, store)
    await turns(admin, [
        ("/linhvuc", ["Lĩnh vực", "Xây dựng nông thôn mới", "Thêm lĩnh vực"]),
        ("[Dân vận khéo]", ["10 ngày làm việc", "đang dùng"]),
        ("[Đổi tên tiếng Anh]", ["tên tiếng Anh"]), ("Skilful mobilisation", ["Đã lưu", "Skilful mobilisation"]),
        ("[Thời hạn trả lời]", ["số ngày làm việc"]), ("99", ["từ 1 đến 60"]), ("5", ["5 ngày làm việc"]),
        ("[Ẩn lĩnh vực]", ["đã ẩn"]),
        ("[« Quay lại]", ["🚫 Dân vận khéo"]),
        ("[Thêm lĩnh vực]", ["tên lĩnh vực mới"]), ("Chuyển đổi số", ["Đã thêm lĩnh vực «Chuyển đổi số»"]),
    ])
    kheo = await store.topics.by_code("dan-van-kheo")
    assert (kheo.name_en, kheo.answer_days, kheo.active) == ("Skilful mobilisation", 5, False)
    assert (await store.topics.by_code("chuyen-doi-so")).name_vi == "Chuyển đổi số"
    lan = harness.person("1001")
    await turns(lan, ONBOARD)
    await turns(lan, [("/gopy", ["Chuyển đổi số", "!Dân vận khéo"])])


@pytest.mark.backends
async def test_two_admins_hiding_one_topic_the_second_is_told_and_undoes_nothing(harness, store):
    first, second = await make_admin(harness, store), await make_admin(harness, store, "9002")
    for admin in (first, second):
        await turns(admin, [("/linhvuc", []), ("[Dân vận khéo]", ["đang dùng", "Ẩn lĩnh vực"])])
    await turns(first, [("[Ẩn lĩnh vực]", ["Đã lưu", "đã ẩn", "Dùng lại"])])
    await turns(second, [("[Ẩn lĩnh vực]", ["vừa được một quản trị viên khác thay đổi", "chưa được ghi", "đã ẩn",
                                             "Dùng lại", "!Đã lưu"])])
    assert not (await store.topics.by_code("dan-van-kheo")).active
    await turns(second, [("[Dùng lại]", ["Đã lưu", "đang dùng"])])
    assert (await store.topics.by_code("dan-van-kheo")).active
    changes = [a for a in await store.audit.recent() if a.action == "topic.changed"]
    assert len(changes) == 2  # the refused press wrote nothing


@pytest.mark.backends
async def test_two_admins_changing_one_cadres_places_the_second_is_told_and_undoes_nothing(harness, store):
    from tests.test_cases import cadre_of

    binh = await cadre_of(harness, store, "hai lang")
    first, second = await make_admin(harness, store), await make_admin(harness, store, "9002")
    for admin in (first, second):
        await turns(admin, [("/canbo", []), ("[Ban Dân vận xã Hải Lăng]", []), ("[Sửa địa bàn]", ["✖ xã Hải Lăng"])])
    await turns(first, [("[Thêm xã/phường]", []), ("gio linh", []), ("[Lưu]", ["Đã lưu phạm vi", "• xã Gio Linh"])])
    await turns(second, [("[Thêm xã/phường]", []), ("cam lo", []), ("[✖ xã Hải Lăng]", ["✖ xã Cam Lộ"]),
                         ("[Lưu]", ["vừa được một quản trị viên khác thay đổi", "chưa được lưu",
                                    "Phạm vi hiện nay:", "• xã Hải Lăng",
                                    "• xã Gio Linh", "!Đã lưu phạm vi",
                                    # what the second admin chose is kept, named, and offered again over it
                                    "đã chọn vẫn được giữ:\n• xã Cam Lộ\n", "✖ xã Cam Lộ", "!✖ xã Hải Lăng",
                                    "!✖ xã Gio Linh"])])
    scope = await store.roles.scope((await store.users.find("test", binh.id)).id)
    assert {(await store.localities.get(i)).name for i in scope.locality_ids} == {"Hải Lăng", "Gio Linh"}
    await turns(second, [("[Thêm xã/phường]", []), ("gio linh", ["✖ xã Cam Lộ", "✖ xã Gio Linh", "!✖ xã Hải Lăng"]),
                         ("[Lưu]", ["Đã lưu phạm vi", "• xã Cam Lộ", "• xã Gio Linh", "!• xã Hải Lăng"])])
    assert [a.action for a in await store.audit.recent()].count("cadre.scope") == 2  # the refused save wrote nothing



@pytest.mark.backends
async def test_two_admins_renaming_one_topic_or_setting_its_days_the_second_is_told_and_keeps_what_they_typed(
        harness, store):
    first, second = await make_admin(harness, store), await make_admin(harness, store, "9002")
    for admin in (first, second):
        await turns(admin, [("/linhvuc", []), ("[Dân vận khéo]", ["10 ngày làm việc"])])
    await turns(first, [("[Đổi tên tiếng Anh]", []),
                        ("Skilful outreach", ["Đã lưu", "Tên tiếng Anh: Skilful outreach"])])
    await turns(second, [("[Đổi tên tiếng Anh]", ["tên tiếng Anh"]),
                         ("Skilful mass outreach", ["vừa được một quản trị viên khác thay đổi", "chưa được lưu",
                                                    "«Skilful mass outreach»", "Tên tiếng Anh: Skilful outreach\n",
                                                    "!Đã lưu"])])
    assert (await store.topics.by_code("dan-van-kheo")).name_en == "Skilful outreach"
    await turns(first, [("[Thời hạn trả lời]", []), ("7", ["Đã lưu", "7 ngày làm việc"])])
    await turns(second, [("[Thời hạn trả lời]", []),
                         ("12", ["vừa được một quản trị viên khác thay đổi", "«12»", "7 ngày làm việc", "!Đã lưu"])])
    assert (await store.topics.by_code("dan-van-kheo")).answer_days == 7
    # A change of another field is no conflict: the days are still those the second admin saw.
    await turns(first, [("[Đổi tên tiếng Anh]", []), ("Skilful outreach 2", ["Đã lưu"])])
    await turns(second, [("[Thời hạn trả lời]", []), ("12", ["Đã lưu", "12 ngày làm việc", "Skilful outreach 2"])])
    kheo = await store.topics.by_code("dan-van-kheo")
    assert (kheo.name_en, kheo.answer_days) == ("Skilful outreach 2", 12)
    changes = [a for a in await store.audit.recent() if a.action == "topic.changed"]
    assert len(changes) == 4  # the refused ones wrote nothing


@pytest.mark.backends
async def test_two_admins_changing_one_cadres_topics_the_second_keeps_their_choice_to_apply_again(harness, store):
    from tests.test_cases import cadre_of

    binh = await cadre_of(harness, store, "hai lang")
    first, second = await make_admin(harness, store), await make_admin(harness, store, "9002")
    for admin in (first, second):
        await turns(admin, [("/canbo", []), ("[Ban Dân vận xã Hải Lăng]", []), ("[Sửa lĩnh vực]", ["Khác"])])
    await turns(first, [("[Khác]", ["✅ Khác"]), ("[Xong]", ["Đã lưu phạm vi", "Khác"])])
    await turns(second, [("[Dân vận khéo]", ["✅ Dân vận khéo"]), ("[Đô thị văn minh]", ["✅ Đô thị văn minh"]),
                         ("[Xong]", ["vừa được một quản trị viên khác thay đổi", "chưa được lưu", "!Đã lưu phạm vi",
                                     "Lĩnh vực: Khác",
                                     "vẫn được giữ: Đô thị văn minh, Dân vận khéo.",
                                     "✅ Đô thị văn minh", "✅ Dân vận khéo", "!✅ Khác"])])
    user = await store.users.find("test", binh.id)
    khac = await store.topics.by_code("khac")
    assert (await store.roles.scope(user.id)).topic_ids == {khac.id}
    await turns(second, [("[Xong]", ["Đã lưu phạm vi", "Đô thị văn minh, Dân vận khéo"])])
    assert {t for t in (await store.roles.scope(user.id)).topic_ids} == {
        (await store.topics.by_code(code)).id for code in ("do-thi-van-minh", "dan-van-kheo")}
