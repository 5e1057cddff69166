"""Device-supplied text, made safe for the place it is shown in.

A manufacturer's name, a model, a serial number, a TXT value or an error code a device sent are the
device's words, even when a trusted manufacturer's certificate carries them. Shown to the owner, they must
neither pass for Home Assistant's own words (a forged log line, a fake heading or link in a repair issue,
text reversed by a bidi override) nor break what shows them (a 3 000-character model in the device
registry). `shown` is the one function every place calls; it never raises and never formats anything but
text.

Every place first drops what a person cannot see but a terminal or renderer acts on: control characters
(Unicode Cc, C0 and C1) and line or paragraph separators become a single space, format characters (Cf:
bidi overrides and isolates, zero-width characters, marks) and surrogate, private-use or unassigned code
points are dropped, and runs of white space collapse. Each place then has its own length cap (an ellipsis
says something was cut) and its own escaping; an empty result becomes a placeholder.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import StrEnum
from typing import Any
import unicodedata

ELLIPSIS = "\u2026"
#: What is shown when nothing of the text is left.
PLACEHOLDER = "?"
#: At most this many characters of an input are looked at: beyond, the text counts as cut.
MAX_SCAN = 64 * 1024
#: Categories that are dropped: format, surrogate, private use, unassigned.
_DROPPED = frozenset({"Cf", "Cs", "Co", "Cn"})


class Place(StrEnum):
    """Where text is shown, which decides its cap and escaping."""

    #: Device registry name, manufacturer, model and serial; select labels; flow and logbook titles.
    NAME = "name"
    #: A translation placeholder Home Assistant renders as markdown (repair issues, flow descriptions).
    MARKDOWN = "markdown"
    #: The same, for a placeholder that names several devices (each part shortened by its maker).
    MARKDOWN_LONG = "markdown_long"
    #: An argument of one log line.
    LOG = "log"
    #: Diagnostics, state attributes and event data: plain text, long enough for joined fingerprints.
    PLAIN = "plain"
    #: Part of a download's file name: ASCII letters, digits, dot, dash and underscore only.
    FILENAME = "filename"


#: The longest result per place, in characters (escapes and the ellipsis included).
CAPS: dict[Place, int] = {
    Place.NAME: 64,
    Place.MARKDOWN: 160,
    Place.MARKDOWN_LONG: 1200,
    Place.LOG: 80,
    Place.PLAIN: 1024,
    Place.FILENAME: 64,
}

#: Characters markdown gives meaning to anywhere in a line: backslash-escaped.
_MD_ALWAYS = frozenset("\\`*[]~|@")
#: HTML's specials, as entities: a tag, an autolink or an entity of the device's renders as text.
_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
#: Characters that start a block (heading, list, setext underline) when they open a line.
_MD_LEADING = frozenset("#-+=")
_FILENAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def shown(text: object, place: Place, *, cap: int | None = None) -> str:
    """`text` as it may be shown in `place`: no control or format characters, escaped for the place, at
    most the place's cap (or the smaller `cap`) long, never empty. Anything but a string (None, a number
    a device sent where text belongs) is shown as the placeholder, unformatted."""
    limit = max(1, min(cap, CAPS[place]) if cap is not None else CAPS[place])
    if not isinstance(text, str):
        return PLACEHOLDER
    clean, cut = _clean(text, limit + 2)
    if place is Place.FILENAME:
        name = "".join(ch if ch in _FILENAME_CHARS else "_" for ch in clean).lstrip(".")[:limit]
        return name or "_"
    if place in (Place.MARKDOWN, Place.MARKDOWN_LONG):
        return _fit(_escape_markdown(clean), limit, cut=cut, markdown=True)
    return _fit(list(clean), limit, cut=cut)


def shown_all(value: Any, place: Place = Place.PLAIN) -> Any:
    """Every string in a tree of dicts and lists (keys too) made safe with `shown`; empty strings stay
    empty and other scalars stay as they are. For diagnostics and event data."""
    if isinstance(value, str):
        return shown(value, place) if value else value
    if isinstance(value, Mapping):
        return {shown_all(key, place): shown_all(item, place) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [shown_all(item, place) for item in value]
    return value


def placeholders(values: Mapping[str, object], *, long: Collection[str] = ()) -> dict[str, str]:
    """Translation placeholders: each value made safe for markdown (every one may be a device's text);
    those named in `long` may be longer (they name several devices)."""
    return {
        key: shown(value, Place.MARKDOWN_LONG if key in long else Place.MARKDOWN)
        for key, value in values.items()
    }


def _clean(text: str, limit: int) -> tuple[str, bool]:
    """Up to `limit` visible characters of `text` with spaces collapsed; and whether more was left."""
    out: list[str] = []
    space = False
    for index, ch in enumerate(text):
        if index >= MAX_SCAN or len(out) >= limit:
            return "".join(out), True
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            space = bool(out)
            continue
        if unicodedata.category(ch) in _DROPPED:
            continue
        if space:
            out.append(" ")
            space = False
            if len(out) >= limit:
                return "".join(out), True
        out.append(ch)
    return "".join(out), False


def _escape_markdown(text: str) -> list[str]:
    """One piece per character: the character, or its escape. Parentheses, dots, dashes and colons stay
    as they are where they cannot start anything (a model like "Lamp (2nd gen) 1.5" reads as it is)."""
    pieces: list[str] = []
    for index, ch in enumerate(text):
        before, after = text[index - 1 : index], text[index + 1 : index + 2]
        if ch in _MD_ENTITIES:
            pieces.append(_MD_ENTITIES[ch])
        elif (
            ch in _MD_ALWAYS
            or (ch == "_" and not (before.isalnum() and after.isalnum()))  # intraword "_" is just text
            or (ch == ":" and text.startswith("//", index + 1))  # no scheme:// autolink
            or (ch == "." and text[max(0, index - 3) : index].lower() == "www")  # no www. autolink
            or (index == 0 and ch in _MD_LEADING)  # no heading, list or rule if it opens a line
            or (ch in ".)" and after in ("", " ") and text[:index].isdigit())  # no ordered list
        ):
            pieces.append("\\" + ch)
        else:
            pieces.append(ch)
    return pieces


def _fit(pieces: list[str], limit: int, *, cut: bool, markdown: bool = False) -> str:
    """The pieces if they fit in `limit` and nothing was cut; else as many as fit with the ellipsis."""
    if not cut and sum(len(piece) for piece in pieces) <= limit:
        return "".join(pieces) or PLACEHOLDER
    kept: list[str] = []
    size = 0
    for piece in pieces:
        if size + len(piece) > limit - 1:
            break
        kept.append(piece)
        size += len(piece)
    if markdown and kept and kept[-1] == "_":  # intraword before the cut, now before the ellipsis
        kept[-1] = "\\_" if size < limit - 1 else ""
    return "".join(kept).rstrip() + ELLIPSIS
