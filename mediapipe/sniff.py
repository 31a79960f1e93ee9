"""Recognise media from its first bytes, and judge a body by them (contract §4.5).

Everything here is pure: bytes and strings in, values out, nothing raises on hostile input.
"""

from __future__ import annotations

import codecs
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from mediapipe.mediatypes import essence, extension_for_mime, url_extension

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "SNIFF_BYTES",
    "MediaFormat",
    "Verdict",
    "can_verify",
    "judge_body",
    "looks_textual",
    "non_media",
    "sniff",
]

SNIFF_BYTES: int = 4096
"""How many leading bytes to gather before calling :func:`sniff` or :func:`looks_textual`.

Both functions look at no more than this, so their answer does not depend on the caller's buffer
size. It is enough for an SVG behind an XML prolog and comments, and for the second frame of an
MP3; an SVG whose ``<svg`` starts later than this is not recognised (and reads as text).
"""

MediaKind = Literal["image", "audio", "video"]


@dataclass(frozen=True, slots=True)
class MediaFormat:
    """A recognised format: its MIME type, canonical extension, kind, and whether it is a bitmap.

    ``raster`` is True for bitmap images whose size Pillow reads without plugins.
    """

    mime: str
    ext: str
    kind: MediaKind
    raster: bool


_JPEG = MediaFormat("image/jpeg", ".jpg", "image", True)
_PNG = MediaFormat("image/png", ".png", "image", True)
_GIF = MediaFormat("image/gif", ".gif", "image", True)
_WEBP = MediaFormat("image/webp", ".webp", "image", True)
_AVIF = MediaFormat("image/avif", ".avif", "image", True)
# HEIC/HEIF are bitmaps, but Pillow reads them only with the pillow-heif plugin.
_HEIC = MediaFormat("image/heic", ".heic", "image", False)
_HEIF = MediaFormat("image/heif", ".heif", "image", False)
_BMP = MediaFormat("image/bmp", ".bmp", "image", True)
_TIFF = MediaFormat("image/tiff", ".tiff", "image", True)
_ICO = MediaFormat("image/x-icon", ".ico", "image", True)
_SVG = MediaFormat("image/svg+xml", ".svg", "image", False)
_MP3 = MediaFormat("audio/mpeg", ".mp3", "audio", False)
_AAC = MediaFormat("audio/aac", ".aac", "audio", False)
_WAV = MediaFormat("audio/wav", ".wav", "audio", False)
_FLAC = MediaFormat("audio/flac", ".flac", "audio", False)
_OGG = MediaFormat("audio/ogg", ".ogg", "audio", False)
_OPUS = MediaFormat("audio/ogg", ".opus", "audio", False)
_OGG_VIDEO = MediaFormat("video/ogg", ".ogv", "video", False)
_M4A = MediaFormat("audio/mp4", ".m4a", "audio", False)
_MP4 = MediaFormat("video/mp4", ".mp4", "video", False)
_M4V = MediaFormat("video/mp4", ".m4v", "video", False)
_MOV = MediaFormat("video/quicktime", ".mov", "video", False)
_3GP = MediaFormat("video/3gpp", ".3gp", "video", False)
_3G2 = MediaFormat("video/3gpp2", ".3g2", "video", False)
_WEBM = MediaFormat("video/webm", ".webm", "video", False)
_MKV = MediaFormat("video/x-matroska", ".mkv", "video", False)
_AVI = MediaFormat("video/x-msvideo", ".avi", "video", False)
_JXL = MediaFormat("image/jxl", ".jxl", "image", False)
_JP2 = MediaFormat("image/jp2", ".jp2", "image", True)
_QOI = MediaFormat("image/qoi", ".qoi", "image", True)
_AIFF = MediaFormat("audio/aiff", ".aiff", "audio", False)
_AIFC = MediaFormat("audio/aiff", ".aifc", "audio", False)
_AU = MediaFormat("audio/basic", ".au", "audio", False)
_AC3 = MediaFormat("audio/ac3", ".ac3", "audio", False)
_DTS = MediaFormat("audio/vnd.dts", ".dts", "audio", False)
_AMR = MediaFormat("audio/amr", ".amr", "audio", False)
_AMR_WB = MediaFormat("audio/amr-wb", ".awb", "audio", False)
_MIDI = MediaFormat("audio/midi", ".mid", "audio", False)
_CAF = MediaFormat("audio/x-caf", ".caf", "audio", False)
_APE = MediaFormat("audio/x-ape", ".ape", "audio", False)
_WAVPACK = MediaFormat("audio/x-wavpack", ".wv", "audio", False)
_WMA = MediaFormat("audio/x-ms-wma", ".wma", "audio", False)
_WMV = MediaFormat("video/x-ms-wmv", ".wmv", "video", False)
_ASF = MediaFormat("video/x-ms-asf", ".asf", "video", False)
_FLV = MediaFormat("video/x-flv", ".flv", "video", False)
_MPEG_TS = MediaFormat("video/mp2t", ".ts", "video", False)
_M2TS = MediaFormat("video/mp2t", ".m2ts", "video", False)
_MPEG_VIDEO = MediaFormat("video/mpeg", ".mpg", "video", False)

# --- magic numbers ----------------------------------------------------------------------------


def sniff(head: bytes) -> MediaFormat | None:
    """Return the media format the leading bytes belong to, or None when they match none."""
    head = bytes(head[:SNIFF_BYTES])
    for detect in _DETECTORS:
        found = detect(head)
        if found is not None:
            return found
    return None


_SIGNATURES: tuple[tuple[bytes, MediaFormat], ...] = (
    (b"\xff\xd8\xff", _JPEG),
    (b"GIF87a", _GIF),
    (b"GIF89a", _GIF),
    (b"II*\x00", _TIFF),
    (b"MM\x00*", _TIFF),
    (b"II+\x00", _TIFF),  # BigTIFF
    (b"MM\x00+", _TIFF),
    (b"\xff\x0a", _JXL),  # bare codestream
    (b"\x00\x00\x00\x0cJXL \x0d\x0a\x87\x0a", _JXL),
    (b"\x00\x00\x00\x0cjP  \x0d\x0a\x87\x0a", _JP2),
    (b"fLaC", _FLAC),
    (b"#!AMR\n", _AMR),
    (b"#!AMR-WB\n", _AMR_WB),
    (b"MThd\x00\x00\x00\x06", _MIDI),  # the header chunk is always 6 bytes long
    (b"caff\x00\x01\x00\x00", _CAF),  # file version 1, no flags
    (b"\x7f\xfe\x80\x01", _DTS),  # core sync word, big-endian
    (b"\xfe\x7f\x01\x80", _DTS),  # little-endian
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11\xa6\xd9\x00\xaa\x00\x62\xce\x6c", _ASF),
)


def _signature(head: bytes) -> MediaFormat | None:
    for magic, found in _SIGNATURES:
        if head.startswith(magic):
            return _asf_kind(head) if found is _ASF else found
    return None


# The stream type GUIDs of ASF stream properties objects, in their on-disk byte order.
_ASF_VIDEO_MEDIA = b"\xc0\xef\x19\xbc\x4d\x5b\xcf\x11\xa8\xfd\x00\x80\x5f\x5c\x44\x2b"
_ASF_AUDIO_MEDIA = b"\x40\x9e\x69\xf8\x4d\x5b\xcf\x11\xa8\xfd\x00\x80\x5f\x5c\x44\x2b"


def _asf_kind(head: bytes) -> MediaFormat:
    if _ASF_VIDEO_MEDIA in head:
        return _WMV
    if _ASF_AUDIO_MEDIA in head:
        return _WMA
    return _ASF


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IHDR_END = 29  # signature, chunk length and type, then 13 bytes of IHDR data
# Bit depths allowed for each colour type (PNG specification, table 11.1).
_PNG_BIT_DEPTHS: dict[int, frozenset[int]] = {
    0: frozenset({1, 2, 4, 8, 16}),
    2: frozenset({8, 16}),
    3: frozenset({1, 2, 4, 8}),
    4: frozenset({8, 16}),
    6: frozenset({8, 16}),
}


def _png(head: bytes) -> MediaFormat | None:
    if not head.startswith(_PNG_SIGNATURE):
        return None
    if len(head) < _PNG_IHDR_END:
        return _PNG  # the header is cut off; the signature is all there is to go on
    if head[8:16] != b"\x00\x00\x00\x0dIHDR":
        return None
    width = int.from_bytes(head[16:20], "big")
    height = int.from_bytes(head[20:24], "big")
    depth, colour, compression, filtering, interlace = head[24:29]
    if not width or not height or depth not in _PNG_BIT_DEPTHS.get(colour, ()):
        return None
    if compression or filtering or interlace > 1:
        return None
    return _PNG


def _qoi(head: bytes) -> MediaFormat | None:
    if not head.startswith(b"qoif") or len(head) < 14:
        return None
    width = int.from_bytes(head[4:8], "big")
    height = int.from_bytes(head[8:12], "big")
    if not width or not height or head[12] not in (3, 4) or head[13] > 1:
        return None
    return _QOI


_RIFF_FORMS = {b"WEBP": _WEBP, b"WAVE": _WAV, b"AVI ": _AVI}
# RF64 and BW64 are WAVE files over 4 GiB: the same layout under another chunk name.
_LARGE_WAVE_CHUNKS = (b"RF64", b"BW64")


def _riff(head: bytes) -> MediaFormat | None:
    if head.startswith(b"RIFF"):
        return _RIFF_FORMS.get(head[8:12])
    if head.startswith(_LARGE_WAVE_CHUNKS) and head[8:12] == b"WAVE":
        return _WAV
    return None


_IFF_FORMS = {b"AIFF": _AIFF, b"AIFC": _AIFC}


def _iff(head: bytes) -> MediaFormat | None:
    if not head.startswith(b"FORM"):
        return None
    return _IFF_FORMS.get(head[8:12])


_AU_HEADER_SIZE = 24
_AU_LAST_ENCODING = 27


def _au(head: bytes) -> MediaFormat | None:
    if not head.startswith(b".snd") or len(head) < _AU_HEADER_SIZE:
        return None
    data_offset = int.from_bytes(head[4:8], "big")
    encoding = int.from_bytes(head[12:16], "big")
    channels = int.from_bytes(head[20:24], "big")
    if data_offset < _AU_HEADER_SIZE or not 1 <= encoding <= _AU_LAST_ENCODING or not channels:
        return None
    return _AU


def _flv(head: bytes) -> MediaFormat | None:
    if not head.startswith(b"FLV\x01") or len(head) < 9:
        return None
    # Only the audio (4) and video (1) flags are defined; version 1 headers are 9 bytes long.
    if head[4] & 0xFA or int.from_bytes(head[5:9], "big") != 9:
        return None
    return _FLV


_TS_SYNC = 0x47
_TS_MIN_PACKETS = 5
# Plain transport streams use 188-byte packets; Blu-ray and AVCHD (.m2ts) put a 4-byte
# timestamp before each, so their sync bytes sit at 4 + 192 k.
_TS_LAYOUTS = ((0, 188, _MPEG_TS), (4, 192, _M2TS))


def _mpeg_ts(head: bytes) -> MediaFormat | None:
    for start, size, found in _TS_LAYOUTS:
        syncs = head[start::size]
        # A lone "G" (0x47) is common in text: several packets must be in view.
        if len(syncs) >= _TS_MIN_PACKETS and syncs.count(_TS_SYNC) == len(syncs):
            return found
    return None


def _mpeg_ps(head: bytes) -> MediaFormat | None:
    if len(head) < 8 or not head.startswith(b"\x00\x00\x01"):
        return None
    code, info = head[3], head[4]
    if code == 0xBA:  # pack header: its marker bits tell MPEG-2 from MPEG-1
        return _MPEG_VIDEO if info & 0xC4 == 0x44 or info & 0xF1 == 0x21 else None
    if code == 0xB3:  # video sequence header of an elementary stream
        width = info << 4 | head[5] >> 4
        height = (head[5] & 0x0F) << 8 | head[6]
        aspect, frame_rate = head[7] >> 4, head[7] & 0x0F
        if width and height and 1 <= aspect <= 14 and 1 <= frame_rate <= 8:
            return _MPEG_VIDEO
    return None


_AC3_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640)
_AC3_SAMPLE_RATES = (48000, 44100, 32000)
_AC3_HEADER = 6
_AC3_MAX_BSID = 8  # higher bitstream ids are E-AC-3 or newer, with another header


def _ac3_frame_length(header: bytes) -> int | None:
    """Length of the AC-3 sync frame starting here, or None if this is no frame."""
    if len(header) < _AC3_HEADER or not header.startswith(b"\x0b\x77"):
        return None
    rate_code, size_code = header[4] >> 6, header[4] & 0x3F
    if rate_code == 3 or size_code >= 2 * len(_AC3_KBPS) or header[5] >> 3 > _AC3_MAX_BSID:
        return None
    # 1536 samples per frame, counted in 16-bit words; at 44.1 kHz odd codes add a word.
    words = _AC3_KBPS[size_code >> 1] * 96_000 // _AC3_SAMPLE_RATES[rate_code]
    if rate_code == 1:
        words += size_code & 1
    return 2 * words


def _ac3(head: bytes) -> MediaFormat | None:
    length = _ac3_frame_length(head)
    if length is None:
        return None
    if len(head) >= length + _AC3_HEADER and _ac3_frame_length(head[length:]) is None:
        return None
    return _AC3


_APE_VERSIONS = range(3800, 5000)  # 3.80 to 4.99, written as hundredths


def _ape(head: bytes) -> MediaFormat | None:
    if head.startswith(b"MAC ") and int.from_bytes(head[4:6], "little") in _APE_VERSIONS:
        return _APE
    return None


_WAVPACK_VERSIONS = range(0x402, 0x411)


def _wavpack(head: bytes) -> MediaFormat | None:
    if head.startswith(b"wvpk") and int.from_bytes(head[8:10], "little") in _WAVPACK_VERSIONS:
        return _WAVPACK
    return None


# Sizes of the BITMAPINFOHEADER family; "BM" alone would match ordinary text.
_BMP_DIB_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})


def _bmp(head: bytes) -> MediaFormat | None:
    if head.startswith(b"BM") and len(head) >= 18:
        dib_size = int.from_bytes(head[14:18], "little")
        if dib_size in _BMP_DIB_HEADER_SIZES:
            return _BMP
    return None


def _ico(head: bytes) -> MediaFormat | None:
    if not head.startswith(b"\x00\x00\x01\x00") or len(head) < 6:
        return None
    if int.from_bytes(head[4:6], "little") == 0:
        return None
    # The first directory entry's reserved byte is always zero.
    if len(head) > 9 and head[9] != 0:
        return None
    return _ICO


# ISO base media file format (MP4, MOV, 3GP, HEIF, AVIF): the brands of the leading ftyp box.
_BRAND_FORMATS: dict[bytes, MediaFormat] = {
    b"avif": _AVIF, b"avis": _AVIF,
    b"heic": _HEIC, b"heix": _HEIC, b"heim": _HEIC, b"heis": _HEIC,
    b"hevc": _HEIC, b"hevx": _HEIC, b"hevm": _HEIC, b"hevs": _HEIC,
    b"M4A ": _M4A, b"M4B ": _M4A, b"M4P ": _M4A, b"F4A ": _M4A,
    b"M4V ": _M4V, b"M4VH": _M4V, b"M4VP": _M4V,
    b"qt  ": _MOV,
    b"isom": _MP4, b"iso2": _MP4, b"iso3": _MP4, b"iso4": _MP4, b"iso5": _MP4, b"iso6": _MP4,
    b"iso7": _MP4, b"iso8": _MP4, b"iso9": _MP4, b"mp41": _MP4, b"mp42": _MP4, b"mp71": _MP4,
    b"avc1": _MP4, b"dash": _MP4, b"msdh": _MP4, b"msix": _MP4, b"msnv": _MP4, b"mmp4": _MP4,
    b"f4v ": _MP4, b"XAVC": _MP4,
}  # fmt: skip
# Brands that only say "a HEIF image container"; the codec is named by another brand.
_GENERIC_IMAGE_BRANDS = frozenset({b"mif1", b"msf1", b"mif2", b"miaf"})


def _brand_format(brand: bytes) -> MediaFormat | None:
    if brand.startswith((b"3gp", b"3ge", b"3gg", b"3gs")):
        return _3GP
    if brand.startswith(b"3g2"):
        return _3G2
    return _BRAND_FORMATS.get(brand)


def _ftyp(head: bytes) -> MediaFormat | None:
    # A DASH or HLS media segment starts with a styp box, laid out like ftyp.
    if head[4:8] not in (b"ftyp", b"styp") or len(head) < 16:
        return None
    box_size = int.from_bytes(head[0:4], "big")
    if box_size < 16 or box_size % 4:
        return None
    major = head[8:12]
    compatible = [head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)]
    if major not in _GENERIC_IMAGE_BRANDS:
        found = _brand_format(major)
        if found is not None:
            return found
    for brand in compatible:
        found = _brand_format(brand)
        if found is not None:
            return found
    if major in _GENERIC_IMAGE_BRANDS or _GENERIC_IMAGE_BRANDS.intersection(compatible):
        return _HEIF
    return None


# Classic QuickTime files may start with these atoms instead of ftyp. The size's high byte
# must be zero (atom under 16 MiB), which no text ever starts with.
_QUICKTIME_LEADING_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})


def _quicktime(head: bytes) -> MediaFormat | None:
    if len(head) >= 8 and head[0] == 0 and head[4:8] in _QUICKTIME_LEADING_ATOMS:
        return _MOV
    return None


_EBML_DOC_TYPES = {"webm": _WEBM, "matroska": _MKV}


def _ebml(head: bytes) -> MediaFormat | None:
    if not head.startswith(b"\x1a\x45\xdf\xa3"):
        return None
    doc_type = _ebml_doc_type(head)
    if doc_type is None:
        return _MKV  # EBML's default DocType is "matroska"
    return _EBML_DOC_TYPES.get(doc_type)


def _ebml_doc_type(head: bytes) -> str | None:
    header_size = _read_vint(head, 4)
    if header_size is None:
        return None
    size, pos = header_size
    end = min(pos + size, len(head))
    while pos < end:
        element_id = _read_element_id(head, pos)
        if element_id is None:
            return None
        raw_id, pos = element_id
        element_size = _read_vint(head, pos)
        if element_size is None:
            return None
        size, pos = element_size
        if raw_id == b"\x42\x82":
            return head[pos : pos + size].rstrip(b"\x00").decode("ascii", "replace")
        pos += size
    return None


def _vint_length(first: int) -> int:
    # The count of leading zero bits tells how many more bytes follow (1–8 bytes in all).
    return 9 - first.bit_length() if first else 0


def _read_element_id(data: bytes, pos: int) -> tuple[bytes, int] | None:
    length = _vint_length(data[pos]) if pos < len(data) else 0
    if not length or pos + length > len(data):
        return None
    return data[pos : pos + length], pos + length


def _read_vint(data: bytes, pos: int) -> tuple[int, int] | None:
    raw = _read_element_id(data, pos)
    if raw is None:
        return None
    encoded, end = raw
    value = encoded[0] & (0xFF >> len(encoded))
    for byte in encoded[1:]:
        value = value << 8 | byte
    return value, end


def _ogg(head: bytes) -> MediaFormat | None:
    if not head.startswith(b"OggS\x00") or len(head) < 27:
        return None
    payload = head[27 + head[26] :]
    if payload.startswith(b"OpusHead"):
        return _OPUS
    if payload.startswith(b"\x80theora"):
        return _OGG_VIDEO
    return _OGG


def _id3(head: bytes) -> MediaFormat | None:
    if not head.startswith(b"ID3") or len(head) < 10:
        return None
    version, revision, flags = head[3], head[4], head[5]
    size_bytes = head[6:10]
    if version not in (2, 3, 4) or revision == 0xFF or any(b >= 0x80 for b in size_bytes):
        return None
    # The size is "syncsafe": four 7-bit groups.
    tag_size = 10 + sum(b << (7 * (3 - i)) for i, b in enumerate(size_bytes))
    if flags & 0x10:
        tag_size += 10  # footer
    # FLAC and AAC files sometimes carry an ID3 tag too; look past it when it is short.
    after = head[tag_size:]
    if after.startswith(b"fLaC"):
        return _FLAC
    if _adts(after) is not None:
        return _AAC
    return _MP3


# Layer III bit rates in kbit/s, indexed by the 4-bit field; 0 ("free") and 15 are refused.
_MPEG1_LAYER3_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0)
_MPEG2_LAYER3_KBPS = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0)
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_LAYER_3 = 1
_MPEG_1 = 3


def _mp3_frame_length(header: bytes) -> int | None:
    """Length of the MPEG audio Layer III frame starting here, or None if this is no frame."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version = (header[1] >> 3) & 3
    layer = (header[1] >> 1) & 3
    rate_index = (header[2] >> 2) & 3
    if version not in _SAMPLE_RATES or layer != _LAYER_3 or rate_index == 3:
        return None
    if header[3] & 3 == 2:  # reserved emphasis
        return None
    bitrate_table = _MPEG1_LAYER3_KBPS if version == _MPEG_1 else _MPEG2_LAYER3_KBPS
    kbps = bitrate_table[header[2] >> 4]
    if not kbps:
        return None
    samples_per_byte = 144 if version == _MPEG_1 else 72
    padding = (header[2] >> 1) & 1
    return samples_per_byte * kbps * 1000 // _SAMPLE_RATES[version][rate_index] + padding


def _mpeg_audio(head: bytes) -> MediaFormat | None:
    length = _mp3_frame_length(head)
    if length is None:
        return None
    # When the next frame is in view it must be a frame too: random bytes rarely manage twice.
    if len(head) >= length + 4 and _mp3_frame_length(head[length : length + 4]) is None:
        return None
    return _MP3


_ADTS_MIN_FRAME = 7


def _adts_frame_length(header: bytes) -> int | None:
    """Length of the AAC ADTS frame starting here, or None if this is no frame."""
    if len(header) < _ADTS_MIN_FRAME or header[0] != 0xFF or header[1] & 0xF6 != 0xF0:
        return None
    if (header[2] >> 2) & 0xF > 12:  # sampling-frequency index 13–15 are reserved
        return None
    length = (header[3] & 3) << 11 | header[4] << 3 | header[5] >> 5
    return length if length >= _ADTS_MIN_FRAME else None


def _adts(head: bytes) -> MediaFormat | None:
    length = _adts_frame_length(head)
    if length is None:
        return None
    if len(head) >= length + _ADTS_MIN_FRAME and _adts_frame_length(head[length:]) is None:
        return None
    return _AAC


_XML_SPACE = b" \t\r\n"


def _svg(head: bytes) -> MediaFormat | None:
    text = head.removeprefix(codecs.BOM_UTF8)
    pos = _skip_xml_prolog(text)
    if pos is None or not text.startswith(b"<svg", pos):
        return None
    after = text[pos + 4 : pos + 5]
    return _SVG if after and after in b" \t\r\n/>" else None


def _skip_xml_prolog(text: bytes) -> int | None:
    """Index of the first element after declarations, comments and a doctype; None if cut off."""
    pos = 0
    while True:
        while pos < len(text) and text[pos] in _XML_SPACE:
            pos += 1
        if text.startswith(b"<?", pos):
            end = text.find(b"?>", pos + 2)
            step = 2
        elif text.startswith(b"<!--", pos):
            end = text.find(b"-->", pos + 4)
            step = 3
        elif text[pos : pos + 9].upper() == b"<!DOCTYPE":
            end = _doctype_end(text, pos + 9)
            step = 1
        else:
            return pos
        if end < 0:
            return None
        pos = end + step


def _doctype_end(text: bytes, pos: int) -> int:
    close = text.find(b">", pos)
    subset = text.find(b"[", pos)
    # An internal subset ("[ <!ENTITY …> ]") may itself contain ">".
    if 0 <= subset < close:
        subset_end = text.find(b"]", subset)
        return -1 if subset_end < 0 else text.find(b">", subset_end)
    return close


_DETECTORS: tuple[Callable[[bytes], MediaFormat | None], ...] = (
    _signature,
    _png,
    _qoi,
    _riff,
    _iff,
    _au,
    _flv,
    _mpeg_ts,
    _mpeg_ps,
    _ac3,
    _ape,
    _wavpack,
    _ftyp,
    _ebml,
    _ogg,
    _id3,
    _mpeg_audio,
    _adts,
    _bmp,
    _ico,
    _quicktime,
    _svg,
)

# --- text -------------------------------------------------------------------------------------

_MARKUP_PREFIXES = (b"<!--", b"<?xml", b"<!doctype html")
_HTML_TAGS = (
    b"html", b"head", b"body", b"script", b"style", b"title", b"meta", b"link", b"div", b"span",
    b"p", b"a", b"br", b"h1", b"table", b"iframe", b"form", b"center", b"pre", b"noscript",
)  # fmt: skip
_TAG_ENDS = b" \t\r\n>/"
_TEXT_CONTROLS_ALLOWED = frozenset("\t\n\r\f\v\x1b")
_MAX_CONTROL_SHARE = 0.05
_MIN_ASCII_SHARE = 0.9


def looks_textual(head: bytes) -> bool:
    """True when the bytes are HTML, XML, JSON or plain text rather than a media format.

    Text is UTF-8 (or UTF-16 with a BOM) with at most 5 % control characters, or, in another
    charset, at least 90 % printable ASCII; a NUL byte rules text out. Always False for the
    formats :func:`sniff` knows, SVG included.
    """
    head = bytes(head[:SNIFF_BYTES])
    if not head or sniff(head) is not None:
        return False
    if _starts_with_markup(head):
        return True
    text = _decode_text(head)
    if text is None:
        return b"\x00" not in head and _is_mostly_ascii_text(head)
    if "\x00" in text:
        return False
    if text.lstrip().startswith(("{", "[")):
        return True
    return _is_mostly_printable(text)


def _starts_with_markup(head: bytes) -> bool:
    start = head.removeprefix(codecs.BOM_UTF8).lstrip(_XML_SPACE)[:32].lower()
    if start.startswith(_MARKUP_PREFIXES):
        return True
    if not start.startswith(b"<"):
        return False
    tag = start[1:]
    return any(
        tag.startswith(name) and len(tag) > len(name) and tag[len(name)] in _TAG_ENDS
        for name in _HTML_TAGS
    )


def _decode_text(head: bytes) -> str | None:
    """Decode UTF-8 (or BOM-marked UTF-16); a character cut off at the end is tolerated."""
    encoding = "utf-16" if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8"
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        return decoder.decode(head, final=False).removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None


def _is_mostly_ascii_text(head: bytes) -> bool:
    # Text in a legacy 8-bit charset (an error page in windows-1252) is not valid UTF-8 but
    # mostly printable ASCII; compressed media is close to random and far below the bar.
    ascii_text = sum(1 for byte in head if 0x20 <= byte < 0x7F or byte in b"\t\n\r")
    return ascii_text >= len(head) * _MIN_ASCII_SHARE


def _is_mostly_printable(text: str) -> bool:
    if not text:
        return False
    controls = sum(
        1
        for char in text
        if char not in _TEXT_CONTROLS_ALLOWED and unicodedata.category(char) == "Cc"
    )
    return controls <= len(text) * _MAX_CONTROL_SHARE


# --- known formats that are not media ---------------------------------------------------------

# (offset, magic, name). Office documents are OLE2 (doc, xls, ppt, msi) or zip (docx, odt, epub).
_NON_MEDIA_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"%PDF-", "pdf"),
    (0, b"%!PS", "postscript"),
    (0, b"\xc5\xd0\xd3\xc6", "postscript"),  # EPS with a binary preview
    (0, b"{\\rtf", "rtf"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole2"),
    (0, b"PK\x03\x04", "zip"),
    (0, b"PK\x05\x06", "zip"),  # an empty archive
    (0, b"PK\x07\x08", "zip"),  # a spanned archive
    (0, b"\x1f\x8b\x08", "gzip"),
    *((0, b"BZh%d" % level, "bzip2") for level in range(1, 10)),
    (0, b"\xfd7zXZ\x00", "xz"),
    (0, b"\x28\xb5\x2f\xfd", "zstd"),
    (0, b"\x04\x22\x4d\x18", "lz4"),
    (0, b"7z\xbc\xaf\x27\x1c", "7z"),
    (0, b"Rar!\x1a\x07", "rar"),
    (0, b"MSCF\x00\x00\x00\x00", "cab"),
    (0, b"!<arch>\n", "ar"),  # also Debian packages
    (0, b"\xed\xab\xee\xdb", "rpm"),
    (257, b"ustar", "tar"),
    (0, b"\x7fELF", "elf"),
    (0, b"\xfe\xed\xfa\xce", "mach-o"),
    (0, b"\xfe\xed\xfa\xcf", "mach-o"),
    (0, b"\xce\xfa\xed\xfe", "mach-o"),
    (0, b"\xcf\xfa\xed\xfe", "mach-o"),
    (0, b"\xca\xfe\xba\xbe", "java-class"),  # Mach-O universal binaries share it
    (0, b"dex\n", "dex"),
    (0, b"\x00asm", "wasm"),
    (0, b"wOFF", "woff"),
    (0, b"wOF2", "woff2"),
    (0, b"ttcf", "font"),
    (0, b"SQLite format 3\x00", "sqlite"),
)


def non_media(head: bytes) -> str | None:
    """The name of the known non-media format (PDF, archive, program, font …) the bytes start."""
    head = bytes(head[:SNIFF_BYTES])
    for offset, magic, name in _NON_MEDIA_SIGNATURES:
        if head.startswith(magic, offset):
            return name
    if _is_pe(head):
        return "pe"
    if _is_sfnt(head):
        return "font"
    return None


_PE_POINTER = 0x3C  # where the DOS header keeps the offset of the PE header


def _is_pe(head: bytes) -> bool:
    # "MZ" alone starts ordinary words; a Windows program also has "PE\0\0" where it points.
    if not head.startswith(b"MZ") or len(head) < _PE_POINTER + 4:
        return False
    pe_offset = int.from_bytes(head[_PE_POINTER : _PE_POINTER + 4], "little")
    return head.startswith(b"PE\x00\x00", pe_offset)


_SFNT_VERSIONS = (b"\x00\x01\x00\x00", b"true", b"OTTO", b"typ1")


def _is_sfnt(head: bytes) -> bool:
    # TrueType/OpenType: the table directory's binary-search fields follow from the table count.
    if not head.startswith(_SFNT_VERSIONS) or len(head) < 12:
        return False
    tables, search_range, selector, shift = (
        int.from_bytes(head[i : i + 2], "big") for i in (4, 6, 8, 10)
    )
    log2 = tables.bit_length() - 1
    return tables > 0 and (search_range, selector, shift) == (
        16 << log2,
        log2,
        16 * tables - (16 << log2),
    )


# --- body rule (§4.4–4.5) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judgement of a body: accepted when ``reason`` is None, else refused for ``reason``."""

    mime: str | None
    ext: str
    raster: bool
    reason: str | None


def judge_body(declared: str | None, head: bytes, url: str | None = None) -> Verdict:
    """Accept or refuse a body from its declared type (essence) and its first bytes.

    Refusal reasons are ``"empty"``, ``"content-mismatch"`` (text, or a known non-media format)
    and ``"unknown-format"``. Bytes that match nothing are kept only under an audio or video
    type the sniffer cannot check, and named from that type (or the URL).
    """
    declared = essence(declared)
    if not head:
        return Verdict(declared, "", False, "empty")
    found = sniff(head)
    if found is not None:
        return Verdict(found.mime, found.ext, found.raster, None)
    if non_media(head) is not None or looks_textual(head):
        return Verdict(declared, "", False, "content-mismatch")
    if (
        declared is not None
        and declared.startswith(("audio/", "video/"))
        and not can_verify(declared)
    ):
        ext = extension_for_mime(declared) or url_extension(url)
        return Verdict(declared, ext, False, None)
    return Verdict(declared, "", False, "unknown-format")


def can_verify(declared: str | None) -> bool:
    """True when the sniffer has a signature for this declared type or one of its aliases."""
    kind = essence(declared)
    if kind is None:
        return False
    return kind in _SNIFFED_TYPES or extension_for_mime(kind) in _SNIFFED_EXTENSIONS


_FORMATS: tuple[MediaFormat, ...] = (
    _JPEG, _PNG, _GIF, _WEBP, _AVIF, _HEIC, _HEIF, _BMP, _TIFF, _ICO, _SVG, _JXL, _JP2, _QOI,
    _MP3, _AAC, _WAV, _FLAC, _OGG, _OPUS, _M4A, _AIFF, _AIFC, _AU, _AC3, _DTS, _AMR, _AMR_WB,
    _MIDI, _CAF, _APE, _WAVPACK, _WMA,
    _OGG_VIDEO, _MP4, _M4V, _MOV, _3GP, _3G2, _WEBM, _MKV, _AVI, _WMV, _ASF, _FLV, _MPEG_TS,
    _M2TS, _MPEG_VIDEO,
)  # fmt: skip
_SNIFFED_TYPES = frozenset(found.mime for found in _FORMATS)
# Matroska audio (.mka) is recognised as Matroska.
_SNIFFED_EXTENSIONS = frozenset(found.ext for found in _FORMATS) | {".mka"}
