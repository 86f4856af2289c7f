"""/nhatky: admins read the audit log in the chat, filter it, page it and download it as CSV; nobody else can."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from handlers.menu import commands_for
from storage.audit import AuditQuery
from tests.dialog import turns
from tests.test_roles import make_admin

pytestmark = pytest.mark.backends


async def _staff(harness, store, user_id: str, name: str, role: str = "cadre"):
    person = harness.person(user_id, name=name)
    await person.say("/huongdan")
    user = await store.users.find("test", user_id)
    await store.users.update(user.id, harness.clock(), role=role, unit_name="Ban Dân vận xã Hải Lăng",
                             display_name=name)
    return person, user.id


async def _seed(harness, store):
    """Bình answered and exported; Mai acknowledged twenty cases; the command line created an invite."""
    now = harness.clock()
    binh, binh_id = await _staff(harness, store, "8001", "Trần Văn Bình")
    _, mai_id = await _staff(harness, store, "8002", "Lê Thị Mai")
    for n in range(20):
        await store.audit.record(mai_id, "case.acknowledged", f"case:PA-26-{n:06d}", now - timedelta(days=5))
    await store.audit.record(None, "invite.created", "invite:1", now - timedelta(days=2), via="cli")
    await store.audit.record(binh_id, "cases.exported", None, now - timedelta(days=3), via="chat", status="open")
    await store.audit.record(binh_id, "case.answered", "case:PA-26-000777", now - timedelta(days=1))
    return binh, binh_id


async def test_admin_reads_filters_and_pages_the_log(harness, store):
    _, binh_id = await _seed(harness, store)
    admin = await make_admin(harness, store)
    await turns(admin, [
        ("/nhatky", ["Nhật ký thao tác", "23 mục", "Trang 1/3", "Mọi người", "Mọi thao tác", "tất cả",
                     "case:PA-26-000777", "25/11/2026 07:30", "Trần Văn Bình", "Tải tệp CSV", "!Bỏ lọc", "!&lt;"]),
        ("[Sau »]", ["Trang 2/3", "Lê Thị Mai", "!PA-26-000777"]),
        ("[Người thực hiện]", ["Xem thao tác của ai", "Trần Văn Bình", "Lê Thị Mai", "Hệ thống"]),
        ("nobody", ["Không có ai tên"]),
        ("binh", ["Những người có tên", "Trần Văn Bình", "!Lê Thị Mai"]),
        ("[Trần Văn Bình]", ["2 mục", "Trang 1/1", f"Trần Văn Bình (mã {binh_id}, cán bộ)", "case.answered",
                             "cases.exported", "!case.acknowledged", "Bỏ lọc"]),
        ("[Thao tác]", ["Xem loại thao tác nào", "Xử lý ý kiến", "Xuất danh sách ý kiến", "Lời mời cán bộ"]),
        ("[Xuất danh sách ý kiến]", ["1 mục", "Thao tác: Xuất danh sách ý kiến", "cases.exported",
                                     "!case.answered"]),
        ("[Thời gian]", ["khoảng thời gian nào"]),
        ("hôm qua", ["Ngày chưa đúng"]),
        ("25/11/2026", ["0 mục", "từ 25/11/2026 đến 25/11/2026", "Không có mục nào"]),
        ("[Bỏ lọc]", ["Mọi người", "Mọi thao tác", "Trang 1/"]),
        ("[Thao tác]", []),
        ("case.answered", ["1 mục", "PA-26-000777"]),
        ("[Người thực hiện]", []),
        ("[Hệ thống]", ["0 mục"]),
    ])
    # Every read is itself in the log, with its filter.
    reads, _ = await store.audit.search(AuditQuery(action="auditlog.viewed"), 0, 100)
    assert len(reads) == 8
    assert {"by": binh_id, "actions": "cases", "period": "range", "since": "2026-11-25",
            "until": "2026-11-25", "page": 1}.items() <= next(
        r.detail for r in reads if r.detail.get("period") == "range").items()


async def test_admin_downloads_the_filtered_log_as_csv(harness, store):
    _, binh_id = await _seed(harness, store)
    await store.audit.record(binh_id, "case.note", "=HYPERLINK(\"http://x\")", harness.clock() - timedelta(hours=1))
    admin = await make_admin(harness, store)
    await turns(admin, [
        ("/nhatky", []),
        ("[Thao tác]", []),
        ("[Xử lý ý kiến]", ["22 mục"]),
        ("[Tải tệp CSV]", ["Tệp CSV gồm 22 mục", "cũng được ghi vào nhật ký"]),
    ])
    document = admin.last[0].document
    assert document.filename == "nhat-ky-20261126-0730.csv" and document.mime == "text/csv"
    rows = list(csv.DictReader(io.StringIO(document.content.decode("utf-8-sig"))))
    assert len(rows) == 22 and {r["Thao tác"] for r in rows} == {"case.acknowledged", "case.answered", "case.note"}
    assert rows[0]["Đối tượng"] == "'=HYPERLINK(\"http://x\")"  # never a formula in a spreadsheet
    assert rows[1]["Người thực hiện"] == "Trần Văn Bình" and rows[1]["Vai trò"] == "cán bộ"
    assert rows[1]["Thời gian"] == "25/11/2026 07:30:00"
    [exported] = (await store.audit.search(AuditQuery(action="auditlog.exported"), 0, 10))[0]
    assert exported.actor_id == (await store.users.find("test", "9000")).id
    assert exported.detail == {"format": "csv", "rows": 22, "by": None, "actions": "case", "period": "all"}
    assert await store.conversations.get("test", "9000") is None


async def test_the_log_is_for_admins_only(harness, store):
    binh, _ = await _seed(harness, store)
    citizen = harness.person("1001")
    await citizen.say("/start")
    for person in (binh, citizen):
        await turns(person, [("/nhatky", ["chỉ dành cho", "!Nhật ký thao tác"]),
                             ("nhật ký", ["!Nhật ký thao tác"])])
        for forged in ("1:nhatky.list:csv", "1:nhatky.list:next", "1:m:nhatky"):
            replies = await person.choose(forged)
            assert not any(r.document for r in replies) and not any("Nhật ký thao tác" in r.text for r in replies)
    assert "nhatky" not in commands_for("cadre") and "nhatky" in commands_for("admin")
    denied = [e for e in await store.audit.recent() if e.action == "denied"]
    assert {"/nhatky", "menu:nhatky"} <= {e.target for e in denied}
    assert not [e for e in await store.audit.recent() if e.action.startswith("auditlog.")]


async def test_an_admin_removed_mid_listing_reads_no_further(harness, store):
    await _seed(harness, store)
    admin = await make_admin(harness, store)
    await turns(admin, [("/nhatky", ["Trang 1/3"])])
    user = await store.users.find("test", "9000")
    await store.users.update(user.id, harness.clock(), role="cadre")
    await turns(admin, [("[Tải tệp CSV]", ["chỉ dành cho", "!Tệp CSV"])])
    assert not any(r.document for r in admin.last)


async def test_the_menu_and_the_keyword_open_it(harness, store):
    await _seed(harness, store)
    admin = await make_admin(harness, store)
    await turns(admin, [("/menu", ["Nhật ký thao tác"]), ("[Nhật ký thao tác]", ["Trang 1/3"])])
    await turns(admin, [("/huy", []), ("nhật ký", ["Trang 1/3"])])


async def test_xuat_is_audited_with_who_when_and_the_filter(harness, store):
    binh, binh_id = await _staff(harness, store, "8001", "Trần Văn Bình")
    commune = (await store.localities.search("hai lang", level=1))[0]
    await store.roles.set_scope(binh_id, {commune.id}, set())
    await turns(binh, [
        ("/xuat", []),
        ("[Thời gian]", []),
        ("01/11/2026 - 20/11/2026", ["từ 01/11/2026 đến 20/11/2026"]),
        ("[Trạng thái]", []),
        ("[Đang mở]", []),
        ("[Tải tệp Excel]", ["Tệp Excel gồm 0 ý kiến"]),
    ])
    [exported], _ = await store.audit.search(AuditQuery(action="cases.exported"))
    assert exported.actor_id == binh_id and exported.at == "2026-11-26T00:30:00+00:00"
    assert {"via": "chat", "format": "xlsx", "status": "open", "period": "range", "since": "2026-11-01",
            "until": "2026-11-20", "rows": 0}.items() <= exported.detail.items()
