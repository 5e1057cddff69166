"""`shown`, the one function that makes a device's text safe for where it is shown: generated text in every
place, and the markdown form checked by an independent reading of what markdown and HTML would act on.

(Pure: no Home Assistant instance is used; the surfaces are in tests/security/test_text_attacks.py.)
"""

from __future__ import annotations

import re
import unicodedata

from hypothesis import HealthCheck, given, settings, strategies as st

from custom_components.autoadd.registrar.text import CAPS, ELLIPSIS, PLACEHOLDER, Place, shown

#: Characters that must never reach the owner: controls, line breaks, bidi overrides and isolates, marks.
UNSEEN = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
ATTACK = "\n\u202e[link](http://evil)\r\n# heading\t<img src=x>"
ORG = f"Evil{ATTACK}"
#: The visible words, as a plain-text place (the registry, the logbook) shows them.
WORDS = "[link](http://evil) # heading <img src=x>"
#: The same in markdown: a link, an autolink and a tag render as text; "#" only heads a line.
ESCAPED = r"\[link\](http\://evil) # heading &lt;img src=x&gt;"


def assert_unseen_free(text: str, place: Place) -> None:
    """No character a person can't see, and within the place's cap."""
    assert not [ch for ch in text if unicodedata.category(ch) in UNSEEN], repr(text)
    assert 0 < len(text) <= CAPS[place]


def markdown_tokens(text: str) -> list[tuple[str, bool]]:
    """(character, escaped) pairs: a backslash escape or an HTML entity stands for one escaped character."""
    tokens: list[tuple[str, bool]] = []
    i = 0
    while i < len(text):
        entity = next((e for e in ("&amp;", "&lt;", "&gt;") if text.startswith(e, i)), None)
        if text[i] == "\\":
            assert i + 1 < len(text), "a lone backslash at the end"
            assert text[i + 1].isascii(), "only ASCII punctuation is escaped"
            assert not text[i + 1].isalnum(), "only ASCII punctuation is escaped"
            tokens.append((text[i + 1], True))
            i += 2
        elif entity is not None:
            tokens.append(({"&amp;": "&", "&lt;": "<", "&gt;": ">"}[entity], True))
            i += len(entity)
        else:
            tokens.append((text[i], False))
            i += 1
    return tokens


def assert_markdown_inert(text: str, place: Place = Place.MARKDOWN) -> str:
    """Rendered as markdown, `text` is only text (no link, image, tag, emphasis, code, heading, list or
    autolink); returns the text it renders as."""
    assert_unseen_free(text, place)
    tokens = markdown_tokens(text)
    raw = "".join(ch if not escaped else "\x00" for ch, escaped in tokens)
    plain = "".join(ch for ch, _ in tokens)
    assert not set(raw) & set("\\`*[]~|@<>&"), text
    for i, ch in enumerate(raw):
        if ch == "_":
            assert plain[i - 1 : i].isalnum(), text  # an intraword "_" is just text
            assert plain[i + 1 : i + 2].isalnum(), text
    assert "://" not in raw
    assert "www." not in raw.lower()
    assert raw[:1] not in set("#-+="), text
    assert not re.match(r"\d+[.)]( |$)", raw), text
    return plain


# --- shown(): generated text ----------------------------------------------------------------------------

SNIPPETS = [
    ATTACK,
    "\u2066",
    "\u2069",
    "\u200e",
    "\u200f",
    "\u061c",
    "\x85",
    "\u2028",
    "\x1b[2J",
    "_x_",
    "**",
    "`",
    "~~",
    "|-|",
    "www.evil.com",
    "a@b.c",
    "1. ",
    "- ",
    "&amp;",
    "\\",
    "\ud800",
    "\u0301",
]
pieces = st.lists(st.one_of(st.text(st.characters(exclude_categories=())), st.sampled_from(SNIPPETS)))
#: Short and long text: pieces of any character and of known attacks, some repeated past every cap.
texts = st.tuples(pieces.map("".join), st.sampled_from([1, 1, 1, 30, 300])).map(
    lambda pair: pair[0] * pair[1]
)
MARKDOWN = (Place.MARKDOWN, Place.MARKDOWN_LONG)
quick = settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])


@quick
@given(text=texts, place=st.sampled_from(list(Place)))
def test_shown_never_shows_unseen_characters_and_keeps_to_the_cap(text: str, place: Place) -> None:
    """Whatever the text, every place gets something visible, short enough, with no control, format or
    bidi character; plain places give the same again when given their own output."""
    result = shown(text, place)
    assert_unseen_free(result, place)
    if place not in MARKDOWN:
        assert shown(result, place) == result
    else:
        assert_markdown_inert(result, place)
    if place is Place.FILENAME:
        assert re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", result)


@quick
@given(text=texts)
def test_markdown_renders_as_the_plain_text(text: str) -> None:
    """The markdown form has no construct markdown or HTML acts on, and reads as the plain form (or the
    start of it, with an ellipsis)."""
    rendered = assert_markdown_inert(shown(text, Place.MARKDOWN))
    plain = shown(text, Place.PLAIN)
    assert rendered == plain or (rendered.endswith(ELLIPSIS) and plain.startswith(rendered[:-1]))


@quick
@given(text=texts, cap=st.integers(min_value=-5, max_value=200))
def test_a_smaller_cap_is_kept(text: str, cap: int) -> None:
    """A caller's cap only ever shortens."""
    assert len(shown(text, Place.NAME, cap=cap)) <= max(1, min(cap, CAPS[Place.NAME]))


def test_shown_examples() -> None:
    """The brief's attacks, each place."""
    assert shown(ORG, Place.NAME) == f"Evil {WORDS}"
    assert shown(ORG, Place.MARKDOWN) == f"Evil {ESCAPED}"
    assert shown("# heading", Place.MARKDOWN) == r"\# heading"
    assert shown("![x](http://e/x.png)", Place.MARKDOWN) == r"!\[x\](http\://e/x.png)"
    assert shown("a\r\nWARNING forged", Place.LOG) == "a WARNING forged"
    assert shown("bad_signature", Place.MARKDOWN) == "bad_signature"  # our codes read as they are
    assert shown("Lamp (2nd gen) 1.5", Place.MARKDOWN) == "Lamp (2nd gen) 1.5"
    assert shown("\u202e\u2066", Place.NAME) == PLACEHOLDER
    assert shown(None, Place.NAME) == PLACEHOLDER
    assert shown(10**5000, Place.LOG) == PLACEHOLDER  # never formatted
    long = shown("x" * 5000, Place.NAME)
    assert (len(long), long[-1]) == (CAPS[Place.NAME], ELLIPSIS)
    assert shown('../"a b"\r\n.cbor', Place.FILENAME) == "__a_b__.cbor"
