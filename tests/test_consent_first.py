"""Nothing about a person is kept before they accept a purpose: only the chat to answer and the conversation."""

from __future__ import annotations

import pytest

from tests.dialog import ONBOARD, turns

pytestmark = pytest.mark.backends


async def test_nothing_but_the_chat_is_kept_until_a_purpose_is_accepted(harness, store):
    lan = harness.person()
    await turns(lan, [("/start", ["Kính chào"])])
    user = await store.users.find("test", "1001")
    assert user.chat_id == "1001" and user.display_name is None and not user.news_enabled and not user.consented
    await turns(lan, [("[Đồng ý]", ["Đã ghi nhận"])])
    user = await store.users.find("test", "1001")
    assert user.display_name == "Nguyễn Thị Lan" and user.language == "vi" and user.consented


async def test_declining_everything_keeps_no_name(harness, store):
    hung = harness.person("2002", name="Trần Văn Hùng")
    await turns(hung, [("/start", []), ("[Không đồng ý]", []), ("[Không đồng ý]", ["không lưu địa bàn"])])
    user = await store.users.find("test", "2002")
    assert user.onboarded and user.display_name is None and not user.news_enabled


async def test_language_is_used_before_consent_and_kept_after(harness, store):
    john = harness.person("5005", name="John", language="en")
    await turns(john, [("/start", ["Welcome"])])
    assert (await store.users.find("test", "5005")).language == "vi"  # the column's default: nothing of John
    await turns(john, [("[I agree]", ["Purpose 2/2"])])
    user = await store.users.find("test", "5005")
    assert user.language == "en" and user.display_name == "John"


async def test_after_erasure_the_next_message_is_a_new_empty_person(harness, store):
    lan = harness.person()
    await turns(lan, ONBOARD)
    await turns(lan, [("/xoadulieu", []), ("[Xóa dữ liệu của tôi]", ["Đã xóa dữ liệu"])])
    await turns(lan, [("xin chào", ["/start"])])
    user = await store.users.find("test", "1001")
    assert user.display_name is None and not user.news_enabled and not user.onboarded
    replies = await lan.say("/dulieu")
    assert [r.document for r in replies] == [None]
    assert replies[0].text == "Bot không lưu thông tin nào về Ông/Bà, ngoài mã cuộc trò chuyện để trả lời tin nhắn" \
                              " của Ông/Bà."
