"""Work-plan tasks: an admin creates one in chat, cadres are told and reminded (3 and 1 working days before,
overdue), report it done with a note and a photo; the admin sees completion by locality; tasks from YAML."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.task_file import parse
from bot.yaml_fields import FileProblem
from handlers.base import Inbound, Media
from handlers.images import normalise
from handlers.tasks import end_of_day
from storage import Store
from storage.clock import iso
from storage.conversations import Conversation
from tests.dialog import Clock, render, turns
from tests.images import jpeg
from tests.schedule_kit import TZ, local, run, schedule, staff, timed_harness

pytestmark = pytest.mark.backends

ROOT = Path(__file__).resolve().parent.parent
PHOTO = jpeg()


async def _team(store, now):
    ids = {"8001": await staff(store, now, "8001", unit="Ban Dân vận xã Hải Lăng", communes=("hai lang",)),
           "8002": await staff(store, now, "8002", unit="Ban Dân vận phường Đông Hà", communes=("dong ha",)),
           "9001": await staff(store, now, "9001", role="admin", unit="Ban Dân vận Tỉnh ủy")}
    for user_id in ids.values():
        await store.digests.update(user_id, now, mode="off")  # this test is about tasks
    return ids


CREATE = [
    ("/nhiemvu", ["Nhiệm vụ</b> (0)", "Chưa có nhiệm vụ nào", "Tạo nhiệm vụ"]),
    ("[Tạo nhiệm vụ]", ["Gõ tên nhiệm vụ"]),
    ("Báo", ["từ 5 đến 200 ký tự"]),
    ("Báo cáo sơ kết công tác dân vận năm 2026", ["nội dung, yêu cầu"]),
    ("Gửi báo cáo về Ban Dân vận Tỉnh ủy, kèm số liệu.", ["Hạn hoàn thành là ngày nào"]),
    ("31/02/2026", ["Ngày chưa đúng"]),
    ("01/01/2020", ["từ hôm nay (26/11/2026)"]),
    ("7/12/2026", ["những địa bàn nào", "(chưa có)"]),
    ("[Thêm xã, phường]", ["Chọn địa bàn"]),
    ("hai lang", ["Tìm thấy"]),
    ("[xã Hải Lăng]", ["• xã Hải Lăng", "Tiếp tục"]),
    ("[Tiếp tục]", ["Xem lại nhiệm vụ", "Hạn: 07/12/2026", "xã Hải Lăng", "kèm số liệu"]),
    ("[Giao nhiệm vụ]", ["Đã giao nhiệm vụ «Báo cáo sơ kết công tác dân vận năm 2026» cho 1 cán bộ"]),
]


async def test_a_task_from_creation_to_completion(store, capabilities):
    clock = Clock(local(2026, 11, 26, 7, 30))  # Thursday
    harness, channel = timed_harness(store, clock, capabilities)
    scheduler = schedule(harness)
    ids = await _team(store, clock())
    admin, binh, other = harness.person("9001"), harness.person("8001"), harness.person("8002")
    await turns(admin, CREATE)
    task = (await store.tasks.all())[0]
    assert task.deadline == iso(local(2026, 12, 7, 23, 59) + timedelta(seconds=59))
    assert (await store.tasks.assignees(task.id)) == [ids["8001"]]
    late = await store.tasks.create("Kiểm tra việc hỗ trợ hộ khó khăn do thiên tai", "", end_of_day(
        local(2026, 12, 3).date(), TZ), {(await store.localities.children(None))[0].id}, ids["9001"], clock())

    await run(scheduler, clock, local(2026, 12, 4, 10, 0), timedelta(minutes=30))
    new = channel.to("8001", "Nhiệm vụ mới")
    assert [at for at, _ in new] == [local(2026, 11, 26, 8, 0)]
    assert "(2)" in new[0][1].text and "hạn 07/12/2026" in new[0][1].text
    assert channel.choices(new[0][1]) == [f"1:nv:{late.id}", f"1:nv:{task.id}"]
    assert [at for at, r in channel.to("8002", "Nhiệm vụ mới") if "hỗ trợ hộ" in r.text] == [local(2026, 11, 26, 8)]
    assert not any("sơ kết" in r.text for _, r in channel.to("8002"))  # Đông Hà's cadres are not assigned
    # The province-wide task: 3 working days before (Monday), 1 (Wednesday), overdue (Friday).
    assert [at for at, r in channel.to("8001", "Nhắc nhiệm vụ") if "hỗ trợ hộ" in r.text] == [
        local(2026, 11, 30, 8), local(2026, 12, 2, 8)]
    assert [at for at, _ in channel.to("8001", "Nhiệm vụ quá hạn")] == [local(2026, 12, 4, 8)]
    # The commune's task, due Monday 07/12: 3 working days before is Wednesday, 1 is Friday (the weekend skipped).
    assert [at for at, r in channel.to("8001", "Nhắc nhiệm vụ") if "sơ kết" in r.text] == [
        local(2026, 12, 2, 8), local(2026, 12, 4, 8)]

    await turns(binh, [
        ("/nhiemvu", ["Nhiệm vụ của đồng chí</b> (2)", "🔴 Kiểm tra việc", "⏳ Báo cáo sơ kết"]),
        ("[Báo cáo sơ kết]", ["Hạn: 07/12/2026", "xã Hải Lăng", "Báo cáo hoàn thành"]),
        ("[Báo cáo hoàn thành]", ["ghi chú kết quả"]),
        ("ok", ["từ 5 đến 2000 ký tự"]),
        ("Đã gửi báo cáo sơ kết lên Ban Dân vận Tỉnh ủy ngày 04/12.", ["gửi kèm ảnh hoặc tệp"]),
    ])
    assert "gửi một ảnh hoặc một tệp" in (await binh.sticker())[0].text
    too_big = Media("document", "scan", 21 * 1024 * 1024, "application/pdf", "bao-cao.pdf")
    assert "tối đa 20 MB" in render(await binh.send(binh._event("media", text="", media=too_big)))
    assert "chưa tải được tệp" in render(await binh.send(binh._event("media", text="", media=replace(too_big, size=9))))
    replies = await binh.photo(PHOTO)
    assert "Đã ghi nhận báo cáo hoàn thành" in replies[0].text
    assert "Đồng chí đã báo cáo hoàn thành lúc 04/12/2026 10:00 (có tệp đính kèm)" in binh.text()
    assert "Cập nhật báo cáo" in binh.text()

    await run(scheduler, clock, local(2026, 12, 10, 0, 0), timedelta(minutes=30))
    assert not any("sơ kết" in r.text for _, r in channel.to("8001", "Nhiệm vụ quá hạn"))
    await turns(admin, [
        ("/nhiemvu", ["Nhiệm vụ</b> (2)", "Báo cáo sơ kết công tác dân vận năm 2026 · 07/12 · 1/1"]),
        ("[Báo cáo sơ kết]", ["Tiến độ theo địa bàn</b>: 1/1", "✅ xã Hải Lăng: 1/1", "Ban Dân vận xã Hải Lăng",
                              "Đã gửi báo cáo sơ kết", "Tệp của Ban Dân vận xã Hải Lăng"]),
    ])
    replies = await admin.click("Tệp của Ban Dân vận")
    assert replies[0].photo is not None and replies[0].photo.content == normalise(PHOTO)
    await turns(admin, [("[Danh sách nhiệm vụ]", []), ("[Kiểm tra việc]", ["0/2 cán bộ", "⏳ phường Đông Hà: 0/1",
                                                                            "⏳ xã Hải Lăng: 0/1"])])
    assert {e.action for e in await store.audit.recent()} >= {"task.created", "task.done"}

    # Another commune's cadre can neither open nor report the commune's task, by any route.
    assert "Không tìm thấy nhiệm vụ" in (await other.choose(f"1:nv:{task.id}"))[0].text
    await store.conversations.save("test", "8002", Conversation("nv", "attach", {"task_id": task.id,
                                                                                   "note": "Xong rồi nhé"}), clock())
    replies = await harness.router.handle(Inbound("test", "8002", "8002", "choice", payload="1:nv.attach:skip"))
    assert "Không tìm thấy nhiệm vụ" in replies[0].text
    assert set(await store.tasks.reports(task.id)) == {ids["8001"]}
    # Nor create one.
    await store.conversations.save("test", "8002", Conversation("nv", "title", {}), clock())
    replies = await harness.router.handle(Inbound("test", "8002", "8002", "text", text="Nhiệm vụ giả mạo"))
    assert "chỉ dành cho" in replies[0].text
    assert other.stale in (await other.choose("1:nv.list:new"))[0].text


async def test_task_reminders_across_tet(store, capabilities):
    clock = Clock(local(2027, 1, 28, 9, 0))
    harness, channel = timed_harness(store, clock, capabilities)
    scheduler = schedule(harness)
    ids = await _team(store, clock())
    hai_lang = (await store.localities.search("hai lang", level=1))[0]
    await store.tasks.create("Tổng hợp ý kiến Nhân dân trước Tết", "", end_of_day(local(2027, 2, 11).date(), TZ),
                             {hai_lang.id}, ids["9001"], clock())
    await run(scheduler, clock, local(2027, 2, 16), timedelta(hours=1))
    sent = channel.to("8001")
    assert [at for at, _ in sent] == [
        local(2027, 1, 28, 10),
        local(2027, 2, 1, 8),  # 3 working days: 2/2, 3/2, then 11/2 after Tết
        local(2027, 2, 3, 8),  # the last working day before Tết
        local(2027, 2, 12, 8),
    ]
    heads = ["📌 <b>Nhiệm vụ mới được giao", "📌 <b>Nhắc nhiệm vụ", "📌 <b>Nhắc nhiệm vụ", "🔴 <b>Nhiệm vụ quá hạn"]
    assert all(r.text.startswith(harness.seen(head)) for (_, r), head in zip(sent, heads, strict=True))
    assert "còn 3 ngày làm việc" in channel.to("8001")[1][1].text


async def test_digests_list_tasks_due(store, capabilities):
    clock = Clock(local(2026, 12, 1, 7, 0))
    harness, channel = timed_harness(store, clock, capabilities)
    scheduler = schedule(harness)
    ids = await _team(store, clock())
    for user_id in ids.values():
        await store.digests.update(user_id, clock(), mode="daily")
    province = (await store.localities.children(None))[0]
    await store.tasks.create("Hội nghị biểu dương điển hình Dân vận khéo", "", end_of_day(local(2026, 12, 4).date(),
                             TZ), {province.id}, ids["9001"], clock())
    await run(scheduler, clock, local(2026, 12, 1, 7, 40))
    cadre = channel.to("8001", "Bản tin")[0][1]
    assert "Nhiệm vụ sắp đến hạn" in cadre.text and "Hội nghị biểu dương" in cadre.text
    assert "1:nv" in channel.choices(cadre)
    assert "0/2 cán bộ đã hoàn thành" in channel.to("9001", "Bản tin")[0][1].text


def test_the_sample_yaml_has_the_twelve_tasks_of_the_article():
    specs = parse((ROOT / "docs" / "tasks-2020-h2.yaml").read_text(encoding="utf-8"))
    assert len(specs) == 12 and len({s.code for s in specs}) == 12
    titles = " ".join(s.title for s in specs)
    for words in ("báo cáo sơ kết, tổng kết", "COVID-19", "Năm Dân vận khéo", "chương trình hành động",
                  "biểu dương điển hình", "cuộc thi báo chí", "nông thôn mới, đô thị văn minh", "văn kiện đại hội"):
        assert words in titles, words
    assert all(s.deadline.year == 2020 and s.deadline.month >= 7 for s in specs)


@pytest.mark.parametrize(("text", "error"), [
    ("tasks: []", "danh sách tasks: không rỗng"),
    ("tasks:\n  - {code: a, title: Ngắn, deadline: 2026-12-01, localities: ['44']}", "title"),
    ("tasks:\n  - {code: a, title: Một nhiệm vụ, deadline: 31/02/2026, localities: ['44']}", "deadline"),
    ("tasks:\n  - {code: a, title: Một nhiệm vụ, deadline: 2026-12-01}", "localities"),
    ("tasks:\n  - {code: a, title: Một nhiệm vụ, deadline: 2026-12-01, localities: ['44'], owner: x}",
     "nhiệm vụ thứ 1: không dùng được các khóa owner"),
    ("tasks:\n  - {code: a, title: Một nhiệm vụ, deadline: 2026-12-01, localities: ['44']}\n"
     "  - {code: a, title: Một nhiệm vụ, deadline: 2026-12-01, localities: ['44']}",
     "nhiệm vụ thứ 2: code phải không trùng"),
    ("tasks: [", "không đúng cú pháp YAML"),
])
def test_a_bad_task_file_says_what_and_where(text, error):
    with pytest.raises(FileProblem, match=error):
        parse(text)


def test_a_bad_task_file_is_explained_in_english_to_an_english_terminal(monkeypatch):
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    with pytest.raises(FileProblem, match="task 1: unknown keys owner"):
        parse("tasks:\n  - {code: a, title: Một nhiệm vụ, deadline: 2026-12-01, localities: ['44'], owner: x}")


def test_cli_loads_tasks_once_and_updates_them(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DANVAN_DB", str(tmp_path / "cli.db"))
    sample = str(ROOT / "docs" / "tasks-2020-h2.yaml")
    assert main(["task", "load", sample]) == 0
    assert "12 mới, 0 cập nhật" in capsys.readouterr().out
    assert main(["task", "load", sample]) == 0
    assert "0 mới, 12 cập nhật" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks:\n  - {code: x1, title: Một nhiệm vụ mới, deadline: 2026-12-01, localities: ['nope']}\n",
                   encoding="utf-8")
    assert main(["task", "load", str(bad)]) == 1
    assert "x1: không có mã địa bàn 'nope'" in capsys.readouterr().err

    async def check():
        store = await Store.open(tmp_path / "cli.db")
        try:
            tasks = await store.tasks.all()
            assert len(tasks) == 12 and tasks[0].code == "dv-2020h2-04"  # the earliest deadline, 31/08/2020
            province = (await store.localities.children(None))[0]
            assert await store.tasks.localities(tasks[0].id) == [province.id]
        finally:
            await store.close()

    asyncio.run(check())


async def test_demo_tasks_are_seeded_once(store):
    from bot.demo import seed_demo

    now = local(2026, 11, 26, 7, 30)
    await seed_demo(store, now)
    await seed_demo(store, now + timedelta(days=1))
    tasks = await store.tasks.all()
    assert [t.code for t in tasks] == ["demo-ntm-hien-dat", "demo-dvk-dang-ky", "demo-an-sinh-giam-sat"]
    assert tasks[0].deadline == iso(local(2026, 11, 29, 23, 59) + timedelta(seconds=59))  # kept current
    cadre = await store.users.find("web", "demo-cadre")
    assert list(await store.tasks.reports(tasks[1].id)) == [cadre.id]
    assert [t.code for t, report in await store.tasks.of_cadre(cadre.id) if report] == ["demo-dvk-dang-ky"]


async def test_a_task_created_in_chat_is_announced_at_once(store, capabilities):
    clock = Clock(local(2026, 11, 26, 10, 0))
    harness, channel = timed_harness(store, clock, capabilities)
    scheduler = schedule(harness)
    harness.router.wake = scheduler.wake  # as App wires it
    await _team(store, clock())
    await scheduler.tick()  # the jobs looked a minute ago: the next regular look is in five
    clock.advance(minutes=1)
    await turns(harness.person("9001"), CREATE)
    await asyncio.gather(*list(scheduler._woken))
    assert [at for at, _ in channel.to("8001", "Nhiệm vụ mới")] == [local(2026, 11, 26, 10, 1)]
