"""How names become index terms, and queries become term lookups (both engines share this).

Trigram indexes find nothing for 1-2 CJK characters (shared/DESIGN.md), and most Chinese
personal names are 2-3 characters. So a name is indexed as its character bigrams, in order,
followed by its single characters, Lucene-CJK style, over a "search form" of the name: NFKC,
lower case, letters and digits only (so 阿卜杜·艾力 is found as 阿卜杜艾力 and 「ABC」 as abc).
A query of n >= 2 characters is the *phrase* of its n-1 bigrams: consecutive bigram
positions in the document mean the query is a true substring, so no confirming pass is
needed. One character is a single-term lookup.

Pinyin (pypinyin) is indexed for personal names only: every run of consecutive syllables,
joined (张伟明 -> zhang, zhangwei, zhangweiming, wei, ...), and the same runs of initials
(zw, zwm, ...), for each spelling of the name. A character with several readings is spelled
each way, because people type the reading they know: the surname by each of its readings
(单 shan/dan, 曾 zeng/ceng), a given-name character by its reading in context (pypinyin's
phrase dictionary) and then its others (陈长伟 is chenzhangwei and chenchangwei; 乐 le/yue,
行 xing/hang). Bounded: at most MAX_READINGS readings of a character and MAX_SPELLINGS
spellings of a name, those with the fewest uncommon readings first. A Latin query matches
either a pinyin run or, as a substring, a name with Latin letters (organisation names such
as ABC科技).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from itertools import product

from pypinyin import Style, lazy_pinyin, pinyin
from pypinyin.contrib.tone_convert import to_normal
from pypinyin.pinyin_dict import pinyin_dict

# A name longer than this is indexed on its first MAX_INDEXED_CHARS search characters only.
MAX_INDEXED_CHARS = 200
# Runs of pinyin syllables are indexed for names up to this many characters (persons).
MAX_PINYIN_CHARS = 6
# Readings of one character considered (pypinyin lists the common first), and spellings of
# one name indexed: 16 spellings of a 3-character name are at most 16 x 12 terms.
MAX_READINGS = 3
MAX_SPELLINGS = 16


def search_form(text: str) -> str:
    """NFKC, lower case, letters and digits only: the form both names and queries are compared in."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] in "LN")


# CJK Unified Ideographs, extension A, and extensions B onwards (the supplementary planes).
_HAN_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x323AF))


def _is_han(ch: str) -> bool:
    code = ord(ch)
    return any(low <= code <= high for low, high in _HAN_RANGES)


def name_terms(name: str) -> list[str]:
    """Bigrams in order, then the distinct single characters."""
    form = search_form(name)[:MAX_INDEXED_CHARS]
    bigrams = [form[i : i + 2] for i in range(len(form) - 1)]
    return bigrams + list(dict.fromkeys(form))


def _runs(syllables: list[str]) -> list[str]:
    return ["".join(syllables[i:j]) for i in range(len(syllables)) for j in range(i + 1, len(syllables) + 1)]


@lru_cache(maxsize=1 << 16)
def _readings(ch: str) -> tuple[str, ...]:
    """Every reading of a character, its most common first."""
    return tuple(pinyin(ch, style=Style.NORMAL, heteronym=True)[0])


@lru_cache(maxsize=1 << 17)
def _given_name(chars: str) -> tuple[str, ...]:
    # In context (pypinyin's phrase dictionary: 长江 is changjiang, 长 alone zhang). Given
    # names repeat far more than full names, so this cache spares most of the ~80 µs a call.
    return tuple(lazy_pinyin(chars)) if chars else ()


def spellings(form: str) -> list[tuple[str, ...]]:
    """The pinyin spellings of an all-Han name, bounded (MAX_READINGS, MAX_SPELLINGS): the
    surname by each reading, each given-name character by its reading in context first, then
    its others; the spellings with the fewest non-first readings come first."""
    options = [_readings(form[0])[:MAX_READINGS]]
    for ch, in_context in zip(form[1:], _given_name(form[1:]), strict=True):
        others = [reading for reading in _readings(ch) if reading != in_context]
        options.append((in_context, *others)[:MAX_READINGS])
    indexed = product(*(range(len(choices)) for choices in options))
    ranked = sorted(indexed, key=lambda picks: (sum(1 for i in picks[1:] if i), picks))
    return [tuple(options[n][i] for n, i in enumerate(picks)) for picks in ranked[:MAX_SPELLINGS]]


@lru_cache(maxsize=1 << 17)
def _pinyin_terms(form: str) -> tuple[str, ...]:
    terms: dict[str, None] = {}
    for spelled in spellings(form):
        for term in _runs(list(spelled)) + _runs([s[0] for s in spelled]):
            terms[term] = None
    return tuple(terms)


def pinyin_terms(name: str) -> list[str]:
    """Runs of syllables and of initials of a Chinese personal name; [] for anything else."""
    form = search_form(name)
    if not form or len(form) > MAX_PINYIN_CHARS or not all(_is_han(ch) for ch in form):
        return []
    return list(_pinyin_terms(form))


# The words of an organisation's legal form: a query made of nothing but (a part of) one of
# them matches a large share of all organisations.
LEGAL_FORM_WORDS = (
    "股份有限公司",
    "有限责任公司",
    "集团有限公司",
    "有限公司",
    "分公司",
    "合伙企业",
    "有限合伙",
    "个体工商户",
)


@lru_cache(maxsize=1)
def _pinyin_syllables() -> frozenset[str]:
    # ~1,500 distinct toned readings among ~40,000 characters: convert each once (0.04 s,
    # not 0.7 s on the first Latin query a process answers).
    toned = {reading for readings in pinyin_dict.values() for reading in readings.split(",")}
    return frozenset(to_normal(reading) for reading in toned)


# Pinyin typed as it is written (lǚ, chén, Nǚwā) is looked up as the index spells it
# (pypinyin's Style.NORMAL): tone marks (any accent) dropped, ü as v. Keyboards write lü
# and nü as lyu and nyu (GB/T 16159 leaves ü to input conventions): the index's lv, nv.
_DIAERESIS = "\u0308"
# No pinyin syllable ends in l, so lyu is always lü. A syllable can end in n (wan-yu,
# chen-yu), so nyu is nü only where its n cannot end the syllable before: at a word's start
# or after a consonant (chen-nyu); after a vowel it is left as typed.
_LYU = re.compile("lyu")
_NYU = re.compile("(?<![aeiouv])nyu")


def _pinyin_word(word: str) -> str:
    letters: list[str] = []
    for ch in unicodedata.normalize("NFD", word):
        if ch == _DIAERESIS and letters and letters[-1] == "u":
            letters[-1] = "v"
        elif unicodedata.category(ch)[0] != "M":
            letters.append(ch)
    spelt = unicodedata.normalize("NFC", "".join(letters))
    return _LYU.sub("lv", _NYU.sub("nv", spelt))


def pinyin_spelling(query: str) -> str | None:
    """The pinyin term a Latin query stands for, spelt as the index spells pinyin
    (`lǚ xiǎohóng`, `LÜ XIAOHONG`, `lyuxiaohong` -> lvxiaohong), or None when the query is
    not all Latin letters. Word by word: where nyu is nü depends on the word's start."""
    folded = unicodedata.normalize("NFKC", query).lower()
    words: list[str] = []
    word: list[str] = []
    for ch in [*folded, " "]:
        if unicodedata.category(ch)[0] in "LNM":
            word.append(ch)
        elif word:
            words.append(_pinyin_word("".join(word)))
            word = []
    spelt = "".join(words)[:MAX_INDEXED_CHARS]
    return spelt if spelt and spelt.isascii() and spelt.isalpha() else None


def too_broad(query: str) -> bool:
    """Whether a text query would browse a large share of the list rather than look a debtor
    up: one character (王 alone is 7% of all persons), two Latin letters or one pinyin
    syllable (wang, lǚ). A province or a court narrows it to a lookup."""
    form = search_form(query)[:MAX_INDEXED_CHARS]
    if len(form) <= 1:
        return True
    spelt = pinyin_spelling(query)
    return spelt is not None and (len(spelt) <= 2 or spelt in _pinyin_syllables())


def names_no_one(query: str) -> bool:
    """Whether a text is nothing but (a part of) the words of a legal form (有限公司, 责任公司):
    it names no debtor, and half the list's organisations hold it, in every province."""
    form = search_form(query)[:MAX_INDEXED_CHARS]
    return len(form) > 1 and any(form in word for word in LEGAL_FORM_WORDS)


@dataclass(frozen=True)
class TextMatch:
    """A query in index terms: `phrase` (consecutive name terms), and `pinyin` (one term) or None."""

    phrase: tuple[str, ...]
    pinyin: str | None


def text_match(query: str) -> TextMatch | None:
    """None when the query has no letter or digit to look for."""
    form = search_form(query)[:MAX_INDEXED_CHARS]
    if not form:
        return None
    phrase = (form,) if len(form) == 1 else tuple(form[i : i + 2] for i in range(len(form) - 1))
    # The phrase keeps the letters as typed (a name may hold ü); the pinyin term is folded.
    return TextMatch(phrase=phrase, pinyin=pinyin_spelling(query))
