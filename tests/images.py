"""Real images for tests, made with Pillow: small ones for flows, and a phone's photo as a phone makes it
(about 12 MB, 4000×3000, EXIF with the camera, GPS and an orientation)."""

from __future__ import annotations

import io
import random
import struct
from functools import cache
from pathlib import Path

from PIL import ExifTags, Image, ImageCms

GPS = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (16.0, 45.0, 12.5),
       ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (107.0, 11.0, 3.25)}
RED = (220, 20, 20)


def encoded(image: Image.Image, form: str = "JPEG", **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, form, **options)
    return out.getvalue()


def jpeg(width: int = 8, height: int = 6, color: tuple[int, int, int] = (163, 29, 29)) -> bytes:
    return encoded(Image.new("RGB", (width, height), color))


def png(width: int = 8, height: int = 6, mode: str = "RGB", color: tuple = (163, 29, 29)) -> bytes:
    return encoded(Image.new(mode, (width, height), color), "PNG")


@cache
def phone_photo(icc_profile: bytes | None = None) -> bytes:
    """Noise (so it compresses like a photo), stored sideways with orientation 6 ("turn 90° clockwise to
    show"), a red block in the stored top-left corner, which shows at the top right; with `icc_profile` if given."""
    width, height = 4000, 3000
    image = Image.frombytes("RGB", (width, height), random.Random(7).randbytes(width * height * 3))
    image.paste(RED, (0, 0, 400, 400))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Samsung"
    exif[ExifTags.Base.Model] = "Galaxy A54"
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.IFD.GPSInfo] = GPS
    return encoded(image, quality=93, exif=exif, icc_profile=icc_profile)


def iphone_photo() -> bytes:
    """An iPhone's HEIC (made with pillow-heif, which can write it): 96×64, the left half red, GPS in its EXIF."""
    return (Path(__file__).parent / "reference" / "iphone.heic").read_bytes()


@cache
def swapped_profile() -> bytes:
    """An ICC profile by which the first channel is green and the second red: sRGB's, with the red and green
    primaries' tags traded. A photo carrying it shows its colours only if its profile is honoured."""
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    count = struct.unpack(">I", srgb[128:132])[0]
    entries = {srgb[at:at + 4]: at for at in range(132, 132 + 12 * count, 12)}
    profile = bytearray(srgb)
    red, green = entries[b"rXYZ"], entries[b"gXYZ"]
    profile[red + 4:red + 12], profile[green + 4:green + 12] = srgb[green + 4:green + 12], srgb[red + 4:red + 12]
    profile[84:100] = bytes(16)  # its digest no longer holds: "not computed"
    return bytes(profile)


def gps_of(data: bytes) -> dict:
    return dict(Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo))


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
