"""handlers/images.py: every image a person sends is decoded, cleaned of metadata, shrunk and re-encoded,
or refused with the catalog's reason. (The channels' ends: test_web_api, test_telegram_e2e, the CLI's
scripted broadcasts in test_broadcast_flows; arbitrary bytes: test_properties.)"""

from __future__ import annotations

import threading

import pytest
from PIL import Image, ImageCms

from handlers import images
from handlers.images import LONG_SIDE, BadImage, normalise
from messages import Texts
from tests.images import RED, encoded, gps_of, iphone_photo, jpeg, opened, phone_photo, png, swapped_profile


def refused(data: bytes) -> str:
    with pytest.raises(BadImage) as caught:
        normalise(data)
    return caught.value.key


def test_a_phone_photo_is_upright_shrunk_and_without_exif_or_gps():
    photo = phone_photo()
    assert opened(photo).size == (4000, 3000) and gps_of(photo) and opened(photo).getexif()[0x0112] == 6
    kept = opened(normalise(photo))
    assert kept.format == "JPEG" and kept.mode == "RGB" and kept.size == (1920, LONG_SIDE)
    assert kept.getpixel((1900, 20)) == pytest.approx(RED, abs=40)  # stored top-left, shown top right
    assert kept.getpixel((20, 20)) != pytest.approx(RED, abs=40)
    assert not kept.getexif() and not kept.info.get("exif") and not kept.info.get("icc_profile")


def test_a_small_image_keeps_its_size_and_transparency_is_flattened_on_white():
    assert opened(normalise(jpeg(640, 480))).size == (640, 480)
    clear = opened(normalise(png(40, 30, "RGBA", (0, 0, 0, 0))))
    assert clear.format == "JPEG" and clear.mode == "RGB" and clear.getpixel((20, 15)) == pytest.approx(
        (255, 255, 255), abs=2)
    half = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    half.paste((200, 0, 0, 255), (0, 0, 20, 30))
    flat = opened(normalise(encoded(half, "PNG")))
    assert flat.getpixel((5, 15)) == pytest.approx((200, 0, 0), abs=12)
    assert flat.getpixel((35, 15)) == pytest.approx((255, 255, 255), abs=2)
    palette = Image.new("P", (10, 10), 0)
    palette.info["transparency"] = 0
    assert opened(normalise(encoded(palette, "PNG"))).getpixel((5, 5)) == pytest.approx((255, 255, 255), abs=2)
    assert opened(normalise(encoded(Image.new("RGB", (30, 20), (0, 90, 200)), "WEBP"))).format == "JPEG"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_an_iphone_heic_photo_is_kept_as_jpeg_without_gps():
    photo = iphone_photo()
    assert gps_of(photo)
    kept = opened(normalise(photo))
    assert kept.format == "JPEG" and kept.mode == "RGB" and kept.size == (96, 64)
    assert kept.getpixel((10, 32)) == pytest.approx(RED, abs=30)
    assert kept.getpixel((80, 32)) == pytest.approx((255, 255, 255), abs=10)
    assert not kept.getexif() and not kept.info.get("exif")


def test_colour_profiles_are_honoured_and_cmyk_kept():
    # Kept as sRGB, which is how a JPEG without a profile is read: dropping the profile would change the colours.
    tagged = opened(normalise(encoded(Image.new("RGB", (40, 30), (200, 30, 30)), icc_profile=swapped_profile())))
    assert tagged.getpixel((5, 5)) == pytest.approx((30, 200, 30), abs=12) and not tagged.info.get("icc_profile")
    cmyk = Image.new("CMYK", (40, 30), (0, 230, 230, 30))  # a red from a print shop's file
    for profile in (None, swapped_profile(), b"not a profile" * 20):  # none, one for RGB, a broken one: still kept
        kept = opened(normalise(encoded(cmyk, icc_profile=profile)))
        assert kept.mode == "RGB" and kept.getpixel((5, 5)) == pytest.approx((225, 25, 25), abs=12)


def test_a_phone_photo_s_profile_is_applied_after_shrinking(monkeypatch):
    # The conversion costs per pixel: done on the kept size, not on all 12 MP.
    seen, convert = [], ImageCms.profileToProfile
    monkeypatch.setattr(ImageCms, "profileToProfile", lambda image, *a, **k: seen.append(image.size) or convert(
        image, *a, **k))
    kept = opened(normalise(phone_photo(swapped_profile())))
    assert seen == [(1920, LONG_SIDE)] and kept.size == (1920, LONG_SIDE)
    assert kept.getpixel((1900, 20)) == pytest.approx((RED[1], RED[0], RED[2]), abs=40)  # its red, read as green
    # Shrunk first too: half-transparent with a profile, and a print shop's CMYK (whose RGB profile does not fit).
    for mode, color, form, shown in (("RGBA", (200, 30, 30, 128), "PNG", (142, 227, 142)),
                                     ("CMYK", (0, 230, 230, 30), "JPEG", (225, 25, 25))):
        kept = opened(normalise(encoded(Image.new(mode, (2600, 100), color), form, icc_profile=swapped_profile())))
        assert kept.size == (LONG_SIDE, 98) and kept.getpixel((5, 5)) == pytest.approx(shown, abs=12)
    assert seen[1:] == [(LONG_SIDE, 98)] * 2


def test_too_many_pixels_is_refused_before_decoding():
    # 64 MP: over our limit; 100 MP: Pillow's warning too; 225 MP: Pillow's own refusal. All small files.
    for side in (8000, 10000, 15000):
        bomb = encoded(Image.new("L", (side, side)), "PNG")
        assert len(bomb) < 300 * 1024 and refused(bomb) == "image.too_big"


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_pillow_s_bomb_warning_is_a_refusal_too():
    assert refused(encoded(Image.new("L", (10000, 10000)), "PNG")) == "image.too_big"


def test_broken_and_false_images_are_refused():
    photo = jpeg(320, 240)
    scan = photo.index(b"\xff\xda")  # the header ends where the compressed data starts
    assert refused(photo[:scan + 20] + bytes(range(256)) * 8) == "image.unreadable"
    assert refused(photo[:scan + 20]) == "image.unreadable"  # cut short
    assert refused("Đây là chữ, không phải ảnh".encode() * 20) == "image.unreadable"  # a text file named .jpg
    assert refused(b"") == "image.unreadable"
    assert refused(encoded(Image.new("RGB", (4, 4)), "GIF")) == "image.unreadable"  # not a format we take
    assert refused(encoded(Image.new("RGB", (4, 4)), "BMP")) == "image.unreadable"


def test_the_refusals_are_polite_in_both_languages():
    for key in ("image.unreadable", "image.too_big"):
        assert "Vui lòng" in Texts("vi")(key) and "Please" in Texts("en")(key)


async def test_normalised_runs_off_the_event_loop(monkeypatch):
    threads = []
    monkeypatch.setattr(images, "normalise", lambda data: threads.append(threading.get_ident()) or data)
    assert await images.normalised(b"x") == b"x" and threads and threads != [threading.get_ident()]
