"""Text hygiene for questions and replies: normalised, capped, no controls, bidi overrides or floods."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from moderation.errors import TextRefused

# Explicit embeddings, overrides and isolates can reorder what a moderator reads (Trojan Source).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Invisible characters that hide content or break filters; ZWNJ (U+200C) is kept, Persian needs it.
INVISIBLE = frozenset("\u200b\u200d\u2060\ufeff\u180e")
MAX_COMBINING_RUN = 4
_SPACES = re.compile(r"[ \t]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean(text: str, *, max_chars: int, max_lines: int = 10) -> str:
    """Returns the text normalised (NFC, trimmed, runs of spaces folded) or refuses it.

    Args:
        text: what the person typed.
        max_chars: the cap in characters; the cap in UTF-8 bytes is four times that.
        max_lines: how many lines a text may have.

    Raises:
        TextRefused: empty, too long, or containing control, bidi-override or invisible characters,
            or a flood of combining marks.
    """
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n")
    for ch in text:
        if ch in BIDI_CONTROLS:
            raise TextRefused(f"bidirectional control character U+{ord(ch):04X} is not allowed")
        if ch in INVISIBLE:
            raise TextRefused(f"invisible character U+{ord(ch):04X} is not allowed")
        if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn"):
            raise TextRefused(f"control or unassigned character U+{ord(ch):04X} is not allowed")
    run = 0
    for ch in text:
        run = run + 1 if unicodedata.combining(ch) else 0
        if run > MAX_COMBINING_RUN:
            raise TextRefused("too many combining marks in a row")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    if not text.replace("\u200c", "").strip():  # a lone ZWNJ would be an invisible question
        raise TextRefused("the text is empty")
    if len(text) > max_chars:
        raise TextRefused(f"the text is longer than {max_chars} characters")
    if len(text.encode()) > 4 * max_chars:
        raise TextRefused(f"the text is longer than {4 * max_chars} bytes")
    if text.count("\n") >= max_lines:
        raise TextRefused(f"the text has more than {max_lines} lines")
    return text


@dataclass(frozen=True, slots=True)
class WordFilter:
    """Words that hold a question for a moderator (never silently drop it), in any script."""

    words: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, words: Iterable[str]) -> WordFilter:
        """A filter over these words (compared case- and compatibility-folded)."""
        return cls(frozenset(_fold(w) for w in words if w.strip()))

    def hits(self, text: str) -> list[str]:
        """The filtered words the text contains."""
        if not self.words:
            return []
        folded = _fold(text)
        tokens = set(re.findall(r"\w+", folded))
        # Whole words for scripts with spaces; substrings for phrases and for scripts written
        # without spaces (Chinese), where a word is never a token of its own.
        return sorted(
            w for w in self.words if w in tokens or ((" " in w or _unspaced(w)) and w in folded)
        )


def _unspaced(word: str) -> bool:
    return any("\u3040" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" for ch in word)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()
