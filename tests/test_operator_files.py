"""Files an operator hands to `danvan`: a bad one is refused with a message naming the line or the field, in
the catalog's words and without a traceback, and changes nothing."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from importlib import resources

import pytest

from bot.cli import main

HEAD = "# Tỉnh Quảng Trị, thử nghiệm\n\ncode,name,kind,parent_code\n"  # data rows start on line 4


@pytest.fixture
def cli(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_URL", "TELEGRAM_WEBHOOK_SECRET", "DANVAN_TZ",
                 "DANVAN_QUIET_HOURS", "LANG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DANVAN_DB", str(tmp_path / "cli.db"))
    monkeypatch.setattr("bot.cli.utc_now", lambda: datetime(2026, 11, 26, 3, 0, tzinfo=UTC))
    assert main(["db", "migrate"]) == 0
    return tmp_path


def dump(tmp_path) -> list[str]:
    with sqlite3.connect(tmp_path / "cli.db") as db:
        return list(db.iterdump())


def refused(cli, capsys, argv: list[str], *expected: str) -> None:
    before = dump(cli)
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    for part in expected:
        assert part in err, err
    assert "Traceback" not in err
    assert dump(cli) == before


@pytest.mark.parametrize(("rows", "expected"), [
    ("99,Tỉnh Khác,tinh,", "dòng 4: '99' không có địa bàn cha, nhưng danh mục đã có tỉnh '44'"),
    ("19999,Xã Thử,xa,44\n98,Tỉnh Khác,tinh,", "dòng 5: '98' không có địa bàn cha"),
    ("19999,Xã Thử,xa,", "dòng 4: '19999' không có địa bàn cha nên phải là loại tinh"),
    ("19999,Xã Thử,xa,19702", "dòng 4: '19999' loại xa không thể nằm ngay dưới '19702' loại xa"),
    ("19702-09,Thôn Thử,thon,44", "dòng 4: '19702-09' loại thon không thể nằm ngay dưới '44' loại tinh"),
    ("45,Tỉnh Thử,tinh,19702", "dòng 4: '45' loại tinh không thể nằm ngay dưới '19702'"),
    ("19702,Hải Lăng,thon,19735", "dòng 4: '19702' đổi sang loại thon thì"),
    ("19999 1,Xã Thử,xa,44", "dòng 4: mã '19999 1' chỉ được gồm"),
    ("19999\x01,Xã Thử,xa,44", "dòng 4: cột code có ký tự điều khiển hoặc ký tự ẩn U+0001"),
    ("19999,Xã\x00Thử,xa,44", "dòng 4: cột name có ký tự điều khiển hoặc ký tự ẩn U+0000"),
    ('19999,"Xã\rThử",xa,44', "dòng 4: cột name có ký tự điều khiển hoặc ký tự ẩn U+000A"),  # \r read as a newline
    ("19999,Xã\u200bThử,xa,44", "dòng 4: cột name có ký tự điều khiển hoặc ký tự ẩn U+200B"),
    ("19999,Xã\x85Thử,xa,44", "dòng 4: cột name có ký tự điều khiển hoặc ký tự ẩn U+0085"),
    ("19999,Xã Thử,xa\t,44\t1", "dòng 4: cột parent_code có ký tự điều khiển hoặc ký tự ẩn U+0009"),
    ("19999,Xã Thử,xa,44\n19999-01,Thôn Thử,thon\x7f,19999", "dòng 5: cột kind có ký tự điều khiển"),
    (f"19999,{'X' * 201},xa,44", "dòng 4: tên dài 201 ký tự, tối đa 200"),
    (f"19999,{'X' * 140_000},xa,44", "dòng 4: không đọc được CSV"),
])
def test_a_bad_locality_row_is_refused_naming_its_line(cli, capsys, rows, expected):
    (cli / "bad.csv").write_bytes((HEAD + rows + "\n").encode())
    refused(cli, capsys, ["locality", "import", "bad.csv"], expected)


def test_good_locality_files_still_load(cli, capsys):
    seed = resources.files("storage.seed").joinpath("localities.csv").read_text(encoding="utf-8")
    (cli / "seed.csv").write_text(seed, encoding="utf-8")
    assert main(["locality", "import", "seed.csv"]) == 0  # the province itself again: an update, not a second root
    (cli / "good.csv").write_text(HEAD + f"19999,{'X' * 200},phuong,44\n19999-01,Tổ dân phố 1,to_dan_pho,19999\n"
                                  "19702,Hải Lăng,dac_khu,44\n", encoding="utf-8")  # same level: its villages stay
    assert main(["locality", "import", "good.csv"]) == 0
    assert "Đã nhập 3 địa bàn." in capsys.readouterr().out


TASK = "tasks:\n  - code: dv-01\n    title: Sơ kết Dân vận khéo\n    deadline: 2030-02-28\n    localities: ['44']\n"
CAMPAIGN = "campaigns:\n  - code: ntm-2030\n    title_vi: Nông thôn mới\n    description_vi: Mỗi hộ một việc.\n" \
    "    starts_on: 2030-01-01\n"
BROADCAST = "text_vi: Ngày thứ Bảy xanh\nfeedback_button: true\noverride_quiet_hours: false\n" \
    "audience: {topics: [nong-thon-moi], roles: [citizen]}\n"


@pytest.mark.parametrize(("command", "good", "bad", "expected"), [
    ("task", TASK, ("2030-02-28", "2030-02-31"), "nhiệm vụ thứ 1 (dv-01): deadline: cần một ngày có thật"),
    ("task", TASK, ("2030-02-28", "31/02/2030"), "(dv-01): deadline: cần một ngày có thật, dạng YYYY-MM-DD hoặc"),
    ("task", TASK, ("2030-02-28", "[2030]"), "(dv-01): deadline: cần một ngày có thật"),
    ("task", TASK, ("Sơ kết Dân vận khéo", "[Sơ kết, Dân vận khéo]"), "(dv-01): title: phải là chữ"),
    ("task", TASK, ("code: dv-01", "code: {a: 1}"), "nhiệm vụ thứ 1: code: phải là chữ"),
    ("task", TASK, ("['44']", "'44'"), "(dv-01): localities: cần một danh sách mã"),
    ("task", TASK, ("['44']", "[0044]"), "không có mã địa bàn '0044'"),  # YAML 1.1 read it as 36
    ("task", TASK, ("['44']", "[[44]]"), "(dv-01): localities: cần một danh sách mã"),
    ("task", TASK, ("2030-02-28", "!!int x"), "không đúng cú pháp YAML"),
    ("campaign", CAMPAIGN, ("2030-01-01", "2030-02-31"), "ntm-2030: starts_on: cần một ngày có thật"),
    ("campaign", CAMPAIGN, ("2030-01-01", "31/02/2030"), "ntm-2030: starts_on: cần một ngày có thật"),
    ("campaign", CAMPAIGN, ("Nông thôn mới", "[Nông thôn mới]"), "ntm-2030: title_vi: phải là chữ"),
    ("broadcast", BROADCAST, ("feedback_button: true", "feedback_button: maybe"),
     "feedback_button: cần true hoặc false (yes/no, on/off cũng được), đang là 'maybe'"),
    ("broadcast", BROADCAST, ("feedback_button: true", "feedback_button: 1"), "feedback_button: cần true hoặc false"),
    ("broadcast", BROADCAST, ("override_quiet_hours: false", 'override_quiet_hours: "yes please"'),
     "override_quiet_hours: cần true hoặc false"),
    ("broadcast", BROADCAST, ("override_quiet_hours: false", "override_quiet_hours: [no]"),
     "override_quiet_hours: cần true hoặc false"),
    ("broadcast", BROADCAST, ("topics: [nong-thon-moi]", "topics: nong-thon-moi"),
     "audience: topics: cần một danh sách mã"),
    ("broadcast", BROADCAST, ("roles: [citizen]", "roles: citizen"), "audience: roles: cần một danh sách mã"),
    ("broadcast", BROADCAST, ("text_vi: Ngày thứ Bảy xanh", "text_vi: {a: 1}"), "text_vi: phải là chữ"),
    ("broadcast", BROADCAST, ("feedback_button: true", "at: 2030-02-31"), "at: cần ngày giờ địa phương"),
    ("broadcast", BROADCAST, ("feedback_button: true", "at: [27/11/2026 07:30]"), "at: phải là chữ"),
    ("broadcast", BROADCAST, ("feedback_button: true", "campaign: [ntm-2030]"), "campaign: phải là chữ"),
    # A key written twice: YAML would keep the last one silently.
    ("task", TASK, ("    localities:", "    deadline: 2030-03-31\n    localities:"),
     "dòng 5: khóa deadline đã có ở dòng 4; mỗi khóa chỉ được ghi một lần"),
    ("campaign", CAMPAIGN, ("    starts_on:", "    title_vi: Nông thôn mới nâng cao\n    starts_on:"),
     "dòng 5: khóa title_vi đã có ở dòng 3"),
    ("broadcast", BROADCAST, ("roles: [citizen]}", "roles: [citizen], 'topics': [an-sinh]}"),
     "dòng 4: khóa topics đã có ở dòng 4"),
    ("broadcast", BROADCAST, ("feedback_button: true\n", "feedback_button: true\nfeedback_button: false\n"),
     "dòng 3: khóa feedback_button đã có ở dòng 2"),
])
def test_a_bad_yaml_field_is_refused_naming_it(cli, capsys, command, good, bad, expected):
    (cli / "bad.yaml").write_text(good.replace(*bad), encoding="utf-8")
    argv = {"task": ["task", "load"], "campaign": ["campaign", "load"], "broadcast": ["broadcast", "send"]}[command]
    refused(cli, capsys, [*argv, "bad.yaml"], expected)


def test_yes_no_fields_and_dates_as_operators_write_them(cli, capsys):
    (cli / "tasks.yaml").write_text(TASK.replace("2030-02-28", "28/02/2030").replace("['44']", "[44]"),
                                    encoding="utf-8")
    assert main(["task", "load", "tasks.yaml"]) == 0
    assert "Đã nạp nhiệm vụ: 1 mới, 0 cập nhật." in capsys.readouterr().out
    for written in ("yes", "No", "ON", "false"):
        (cli / "send.yaml").write_text(BROADCAST.replace("feedback_button: true", f"feedback_button: {written}")
                                       + "text_en: no\n", encoding="utf-8")  # text, not False
        assert main(["broadcast", "send", "send.yaml"]) == 0
    assert "Thông báo #4:" in capsys.readouterr().out
    with sqlite3.connect(cli / "cli.db") as db:
        assert db.execute("SELECT group_concat(feedback), group_concat(text_en, '|') FROM broadcasts").fetchone() \
            == ("1,0,1,0", "no|no|no|no")
