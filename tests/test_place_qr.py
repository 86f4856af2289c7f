"""Poster QR codes for places, as campaigns have: from the admin menu in chat and from `danvan locality qr`."""

from __future__ import annotations

import re

from bot.cli import main
from handlers.campaigns import qr_png
from tests.dialog import turns
from tests.test_broadcast_flows import PNG, cli_env  # noqa: F401  (cli_env: a fixture)
from tests.test_roles import make_admin


async def test_an_admin_gets_a_villages_qr_code_from_the_menu(harness, store):
    admin = await make_admin(harness, store)
    await turns(admin, [("/menu", ["Mã QR địa bàn"]), ("[Mã QR địa bàn]", ["Chọn địa bàn"]), ("hai lang", []),
                        ("[xã Hải Lăng]", ["Chọn thôn, tổ dân phố"])])
    replies = await admin.click("Thôn Long Hưng")
    (qr,) = [r for r in replies if r.document is not None]
    link = re.search(r"https://\S+?start=l_[\w-]+", qr.text).group(0)
    village = await store.localities.by_code(link.rsplit("l_", 1)[1])
    assert village.name == "Thôn Long Hưng" and "Thôn Long Hưng, xã Hải Lăng" in harness.seen(qr.text)
    assert qr.document.content == qr_png(link) and qr.document.content.startswith(PNG)
    lan = harness.person("1001")  # who scans it starts with the village chosen
    await turns(lan, [(f"/start l_{village.code}", ["Kính chào"])])
    assert (await store.conversations.get("test", "1001")).data["preset_locality"] == village.id
    assert "locality.qr" in [a.action for a in await store.audit.recent()]


def test_cli_writes_a_communes_qr_code(cli_env, capsys):  # noqa: F811
    assert main(["locality", "qr", "19702", "--out", "hai-lang.png", "--web"]) == 0
    link = capsys.readouterr().out.strip().split(": ", 1)[1]
    assert link.endswith("/?start=l_19702")
    assert (cli_env / "hai-lang.png").read_bytes() == qr_png(link)
    assert main(["locality", "qr", "nope", "--out", "x.png"]) == 1
    assert "nope" in capsys.readouterr().err
