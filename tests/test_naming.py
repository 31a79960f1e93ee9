from __future__ import annotations

import hashlib
import os
import time
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediapipe.mediatypes import KNOWN_EXTENSIONS
from mediapipe.naming import (
    MAX_EPOCH,
    MIN_NAME_BYTES,
    build_name,
    choose_extension,
    epoch_from_headers,
    make_label,
    media_name,
    normalize_ext,
    parse_http_date,
    safe_label,
    source_hash,
)

FUZZ_EXAMPLES = int(os.environ.get("MEDIAPIPE_FUZZ_EXAMPLES", "300"))

SOURCE = "https://cdn.example.com/img/red.png?size=1"
H16 = hashlib.sha256(SOURCE.encode("utf-8")).hexdigest()[:16]
JAN_2020 = "Wed, 01 Jan 2020 00:00:00 GMT"
JAN_2020_EPOCH = 1577836800
NOV_1994_EPOCH = 784111777
NOW = 1_700_000_000.75


def test_spec_example() -> None:
    name = media_name(
        SOURCE,
        ["flux", None, "1:1"],
        "A red square: ÄÖÜ 猫 / test?",
        ".png",
        JAN_2020,
        None,
    )

    assert name == f"1577836800_flux+1_1+A_red_square_ÄÖÜ_猫_test_{H16}.png"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (SOURCE, H16),
        ("", "e3b0c44298fc1c14"),
        ("data:,猫", hashlib.sha256("data:,猫".encode()).hexdigest()[:16]),
        ("bad\ud800surrogate", hashlib.sha256(b"bad\xed\xa0\x80surrogate").hexdigest()[:16]),
    ],
)
def test_source_hash(source: str, expected: str) -> None:
    assert source_hash(source) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("flux+1:1+A red square: ÄÖÜ 猫 / test?", "flux+1_1+A_red_square_ÄÖÜ_猫_test"),
        ("e\u0301cole", "\u00e9cole"),  # NFD accent composes instead of turning into "_"
        ("e\u200d\u0301", "\u00e9"),  # a zero-width joiner between letter and accent is dropped
        ("ab\u200b\u200c\u200d\u2060\ufeffcd", "abcd"),
        ("\u202eevil\u202c\u200e\u200f\u2066x\u2069", "evilx"),
        ("tab\there\nnew\x00line", "tabherenewline"),
        ("cat 🐱 face", "cat_face"),
        ("I ❤️ NY", "I_NY"),  # the emoji's variation selector is dropped, the heart becomes "_"
        ("👍🏽", ""),
        ("../../etc/passwd", "etc_passwd"),
        ("a\\b/c", "a_b_c"),
        ("a_/_b", "a___b"),  # only runs of disallowed characters collapse
        ("--.,+_keep-me_+,.--", "keep-me"),
        ("हिन्दी नमस्ते", "हिन्दी_नमस्ते"),  # Devanagari vowel signs are marks and stay
        ("ภาษาไทย", "ภาษาไทย"),
        ("١٢٣ Ⅻ ½", "١٢٣_Ⅻ_½"),
        ("\ue000private\U0010fffd", "private"),
        ("\ud800lone", "lone"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_safe_label(text: str, expected: str) -> None:
    assert safe_label(text) == expected


@pytest.mark.parametrize(
    ("tags", "alt", "expected"),
    [
        (["flux", None, "1:1"], "A red square", "flux+1_1+A_red_square"),
        (["flux"], None, "flux"),
        (None, None, ""),
        (None, "only alt", "only_alt"),
        ([], "", ""),
        ("lone tag", None, "lone_tag"),
        ([5, 2.5, "x"], None, "5+2.5+x"),
        (["", None, 0, False, "kept"], None, "kept"),
        (("a", "b"), 42, "a+b+42"),
        (None, 0, "0"),
        (7, None, "7"),
        (["None"], None, "None"),
    ],
)
def test_make_label(tags: Any, alt: object, expected: str) -> None:
    assert make_label(tags, alt) == expected


@pytest.mark.parametrize("tags", [None, [], [None], ["x"]])
def test_absent_alt_never_writes_none(tags: list[str | None] | None) -> None:
    assert "None" not in make_label(tags, None)
    assert "None" not in media_name(SOURCE, tags, None, ".png", None, None, now=NOW)


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        b"Sun, 06 Nov 1994 08:49:37 GMT",
        "  Sun, 06 Nov 1994 08:49:37 GMT  ",
        "Sun, 06 Nov 1994 09:49:37 +0100",
    ],
)
def test_parse_http_date_formats(value: str | bytes) -> None:
    assert parse_http_date(value) == NOV_1994_EPOCH


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("garbage", None),
        (b"\xff\xfe\x00", None),
        ("Mon, 32 Jan 2020 00:00:00 GMT", None),
        ("Wed, 01 Jan 2020 25:00:00 GMT", None),
        ("Wed, 01 Jan 99999 00:00:00 GMT", None),
        ("Fri, 31 Dec 9999 23:59:59 GMT", None),  # beyond the 11-digit epoch
        ("Thu, 01 Jan 1970 00:00:00 +9959", None),
        ("Mon, 01 Jan 1900 00:00:00 GMT", -2208988800),
        ("Thursday, 06-Nov-68 08:49:37 GMT", 3119417377),  # two-digit 68 is 2068
        ("Thursday, 06-Nov-69 08:49:37 GMT", -4806623),  # and 69 is 1969
    ],
)
def test_parse_http_date_edges(value: str | bytes | None, expected: int | None) -> None:
    assert parse_http_date(value) == expected


@pytest.fixture
def non_utc_local_time(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TZ", "EST+05EDT,M3.2.0,M11.1.0")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("non_utc_local_time")
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (JAN_2020, JAN_2020_EPOCH),
        ("Sun Nov  6 08:49:37 1994", NOV_1994_EPOCH),  # no zone at all: still UTC
        ("Sunday, 06-Nov-94 08:49:37 GMT", NOV_1994_EPOCH),
    ],
)
def test_dates_are_utc_whatever_the_local_zone(value: str, expected: int) -> None:
    assert time.timezone == 5 * 3600  # the fixture really moved local time off UTC
    assert parse_http_date(value) == expected
    assert epoch_from_headers(value, None) == expected


@pytest.mark.parametrize(
    ("last_modified", "date", "expected"),
    [
        (JAN_2020, "Sun, 06 Nov 1994 08:49:37 GMT", JAN_2020_EPOCH),
        (None, "Sun, 06 Nov 1994 08:49:37 GMT", NOV_1994_EPOCH),
        ("garbage", "Sun, 06 Nov 1994 08:49:37 GMT", NOV_1994_EPOCH),
        (b"Wed, 01 Jan 2020 00:00:00 GMT", None, JAN_2020_EPOCH),
        (None, None, int(NOW)),
        ("garbage", "also garbage", int(NOW)),
        ("Mon, 01 Jan 1900 00:00:00 GMT", None, 0),
    ],
)
def test_epoch_from_headers(
    last_modified: str | bytes | None, date: str | None, expected: int
) -> None:
    assert epoch_from_headers(last_modified, date, now=NOW) == expected


def test_epoch_defaults_to_current_time() -> None:
    before = int(time.time())
    epoch = epoch_from_headers(None, None)
    assert before <= epoch <= int(time.time())


@pytest.mark.parametrize(("now", "expected"), [(-5.0, 0), (1e12, MAX_EPOCH)])
def test_epoch_now_is_clamped(now: float, expected: int) -> None:
    assert epoch_from_headers(None, None, now=now) == expected


@pytest.mark.parametrize(
    ("sniffed", "declared", "url", "expected"),
    [
        (".png", "image/jpeg", "https://x.test/a.gif", ".png"),
        (None, "image/jpeg", "https://x.test/a.gif", ".jpg"),
        ("", "image/pjpeg; q=1", None, ".jpg"),
        (None, "audio/x-unknown", "https://x.test/a.MP3", ".mp3"),
        (None, None, "https://x.test/a.jpeg", ".jpg"),
        (None, "application/octet-stream", "https://x.test/a.txt", ""),
        (None, None, None, ""),
        ("../evil", None, None, ""),
    ],
)
def test_choose_extension(
    sniffed: str | None, declared: str | None, url: str | None, expected: str
) -> None:
    assert choose_extension(sniffed, declared, url) == expected


@pytest.mark.parametrize(
    ("epoch", "label", "ext", "max_bytes", "expected"),
    [
        (JAN_2020_EPOCH, "flux", ".png", 200, f"1577836800_flux_{H16}.png"),
        (JAN_2020_EPOCH, "", ".png", 200, f"1577836800_{H16}.png"),
        (0, "a", "", 200, f"0_a_{H16}"),
        (0, "ab_cd", ".png", 26, f"0_ab_{H16}.png"),  # cut to "ab_", then re-stripped
        (0, "a", ".png", 23, f"0_{H16}.png"),  # no room for "_a"
        (0, "猫", ".png", 25, f"0_{H16}.png"),  # half a character is no character
        (0, "猫猫", ".png", 29, f"0_猫猫_{H16}.png"),  # exactly 29 bytes
        (0, "猫猫", ".png", 28, f"0_猫_{H16}.png"),
        (JAN_2020_EPOCH, "猫" * 1000, ".png", 200, f"1577836800_{'猫' * 56}_{H16}.png"),
    ],
)
def test_build_name(epoch: int, label: str, ext: str, max_bytes: int, expected: str) -> None:
    name = build_name(epoch, label, H16, ext, max_bytes)
    assert name == expected
    assert len(name.encode()) <= max_bytes


def test_cjk_alt_is_truncated_keeping_hash_and_extension() -> None:
    name = media_name(SOURCE, None, "猫" * 1000, ".png", JAN_2020, None)
    assert len(name.encode()) == 200
    assert name.startswith("1577836800_猫")
    assert name.endswith(f"猫_{H16}.png")


def test_min_name_bytes_fits_the_longest_bare_name() -> None:
    longest_ext = max(KNOWN_EXTENSIONS, key=len)
    name = build_name(MAX_EPOCH, "label", H16, longest_ext, MIN_NAME_BYTES)
    assert name == f"{MAX_EPOCH}_{H16}{longest_ext}"
    assert len(name) == MIN_NAME_BYTES
    with pytest.raises(ValueError, match="max_bytes"):
        build_name(MAX_EPOCH, "", H16, longest_ext, MIN_NAME_BYTES - 1)


@pytest.mark.parametrize(
    ("epoch", "label", "h16", "ext"),
    [
        (-1, "", H16, ".png"),
        (MAX_EPOCH + 1, "", H16, ".png"),
        (True, "", H16, ".png"),
        (0, "a/b", H16, ".png"),
        (0, "_a", H16, ".png"),
        (0, "", H16.upper(), ".png"),
        (0, "", H16[:15], ".png"),
        (0, "", H16, "png"),
        (0, "", H16, ".PNG"),
        (0, "", H16, "./x"),
    ],
)
def test_build_name_refuses_malformed_parts(epoch: int, label: str, h16: str, ext: str) -> None:
    with pytest.raises(ValueError, match=r"must be|not safe"):
        build_name(epoch, label, h16, ext)


NAME_EXTENSIONS = sorted({normalize_ext(ext) for ext in KNOWN_EXTENSIONS} | {""})
FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs"}
tag_values = st.one_of(st.none(), st.text(), st.integers(), st.floats(), st.booleans())


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None)
@given(
    source=st.text(),
    tags=st.one_of(st.none(), st.text(), st.lists(tag_values, max_size=6)),
    alt=st.one_of(st.none(), st.text(), st.text(min_size=300), st.integers()),
    ext=st.sampled_from(NAME_EXTENSIONS),
    max_bytes=st.integers(min_value=MIN_NAME_BYTES, max_value=255),
    last_modified=st.one_of(st.none(), st.text(), st.just(JAN_2020)),
)
def test_names_are_always_safe(
    source: str,
    tags: Any,
    alt: object,
    ext: str,
    max_bytes: int,
    last_modified: str | None,
) -> None:
    name = media_name(source, tags, alt, ext, last_modified, None, now=NOW, max_bytes=max_bytes)

    prefix = f"{epoch_from_headers(last_modified, None, now=NOW)}_"
    tail = f"{source_hash(source)}{ext}"
    assert len(name.encode("utf-8")) <= max_bytes
    assert name.startswith(prefix)
    assert name.endswith("_" + tail)
    assert not {"/", "\\", "\x00"} & set(name)
    assert not {unicodedata.category(char) for char in name} & FORBIDDEN_CATEGORIES
    middle = name[len(prefix) : -len(tail)]
    label = middle.removesuffix("_")
    assert middle in ("", label + "_")
    assert unicodedata.normalize("NFC", label) == label
    assert safe_label(label) == label


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None)
@given(st.text())
def test_safe_label_is_idempotent_and_clean(text: str) -> None:
    label = safe_label(text)
    assert safe_label(label) == label
    assert label == label.strip(".,_+-")
    assert all(char in "_-.,+" or unicodedata.category(char)[0] in "LMN" for char in label), label


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None)
@given(st.one_of(st.none(), st.text(), st.binary()))
def test_parse_http_date_never_raises(value: str | bytes | None) -> None:
    epoch = parse_http_date(value)
    assert epoch is None or epoch <= MAX_EPOCH


# --- the character rules, entry by entry ------------------------------------------------------

# Default-ignorable code points outside Cc/Cf, at each end of each range, and their neighbours.
INVISIBLE = [
    0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0,
    0x180B, 0x180C, 0x180D, 0x180F,  # U+180E is Cf, dropped by category anyway
    0xFE00, 0xFE01, 0xFE0E, 0xFE0F,
    0xE0100, 0xE0101, 0xE01EE, 0xE01EF,
]  # fmt: skip


@pytest.mark.parametrize("code", INVISIBLE, ids=lambda code: f"U+{code:04X}")
def test_invisible_characters_are_dropped(code: int) -> None:
    assert safe_label(f"a{chr(code)}b") == "ab"
    assert safe_label(f"{chr(code)}x") == "x"


@pytest.mark.parametrize(
    ("char", "expected"),
    [
        ("\u034e", "a\u034eb"),  # the combining mark before U+034F stays
        ("\u0350", "a\u0350b"),
        ("\u115e", "a\u115eb"),  # Hangul letters next to the fillers stay
        ("\u1161", "a\u1161b"),
        ("\u17b3", "a\u17b3b"),
        ("\u17b6", "a\u17b6b"),
        ("\u180a", "a_b"),  # Mongolian nirugu is punctuation
        ("\u1810", "a\u1810b"),  # Mongolian digit zero
        ("\u3163", "a\u3163b"),
        ("\u3165", "a\u3165b"),
        ("\ufe10", "a_b"),  # a presentation form of a comma
        ("\uff9f", "a\uff9fb"),
        ("\uffa1", "a\uffa1b"),
        ("\U000e00ff", "ab"),  # unassigned: dropped as Cn
    ],
)
def test_neighbours_of_invisible_characters(char: str, expected: str) -> None:
    assert safe_label(f"a{char}b") == expected


@pytest.mark.parametrize(
    ("char", "category"),
    [
        ("\x07", "Cc"),
        ("\x7f", "Cc"),
        ("\x85", "Cc"),
        ("\u00ad", "Cf"),  # soft hyphen
        ("\u061c", "Cf"),  # Arabic letter mark
        ("\u180e", "Cf"),
        ("\U000e0001", "Cf"),  # language tag
        ("\ud83d", "Cs"),
        ("\ue000", "Co"),
        ("\U000f0000", "Co"),
        ("\u0378", "Cn"),
        ("\U0001fffe", "Cn"),
    ],
)
def test_dropped_categories(char: str, category: str) -> None:
    assert unicodedata.category(char) == category
    assert safe_label(f"a{char}b") == "ab"


@pytest.mark.parametrize(
    ("char", "expected"),
    [
        ("_", "a_b"),
        ("-", "a-b"),
        (".", "a.b"),
        (",", "a,b"),
        ("+", "a+b"),
        ("\u0350", "a\u0350b"),  # Mn
        ("\u0903", "a\u0903b"),  # Mc
        ("\u20dd", "a\u20ddb"),  # Me
        ("٣", "a٣b"),  # Nd
        ("Ⅻ", "aⅫb"),  # Nl
        ("½", "a½b"),  # No
        ("ʰ", "aʰb"),  # Lm
        ("ǅ", "aǅb"),  # Lt
        ("猫", "a猫b"),  # Lo
        (" ", "a_b"),  # Zs
        ("\u2028", "a_b"),  # Zl
        ("!", "a_b"),  # Po
        ("$", "a_b"),  # Sc
        ("(", "a_b"),  # Ps
        ("~", "a_b"),  # Sm
        ("^", "a_b"),  # Sk
        ("©", "a_b"),  # So
        ("\u2010", "a_b"),  # Pd other than "-"
        ("\uff3f", "a_b"),  # Pc other than "_"
    ],
)
def test_kept_and_replaced_characters(char: str, expected: str) -> None:
    assert safe_label(f"a{char}b") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a!!b", "a_b"),
        ("a! !b", "a_b"),
        ("a!_!b", "a___b"),
        ("!a", "a"),
        ("a!", "a"),
        ("_a_", "a"),
        (".a.", "a"),
        (",a,", "a"),
        ("+a+", "a"),
        ("-a-", "a"),
        ("a!\u200b!b", "a_b"),  # dropped characters do not split a run
    ],
)
def test_runs_and_edges(text: str, expected: str) -> None:
    assert safe_label(text) == expected


def test_hash_digits() -> None:
    from mediapipe.naming import HASH_DIGITS

    assert HASH_DIGITS == 16
    assert len(source_hash("x")) == 16


def test_source_hash_of_long_sources_in_pieces() -> None:
    piece = 1 << 20
    for size in (piece - 1, piece, piece + 1, 2 * piece + 3):
        source = "猫" * size
        assert source_hash(source) == hashlib.sha256(source.encode()).hexdigest()[:16]


def test_max_epoch_and_min_name_bytes() -> None:
    assert MAX_EPOCH == 99_999_999_999
    assert MIN_NAME_BYTES == 11 + 1 + 16 + 5


@pytest.mark.parametrize(
    ("epoch", "label", "ext", "max_bytes", "expected"),
    [
        (0, "ab", ".png", 25, f"0_ab_{H16}.png"),  # exactly the budget
        (0, "abc", ".png", 25, f"0_ab_{H16}.png"),  # one byte over: the label loses one
        (0, "a", ".png", 24, f"0_a_{H16}.png"),
        (0, "a", ".png", 22, f"0_{H16}.png"),  # the bare name exactly fits
        (0, "a.b", ".png", 25, f"0_a_{H16}.png"),  # cut to "a.", then the dot is stripped
        (0, "ü", ".png", 24, f"0_{H16}.png"),  # two bytes, one left: nothing
        (0, "üb", ".png", 25, f"0_ü_{H16}.png"),
        (MAX_EPOCH, "", "", 28, f"{MAX_EPOCH}_{H16}"),
    ],
)
def test_build_name_byte_budget(
    epoch: int, label: str, ext: str, max_bytes: int, expected: str
) -> None:
    assert build_name(epoch, label, H16, ext, max_bytes) == expected


def test_build_name_refuses_a_budget_below_the_bare_name() -> None:
    with pytest.raises(ValueError, match="max_bytes=21 cannot hold"):
        build_name(0, "a", H16, ".png", 21)
    with pytest.raises(ValueError, match="max_bytes=27 cannot hold"):
        build_name(MAX_EPOCH, "", H16, "", 27)


def test_build_name_default_budget() -> None:
    name = build_name(JAN_2020_EPOCH, "a" * 300, H16, ".png")
    assert len(name) == 200
    assert name == f"1577836800_{'a' * 168}_{H16}.png"


@pytest.mark.parametrize(
    ("epoch", "message"),
    [(-1, "between 0 and 99999999999"), (MAX_EPOCH + 1, "not 100000000000"), (False, "not False")],
)
def test_build_name_epoch_messages(epoch: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_name(epoch, "", H16, ".png")


def test_build_name_accepts_the_epoch_bounds() -> None:
    assert build_name(0, "", H16, "") == f"0_{H16}"
    assert build_name(MAX_EPOCH, "", H16, "") == f"{MAX_EPOCH}_{H16}"
    assert build_name(1, "", H16, ".mp4") == f"1_{H16}.mp4"


@pytest.mark.parametrize("ext", ["", ".png", ".m2ts", ".3gp", ".a"])
def test_build_name_extension_forms(ext: str) -> None:
    assert build_name(5, "x", H16, ext).endswith(f"_{H16}{ext}")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("Wed, 01 Jan 2020 00:00:10 GMT", 10.0),
        ("Wed, 01 Jan 2020 00:00:00 GMT", 0.0),  # in the past
        ("-5", 0.0),
        ("1.5", 0.0),
        ("garbage", 0.0),
        ("", 0.0),
    ],
)
def test_retry_after_seconds(value: str, expected: float) -> None:
    from mediapipe.naming import retry_after_seconds

    assert retry_after_seconds(value, now=JAN_2020_EPOCH) == expected


def test_retry_after_seconds_defaults_to_the_current_time() -> None:
    from mediapipe.naming import retry_after_seconds

    later = time.time() + 100
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(later))
    assert 95 <= retry_after_seconds(date) <= 101


@pytest.mark.parametrize(
    ("sniffed", "declared", "url", "expected"),
    [
        (".PNG", None, None, ".png"),
        ("jpeg", None, None, ".jpg"),
        (".txt", "image/gif", None, ".gif"),  # an unknown sniffed extension is ignored
        (".txt", None, "https://x.test/a.webm", ".webm"),
        (None, "audio/x-pn-realaudio", "https://x.test/a.mp3", ".ra"),  # the standard table
        (None, "video/x-sgi-movie", "https://x.test/a.mp4", ".mp4"),
        (None, "video/x-sgi-movie", None, ""),
    ],
)
def test_choose_extension_chain(
    sniffed: str | None, declared: str | None, url: str | None, expected: str
) -> None:
    assert choose_extension(sniffed, declared, url) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [(0.0, 0), (0.999, 0), (1.5, 1), (float(MAX_EPOCH), MAX_EPOCH), (MAX_EPOCH + 1.0, MAX_EPOCH)],
)
def test_epoch_now_edges(now: float, expected: int) -> None:
    assert epoch_from_headers(None, None, now=now) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0),
        ("Thu, 01 Jan 1970 00:00:01 GMT", 1),
        ("Wed, 31 Dec 1969 23:59:59 GMT", -1),
        ("Thu, 01 Jan 1970 00:00:00 +0001", -60),
        ("Sat, 16 Nov 5138 09:46:39 GMT", MAX_EPOCH),
        ("Sat, 16 Nov 5138 09:46:40 GMT", None),
    ],
)
def test_parse_http_date_bounds(value: str, expected: int | None) -> None:
    assert parse_http_date(value) == expected


def test_media_name_passes_every_part() -> None:
    name = media_name(SOURCE, ["t"], "alt", "JPEG", None, JAN_2020, now=NOW, max_bytes=35)
    assert name == f"1577836800_t+a_{H16}.jpg"
    assert media_name(SOURCE, None, None, "", None, None, now=NOW) == f"1700000000_{H16}"


@pytest.mark.parametrize("text", ["XaX", "X", "Xa.b_cX"])
def test_only_punctuation_is_stripped_from_the_ends(text: str) -> None:
    assert safe_label(text) == text
    assert build_name(0, text, H16, ".png", 22 + 1 + len(text)) == f"0_{text}_{H16}.png"


def test_a_one_byte_budget_keeps_one_character() -> None:
    assert build_name(0, "ab", H16, ".png", 24) == f"0_a_{H16}.png"


def test_media_name_default_budget_is_200_bytes() -> None:
    name = media_name(SOURCE, None, "a" * 300, ".png", JAN_2020, None)
    assert len(name) == 200
    assert name == f"1577836800_{'a' * 168}_{H16}.png"
