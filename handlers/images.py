"""Every image a person sends is decoded, not trusted: opened with Pillow, refused if it does not decode
or is too large in pixels (a small file can unpack into gigabytes), turned upright by its EXIF
orientation, its colours brought to sRGB by its own colour profile (a phone's Display P3, a print shop's CMYK),
stripped of EXIF and every other metadata (GPS inside a photo is personal data the person did not choose to
send), flattened on white, shrunk to `LONG_SIDE` and re-encoded as JPEG. An iPhone's HEIC is taken too, decoded
by pi-heif (libheif, decoding only).

Channels call `normalised` where bytes arrive (the web chat's upload); handlers through `Ctx.keep`.
"""

from __future__ import annotations

import asyncio
import io

from pi_heif import register_heif_opener
from PIL import Image, ImageCms, ImageOps

MIME = "image/jpeg"  # what every kept image is
LONG_SIDE = 2560  # pixels on the long side: sharp on any screen, a few hundred KB
MAX_PIXELS = 50_000_000  # a 48 MP phone camera fits; a decompression bomb does not
MAX_BYTES = 20 * 1024 * 1024  # an image file as sent (Telegram's Bot API serves files up to 20 MB)
QUALITY = 85
# What phones and browsers send (MPO comes as JPEG; HEIF is an iPhone's photo); fewer decoders to attack.
FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")
MIMES = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"})  # as a platform names them
WHITE = (255, 255, 255)
SRGB = ImageCms.createProfile("sRGB")
MANAGED = {"RGB": "RGB", "RGBA": "RGBA", "CMYK": "RGB"}  # modes whose profile is applied, and what they become

register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)  # the photo only


class BadImage(Exception):
    """The bytes are not an image this bot takes; `key` is the catalog text that says why."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def normalise(data: bytes) -> bytes:
    """The image in `data` as a JPEG without metadata, upright, at most `LONG_SIDE` px on the long side.
    Raises BadImage. CPU-heavy: on the event loop use `normalised`."""
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        if image.width * image.height > MAX_PIXELS:
            raise BadImage("image.too_big")
        image.draft(None, (LONG_SIDE, LONG_SIDE))  # a big JPEG is decoded at a reduced scale: less memory
        image = ImageOps.exif_transpose(image)
        # A profile's conversion costs per pixel: shrunk first where resizing is exact (RGB, RGBA with its alpha
        # premultiplied, CMYK); a palette is resized by nearest neighbour, so the rest are flattened first.
        if image.mode in MANAGED:
            image.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.LANCZOS)
        image = _flat(_srgb(image))
        image.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.LANCZOS)  # already done, or done now
        out = io.BytesIO()
        image.save(out, "JPEG", quality=QUALITY)
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage("image.too_big") from None
    # Pillow's decoders raise many kinds of errors on hostile bytes (OSError, ValueError, SyntaxError,
    # struct.error, EOFError…); each means the same thing here: not an image this bot takes.
    except Exception:
        raise BadImage("image.unreadable") from None
    return out.getvalue()


async def normalised(data: bytes) -> bytes:
    """`normalise`, in a worker thread so the event loop keeps answering others."""
    return await asyncio.to_thread(normalise, data)


def _srgb(image: Image.Image) -> Image.Image:
    """The colours in sRGB, as the image's own ICC profile says they are: a JPEG without a profile is read as sRGB,
    so dropping a Display P3 or CMYK profile would dull or shift them. A profile that does not parse or does not
    fit the image is ignored: the photo is still kept."""
    profile = image.info.get("icc_profile")
    if not profile or image.mode not in MANAGED:
        return image
    try:
        return ImageCms.profileToProfile(image, io.BytesIO(profile), SRGB, outputMode=MANAGED[image.mode])
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image


def _flat(image: Image.Image) -> Image.Image:
    """RGB, with any transparency laid on white (JPEG has no alpha; black behind a logo reads badly)."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")
