"""Text encodings: BOMs, BOM-less UTF-16/32, legacy encodings found by charset-normalizer, the
skip of files whose encoding is not recognised with confidence, ``encoding=``, ``text_info``,
and a text stream over a folder of legacy files.

The corpus is written here: the opening of the Universal Declaration of Human Rights (UN,
1948; free to reproduce) in 16 languages, encoded in 35 legacy encodings and in UTF-16/32
with and without a byte-order mark.
"""

from __future__ import annotations

import codecs
import re
import unicodedata

import numpy as np
import pytest
from support import SOURCE_KINDS, source_of

from bytefeed_helpers.decoders import text_info
from bytefeed_helpers.decoders.text import decode_text
from bytefeed_helpers.errors import BadFileError, BytefeedWarning

# fmt: off
PARAGRAPHS = {
    "ru": "Все люди рождаются свободными и равными в своем достоинстве и правах. Они наделены разумом и совестью и должны поступать в отношении друг друга в духе братства. Принимая во внимание, что признание достоинства, присущего всем членам человеческой семьи, и равных и неотъемлемых прав их является основой свободы, справедливости и всеобщего мира;",
    "zh": "人人生而自由，在尊严和权利上一律平等。他们赋有理性和良心，并应以兄弟关系的精神相对待。鉴于对人类家庭所有成员的固有尊严及其平等的和不移的权利的承认，乃是世界自由、正义与和平的基础，鉴于对人权的无视和侮蔑已发展为野蛮暴行，这些暴行玷污了人类的良心，",
    "zh_hant": "人人生而自由，在尊嚴和權利上一律平等。他們賦有理性和良心，並應以兄弟關係的精神相對待。鑑於對人類家庭所有成員的固有尊嚴及其平等的和不移的權利的承認，乃是世界自由、正義與和平的基礎，鑑於對人權的無視和侮蔑已發展為野蠻暴行，這些暴行玷污了人類的良心，",
    "ja": "すべての人間は、生まれながらにして自由であり、かつ、尊厳と権利とについて平等である。人間は、理性と良心とを授けられており、互いに同胞の精神をもって行動しなければならない。人類社会のすべての構成員の固有の尊厳と平等で譲ることのできない権利とを承認することは、世界における自由、正義及び平和の基礎であるので、",
    "ko": "모든 인간은 태어날 때부터 자유로우며 그 존엄과 권리에 있어 동등하다. 인간은 천부적으로 이성과 양심을 부여받았으며 서로 형제애의 정신으로 행동하여야 한다. 인류 가족 모든 구성원의 고유한 존엄성과 평등하고 양도할 수 없는 권리를 인정하는 것이 세계의 자유, 정의 및 평화의 기초이며,",
    "el": "Όλοι οι άνθρωποι γεννιούνται ελεύθεροι και ίσοι στην αξιοπρέπεια και τα δικαιώματα. Είναι προικισμένοι με λογική και συνείδηση, και οφείλουν να συμπεριφέρονται μεταξύ τους με πνεύμα αδελφοσύνης. Επειδή η αναγνώριση της αξιοπρέπειας, που είναι σύμφυτη σε όλα τα μέλη της ανθρώπινης οικογένειας, αποτελεί το θεμέλιο της ελευθερίας, της δικαιοσύνης και της ειρήνης στον κόσμο.",
    "he": "כל בני האדם נולדו בני חורין ושווים בערכם ובזכויותיהם. כולם חוננו בתבונה ובמצפון, לפיכך חובה עליהם לנהוג איש ברעהו ברוח של אחוה. הואיל והכרה בכבוד הטבעי אשר לכל בני משפחת האדם ובזכויותיהם השוות והבלתי נפקעות היא יסוד החופש, הצדק והשלום בעולם;",
    "ar": "يولد جميع الناس أحراراً متساوين في الكرامة والحقوق. وهم قد وهبوا عقلاً وضميراً وعليهم أن يعامل بعضهم بعضاً بروح الإخاء. لما كان الاعتراف بالكرامة المتأصلة في جميع أعضاء الأسرة البشرية وبحقوقهم المتساوية الثابتة هو أساس الحرية والعدل والسلام في العالم.",
    "th": "มนุษย์ทั้งหลายเกิดมามีอิสระและเสมอภาคกันในเกียรติศักดิ์และสิทธิ ต่างมีเหตุผลและมโนธรรม และควรปฏิบัติต่อกันด้วยเจตนารมณ์แห่งภราดรภาพ โดยที่การยอมรับนับถือเกียรติศักดิ์ประจำตัว และสิทธิเท่าเทียมกันและโอนมิได้ของบรรดาสมาชิกทั้งหลายแห่งครอบครัวมนุษย์ เป็นหลักมูลเหตุแห่งอิสรภาพ ความยุติธรรม และสันติภาพในโลก",
    "tr": "Bütün insanlar hür, haysiyet ve haklar bakımından eşit doğarlar. Akıl ve vicdana sahiptirler ve birbirlerine karşı kardeşlik zihniyeti ile hareket etmelidirler. İnsanlık ailesinin bütün üyelerinde bulunan haysiyetin ve bunların eşit ve devredilmez haklarının tanınması hususunun, hürriyetin, adaletin ve dünya barışının temeli olmasına,",
    "pl": "Wszyscy ludzie rodzą się wolni i równi pod względem swej godności i swych praw. Są oni obdarzeni rozumem i sumieniem i powinni postępować wobec innych w duchu braterstwa. Zważywszy, że uznanie przyrodzonej godności oraz równych i niezbywalnych praw wszystkich członków wspólnoty ludzkiej jest podstawą wolności, sprawiedliwości i pokoju świata,",
    "cs": "Všichni lidé rodí se svobodní a sobě rovní co do důstojnosti a práv. Jsou nadáni rozumem a svědomím a mají spolu jednat v duchu bratrství. Vzhledem k tomu, že uznání přirozené důstojnosti a rovných a nezcizitelných práv všech členů lidské rodiny je základem svobody, spravedlnosti a míru ve světě,",
    "de": "Alle Menschen sind frei und gleich an Würde und Rechten geboren. Sie sind mit Vernunft und Gewissen begabt und sollen einander im Geist der Brüderlichkeit begegnen. Da die Anerkennung der angeborenen Würde und der gleichen und unveräußerlichen Rechte aller Mitglieder der Gemeinschaft der Menschen die Grundlage von Freiheit, Gerechtigkeit und Frieden in der Welt bildet,",
    "fr": "Tous les êtres humains naissent libres et égaux en dignité et en droits. Ils sont doués de raison et de conscience et doivent agir les uns envers les autres dans un esprit de fraternité. Considérant que la reconnaissance de la dignité inhérente à tous les membres de la famille humaine et de leurs droits égaux et inaliénables constitue le fondement de la liberté, de la justice et de la paix dans le monde,",
    "es": "Todos los seres humanos nacen libres e iguales en dignidad y derechos y, dotados como están de razón y conciencia, deben comportarse fraternalmente los unos con los otros. Considerando que la libertad, la justicia y la paz en el mundo tienen por base el reconocimiento de la dignidad intrínseca y de los derechos iguales e inalienables de todos los miembros de la familia humana;",
    "vi": "Tất cả mọi người sinh ra đều được tự do và bình đẳng về nhân phẩm và quyền. Mọi con người đều được tạo hóa ban cho lý trí và lương tâm và cần phải đối xử với nhau trong tình anh em. Xét rằng việc thừa nhận phẩm giá vốn có, các quyền bình đẳng và không thể tách rời của mọi thành viên trong gia đình nhân loại là cơ sở cho tự do, công lý và hòa bình trên thế giới,",
}
# fmt: on

#: (language, Python codec): 35 legacy encodings, each paragraph in the ones made for it.
LEGACY = [
    ("zh_hant", "big5"), ("zh", "gb2312"), ("zh", "gbk"), ("zh", "gb18030"),
    ("ja", "shift_jis"), ("ja", "cp932"), ("ja", "euc_jp"), ("ja", "iso2022_jp"),
    ("ko", "euc_kr"), ("ko", "cp949"),
    ("ru", "koi8_r"), ("ru", "cp1251"), ("ru", "iso8859_5"), ("ru", "cp866"),
    ("ru", "mac_cyrillic"),
    ("el", "iso8859_7"), ("el", "cp1253"),
    ("he", "iso8859_8"), ("he", "cp1255"),
    ("ar", "cp1256"), ("ar", "iso8859_6"),
    ("th", "tis_620"), ("th", "cp874"),
    ("tr", "iso8859_9"), ("tr", "cp1254"),
    ("pl", "cp1250"), ("pl", "iso8859_2"), ("cs", "cp1250"), ("cs", "iso8859_2"),
    ("de", "cp1252"), ("de", "latin_1"), ("fr", "cp1252"), ("fr", "iso8859_15"),
    ("es", "latin_1"),
    ("vi", "cp1258"),
]  # fmt: skip

#: Where charset-normalizer (3.5) cannot tell the reading apart from others that give another
#: text (Polish ISO-8859-2 ties with ISO-8859-10 and -4; Czech ISO-8859-2 scores below
#: cp1252's and cp1258's readings): such a file must be skipped as not confident, or read
#: right should a later charset-normalizer tell them apart. Never read wrong.
NOT_CONFIDENT = {("pl", "iso8859_2"), ("cs", "iso8859_2")}

NOT_CONFIDENT_REASON = re.compile(
    r"^text encoding not recognised with confidence \(best guess \S+"
    r"(, 0\.\d\d; (as likely: .+|from only \d+ bytes, \d+ of them non-ASCII)"
    r"| reads symbols inside words: '.+')\); pass encoding=\.\.\. to force one$"
)

WIDE = {
    "utf-16-le": codecs.BOM_UTF16_LE,
    "utf-16-be": codecs.BOM_UTF16_BE,
    "utf-32-le": codecs.BOM_UTF32_LE,
    "utf-32-be": codecs.BOM_UTF32_BE,
}


def in_cp1258(text: str) -> str:
    """``text`` as cp1258 writes Vietnamese: base letters it has precomposed (ă, ô, ư, ...)
    followed by combining tone marks (canonically equivalent to the NFC original)."""
    out = []
    for ch in text:
        try:
            ch.encode("cp1258")
            out.append(ch)
            continue
        except UnicodeEncodeError:
            pass
        base, *marks = unicodedata.normalize("NFD", ch)
        for i, mark in enumerate(marks):
            head = unicodedata.normalize("NFC", base + mark) + "".join(marks[:i] + marks[i + 1 :])
            try:
                head.encode("cp1258")
            except UnicodeEncodeError:
                continue
            out.append(head)
            break
        else:  # no precomposed pair: the base letter and every mark combining
            out.append(base + "".join(marks))
    return "".join(out)


def original(lang: str, encoding: str) -> str:
    text = PARAGRAPHS[lang]
    return in_cp1258(text) if encoding == "cp1258" else text


def outcome(data: bytes, text: str) -> str:
    """What ``decode_text`` makes of ``data``: "exact", "skipped" (with the documented
    reason) or "WRONG" (a different text, without a word)."""
    try:
        got = decode_text(data)
    except BadFileError as exc:
        assert NOT_CONFIDENT_REASON.match(exc.reason), exc.reason
        return "skipped"
    return "exact" if got == text else "WRONG"


# --- legacy encodings ----------------------------------------------------------------------


def test_corpus_covers_what_the_issue_names():
    assert len({codecs.lookup(e).name for _, e in LEGACY}) >= 15
    assert in_cp1258(PARAGRAPHS["vi"]) != PARAGRAPHS["vi"]  # tone marks really combine
    assert unicodedata.normalize("NFC", in_cp1258(PARAGRAPHS["vi"])) == PARAGRAPHS["vi"]
    for lang, encoding in LEGACY:  # a few hundred bytes: enough to detect
        assert len(original(lang, encoding).encode(encoding)) >= 240, (lang, encoding)


@pytest.mark.parametrize(("lang", "encoding"), LEGACY, ids=[f"{a}-{b}" for a, b in LEGACY])
def test_legacy_paragraph_decodes_exactly(lang, encoding):
    text = original(lang, encoding)
    data = text.encode(encoding)
    if (lang, encoding) in NOT_CONFIDENT:
        assert outcome(data, text) in {"exact", "skipped"}
        assert decode_text(data, encoding=encoding) == text  # what the reason tells you to do
        return
    assert decode_text(data) == text
    info = text_info(data)
    assert info["method"] == "detected" and info["confidence"] > 0.5
    assert info["bom"] is False and info["bytes"] == len(data)
    assert data.decode(info["encoding"]) == text  # the encoding named reads the file


def test_no_legacy_paragraph_is_read_wrong():
    outcomes = {
        (lang, e): outcome(original(lang, e).encode(e), original(lang, e)) for lang, e in LEGACY
    }
    assert [case for case, got in outcomes.items() if got == "WRONG"] == []
    skipped = {case for case, got in outcomes.items() if got == "skipped"}
    assert skipped <= NOT_CONFIDENT
    exact = {codecs.lookup(e).name for (_, e), got in outcomes.items() if got == "exact"}
    assert len(exact) >= 15


def test_mixed_latin_readings_that_give_the_same_text_name_the_common_encoding():
    # German has no letter where cp1252, cp1250 and Latin-1 differ: any of them reads it
    data = PARAGRAPHS["de"].encode("latin_1")
    assert text_info(data)["encoding"] == "cp1252"
    assert decode_text(data) == PARAGRAPHS["de"]


# --- UTF-16 and UTF-32 -----------------------------------------------------------------------

WIDE_LANGS = ["ru", "zh", "zh_hant", "ja", "ko", "el", "he", "ar", "th", "fr", "de", "vi"]


@pytest.mark.parametrize("bom", [False, True], ids=["no-bom", "bom"])
@pytest.mark.parametrize("codec", sorted(WIDE))
@pytest.mark.parametrize("lang", WIDE_LANGS)
def test_utf16_and_utf32_with_and_without_bom(lang, codec, bom):
    text = PARAGRAPHS[lang]
    data = (WIDE[codec] if bom else b"") + text.encode(codec)
    assert decode_text(data) == text
    info = text_info(data)
    assert info["encoding"] == codec and info["bom"] is bom and info["confidence"] == 1.0
    if bom:
        assert info["method"] == "bom"


def test_short_utf16_without_bom_is_told_by_its_nul_bytes():
    # charset-normalizer alone ranks the wrong byte order first for these
    for codec in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
        data = "abc\r\ndef".encode(codec)
        assert decode_text(data) == "abc\ndef"
        assert text_info(data) == {
            "encoding": codec,
            "confidence": 1.0,
            "bom": False,
            "bytes": len(data),
            "method": "nul-pattern",
        }


BINARY = {
    "random": np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes(),
    "pcm": np.arange(-500, 500, dtype="<i2").tobytes(),  # raw 16-bit audio
    "controls": bytes([1, 0, 2, 0, 3, 0, 4, 0]) * 20,  # NULs in one half, yet not text
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(64)),
    "utf32-controls": "a\x01b\x02".encode("utf-32-le"),
    "every-byte": bytes(range(256)) * 4,
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_stays_binary(name):
    with pytest.raises(BadFileError, match=r"^holds NUL bytes: not text$"):
        decode_text(BINARY[name])


def test_binary_without_nul_bytes_is_not_text_either():
    data = np.random.default_rng(1).integers(1, 256, 4000, dtype=np.uint8).tobytes()
    with pytest.raises(BadFileError, match=r"^not text in any encoding charset-normalizer knows$"):
        decode_text(data)


# --- the not-confident policy ---------------------------------------------------------------


def test_short_cyrillic_snippet_is_skipped_with_a_stable_reason():
    data = "Принимая во внимание, что признание достоинства".encode("cp1251")
    with pytest.raises(BadFileError) as first:
        decode_text(data)
    assert NOT_CONFIDENT_REASON.match(first.value.reason), first.value.reason
    assert "best guess cp1251" in first.value.reason
    assert f"from only {len(data)} bytes" in first.value.reason
    with pytest.raises(BadFileError) as again:
        text_info(data)
    assert again.value.reason == first.value.reason  # same bytes, same words
    assert decode_text(data, encoding="cp1251").startswith("Принимая")


def test_symbol_inside_a_word_is_not_a_confident_reading():
    data = "Všichni lidé jsou si rovni.".encode("iso8859_2")  # cp1252 reads "V¹ichni"
    with pytest.raises(BadFileError, match=r"reads symbols inside words: 'V¹i'"):
        decode_text(data)
    assert decode_text(data, encoding="iso8859_2") == "Všichni lidé jsou si rovni."


@pytest.mark.parametrize(
    "text",
    [
        "café",
        "Crème brûlée, Ærø, señor",
        "“smart quotes” € 5",
        "In all criminal prosecutions, the accused shall enjoy the right to a speedy and public "
        "trial, by an impartial jury — as the café owner’s was.",
    ],
)
def test_a_few_accents_with_tied_readings_are_read_as_windows_1252(text):
    data = text.encode("cp1252")
    assert decode_text(data) == text
    info = text_info(data)
    assert info["encoding"] == "cp1252" and info["method"] in {"default", "detected"}


def test_the_encoding_named_in_a_skip_reason_can_be_forced():
    text = original("cs", "iso8859_2")
    data = text.encode("iso8859_2")
    try:
        got = decode_text(data)
    except BadFileError as exc:
        guess = re.search(r"best guess (\S+?),", exc.reason).group(1)
        assert decode_text(data, encoding=guess) != text  # the guess would have been mojibake
    else:
        assert got == text
    assert decode_text(data, encoding="iso-8859-2") == text


# --- encoding= -----------------------------------------------------------------------------


def test_forced_encoding(tmp_path):
    text = PARAGRAPHS["ru"]
    path = tmp_path / "koi8.txt"
    path.write_bytes(text.encode("koi8_r"))
    assert decode_text(path, encoding="koi8-r") == text
    info = text_info(path, encoding="KOI8_R")
    assert info == {
        "encoding": "koi8-r",
        "confidence": 1.0,
        "bom": False,
        "bytes": len(text.encode("koi8_r")),
        "method": "forced",
    }
    assert text_info(b"x", encoding="windows-1251")["encoding"] == "cp1251"  # alias
    assert decode_text(path, encoding="cp1251") != text  # forced means forced


def test_forced_encoding_drops_a_bom_and_normalises_line_ends():
    data = codecs.BOM_UTF8 + b"a\r\nb"
    assert decode_text(data, encoding="utf-8") == "a\nb"
    assert text_info(data, encoding="utf-8")["bom"] is True
    data = "a\r\nb".encode("utf-16")  # Python's utf-16 takes its BOM itself
    assert decode_text(data, encoding="utf-16") == "a\nb"
    assert text_info(data, encoding="utf-16")["bom"] is True


def test_bytes_the_forced_encoding_does_not_decode():
    with pytest.raises(
        BadFileError, match=r"^not valid utf-8 text: invalid continuation byte at byte 0; "
    ):
        decode_text("Привет".encode("cp1251"), encoding="utf-8")
    with pytest.raises(BadFileError, match=r"^not valid cp1252 text: .* at byte 1; "):
        decode_text(b"a\x81b", encoding="cp1252")  # 0x81 is undefined in cp1252
    with pytest.raises(BadFileError, match="holds NUL bytes: not text"):
        decode_text(b"PK\x03\x04\x00\x00zip", encoding="latin-1")


@pytest.mark.parametrize("bad", ["nope", "utf-9", 5, b"utf-8"])
def test_unknown_encoding_raises_at_once(tmp_path, bad):
    message = f"encoding must be a codec name Python knows. Received: encoding={bad!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        decode_text(tmp_path / "not-read.txt", encoding=bad)  # before the (missing) file
    with pytest.raises(ValueError, match=r"^encoding must be a codec name"):
        text_info(b"abc", encoding=bad)


@pytest.mark.parametrize("bad", ["base64", "zlib", "hex", "rot13"])
def test_a_bytes_codec_is_not_a_text_encoding(bad):
    with pytest.raises(ValueError, match=r"^encoding must be a text encoding .*Received: enc"):
        decode_text(b"abc", encoding=bad)


# --- UTF-8 never pays for detection ---------------------------------------------------------


def test_utf8_bom_and_nul_pattern_files_do_not_call_the_detector(monkeypatch):
    import charset_normalizer

    def detector_called(*args, **kwargs):
        raise AssertionError("charset-normalizer was called")

    monkeypatch.setattr(charset_normalizer, "from_bytes", detector_called)
    text = PARAGRAPHS["ru"]
    assert decode_text(text.encode("utf-8")) == text
    assert text_info(text.encode("utf-8")) == {
        "encoding": "utf-8",
        "confidence": 1.0,
        "bom": False,
        "bytes": len(text.encode("utf-8")),
        "method": "utf-8",
    }
    assert decode_text(codecs.BOM_UTF8 + text.encode()) == text
    assert decode_text(text.encode("utf-16-le")) == text
    assert decode_text(b"") == ""
    with pytest.raises(AssertionError, match="charset-normalizer was called"):
        decode_text(text.encode("cp1251"))  # the patch is where detection looks


@pytest.mark.parametrize("kind", SOURCE_KINDS)
def test_every_source_kind(tmp_path, kind):
    text = PARAGRAPHS["el"]
    data = ("\r\n".join([text, text])).encode("cp1253")
    path = tmp_path / "el.txt"
    path.write_bytes(data)
    assert decode_text(source_of(kind, path, data)) == f"{text}\n{text}"
    assert text_info(source_of(kind, path, data))["encoding"] == "cp1253"


# --- through a text stream ------------------------------------------------------------------


def test_text_stream_builds_its_vocabulary_from_decoded_words(tmp_path):
    import bytefeed_helpers as bf

    good = [
        ("ru", "cp1251"), ("ru", "koi8_r"), ("el", "iso8859_7"), ("he", "cp1255"),
        ("ar", "cp1256"), ("zh", "gb2312"), ("ja", "shift_jis"), ("ko", "euc_kr"),
        ("th", "tis_620"), ("tr", "cp1254"), ("de", "cp1252"), ("fr", "utf-16-le"),
    ]  # fmt: skip
    root = tmp_path / "docs"
    for i, (lang, encoding) in enumerate(good):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{lang}_{encoding}.txt").write_bytes(PARAGRAPHS[lang].encode(encoding))
    bad = {
        "cs_iso8859_2.txt": original("cs", "iso8859_2").encode("iso8859_2"),
        "short_cp1251.txt": "Принимая во внимание, что признание".encode("cp1251"),
        "binary.txt": bytes(range(256)) * 4,
    }
    for name, data in bad.items():
        (root / "a" / name).write_bytes(data)
    manifest = bf.build_manifest(root, kind="text", progress=False)
    stream = bf.text_batches(manifest, 4, max_length=64, shuffle=False)
    with pytest.warns(BytefeedWarning, match="skipped"):
        n = sum(len(x) for x, _ in stream)

    vocabulary = set(stream.tokenizer.vocabulary)
    for word in ("достоинстве", "άνθρωποι", "האדם", "الكرامة", "würde", "bakımından", "égaux"):
        assert word in vocabulary, word
    mojibake = {"достоинстве".encode("cp1251").decode("cp1252").lower(), "wã¼rde"}
    assert not mojibake & vocabulary
    reasons = {e.path.rsplit("/", 1)[-1]: e.reason for e in stream.errors}
    assert reasons["binary.txt"] == "holds NUL bytes: not text"
    assert NOT_CONFIDENT_REASON.match(reasons["short_cp1251.txt"])
    cs_skipped = "cs_iso8859_2.txt" in reasons
    if cs_skipped:
        assert NOT_CONFIDENT_REASON.match(reasons["cs_iso8859_2.txt"])
    assert set(reasons) <= set(bad)
    assert n == len(good) + (not cs_skipped)  # every good file exactly once
