"""Word tokens as the quality rules of datatrove and FineWeb count them.

datatrove splits English text into words with spaCy's blank English tokenizer, and FineWeb
was filtered that way, so Gopher's and FineWeb's word statistics depend on it: punctuation
is split off as tokens of its own ("word," is two tokens, "well-known" three), which puts
many more non-alphabetic tokens into technical text than a whitespace split does. This
module reproduces that tokenizer's rules (spaCy 3.8, `spacy.lang.punctuation` and
`spacy.lang.en`: split on whitespace, then peel prefixes and suffixes off each chunk, keep
URLs whole, split the rest at infixes) without spaCy.

Left out: spaCy's table of English exceptions is reduced to the rules that matter for word
counts (contractions, `cannot`, single letters and a few abbreviations with a period,
`C++`); rarer abbreviations and emoticons are split by the general rules instead. A run of
over 1,000 characters without whitespace is one token (LONG_CHUNK). docs/benchmarks.md
records the agreement with datatrove, token by token and rule by rule.
"""

from __future__ import annotations

import functools
import itertools

import regex

# The character sets spaCy's rules are written in (spacy/lang/char_classes.py).
_PUNCT = "…,:;!?¿؟¡()[]{}<>_#*&。？！，、；：～·।،۔؛٪"  # noqa: RUF001
_QUOTES = "'\"”“`‘´’‚,„»«「」『』（）〔〕【】《》〈〉⟦⟧"  # noqa: RUF001
_CURRENCY = r"\$|£|€|¥|฿|US\$|C\$|A\$|₽|﷼|[₠-₿]"
_UNITS = (
    "km|km²|km³|m|m²|m³|dm|dm²|dm³|cm|cm²|cm³|mm|mm²|mm³|ha|µm|nm|yd|in|ft|kg|g|mg|µg|t|lb|oz|"
    "m/s|km/h|kmh|mph|hPa|Pa|mbar|mb|MB|kb|KB|gb|GB|tb|TB|T|G|M|K|%"
)
_ICON = r"[\p{So}--°]|°"  # other symbols (dingbats, emoji) and the degree sign
_HYPHENS = "---|--|——|-|–|—|~"  # noqa: RUF001


# One-character affixes as character classes (an alternation of literals is slower); at one
# position two affixes that both reach the chunk's end have the same length, so the order of
# spaCy's list does not matter for suffixes, nor for prefixes beyond "..".
_PREFIX = regex.compile(
    "^(?:["
    + regex.escape("§%=—–$£€¥฿₽﷼" + _PUNCT + _QUOTES)  # noqa: RUF001
    + r"₠-₿]|\+(?![0-9])|\.\.+|US\$|C\$|A\$|"
    + _ICON
    + ")",
    regex.V1,
)
_SUFFIX = regex.compile(
    "(?:"
    + "|".join(
        [
            "[" + regex.escape(_PUNCT + _QUOTES + "—–") + "]",  # noqa: RUF001
            _ICON,
            r"\.\.+",
            "['’][sS]",
            r"(?<=[0-9])\+",
            r"(?<=°[FfCcKk])\.",
            rf"(?<=[0-9])(?:{_CURRENCY})",
            rf"(?<=[0-9])(?:{_UNITS})",
            r"(?<=[0-9\p{Ll}%²\-\+" + regex.escape(_PUNCT + _QUOTES) + r"|?:])\.",
            r"(?<=\p{Lu}\p{Lu})\.",
        ]
    )
    + ")$",
    regex.V1,
)
_LONGEST_SUFFIX = 6  # "km/h", "US$"...; only a run of dots is longer
_INFIX = regex.compile(
    "|".join(
        [
            r"\.\.+",
            "…",
            _ICON,
            r"(?<=[0-9])[+\-\*^](?=[0-9-])",
            r"(?<=[\p{Ll}" + regex.escape(_QUOTES) + r"])\.(?=[\p{Lu}" + regex.escape(_QUOTES) + "])",
            r"(?<=\p{L}),(?=\p{L})",
            rf"(?<=[\p{{L}}0-9])(?:{_HYPHENS})(?=\p{{L}})",
            r"(?<=[\p{L}0-9])[:<>=/](?=\p{L})",
        ]
    ),
    regex.V1,
)
# spaCy's URL pattern, shortened: an optional scheme and user, a host name whose last label
# is two or more lower-case letters (or an IPv4 address), an optional port and path.
_URL = regex.compile(
    r"(?:[\w+\-.]{2,}://)?(?:\S+(?::\S*)?@)?"
    r"(?:\d{1,3}(?:\.\d{1,3}){3}|(?:(?:[A-Za-z0-9\u00a1-\uffff][A-Za-z0-9\u00a1-\uffff_-]{0,62})?"
    r"[A-Za-z0-9\u00a1-\uffff]\.)+\p{Ll}{2,63})(?::\d{2,5})?(?:[/?#]\S*)?",
    regex.V1,
)
_CONTRACTION = regex.compile(r"(?i)^(\p{L}+?)(n['’]t|['’](?:ll|re|ve|d|m))$")
_ABBREVIATIONS = ("e.g.", "E.g.", "i.e.", "I.e.", "a.m.", "p.m.", "U.S.", "U.K.", "vs.", "Mr.", "Mrs.", "Ms.", "Dr.",
                  "Inc.", "Ltd.", "Co.", "Corp.", "Jr.", "Sr.", "St.")  # fmt: skip
_EMOTICONS = (":)", ":(", "):", "(:", "8)", ":*", ":o", ":-)", ":-(", ";)", ":D", ":P", ":p", "<3", "''",
              "and/or")  # fmt: skip
_BARE_CONTRACTIONS = [
    *((verb, "nt") for verb in ("do", "does", "did", "is", "are", "was", "has", "have", "had", "could", "would",
                                "should")),
    ("can", "not"), ("i", "d"), ("i", "m"), ("i", "ve"), ("what", "s"), ("that", "s"),
]  # fmt: skip
_SPECIAL: dict[str, tuple[str, ...]] = {
    "'s": ("'s",),
    "’s": ("’s",),
    "'d": ("'d",),
    "C++": ("C++",),
    **{a: (a,) for a in _ABBREVIATIONS + _EMOTICONS},
    **{f"{h}{m}": (str(h), m) for h in range(1, 13) for m in ("am", "pm", "a.m.", "p.m.")},  # "3pm"
    # contractions written without their apostrophe: "dont", "Isnt", "whats"
    **{f"{w}{tail}": (w, tail) for stem, tail in _BARE_CONTRACTIONS for w in (stem, stem.title())},
}
_AFFIX_SPECIALS = frozenset(_EMOTICONS)
_AFFIX_SPECIAL_STARTS = frozenset(e[0] for e in _EMOTICONS)
_SYMBOLS_ONLY = regex.compile(r"[\p{P}\p{S}\p{Cc}]+")
_PUNCTUATION_ONLY = regex.compile(r"\p{P}+")
_SENTENCE_END = regex.compile(r"\p{Sentence_Terminal}")
# A longer run without whitespace (minified code, encoded data) is one token, not split and
# not cached: peeling its affixes one by one costs its length squared. spaCy splits it.
LONG_CHUNK = 1000
_RECENT_LIMIT = 1024  # a batch of the document chain (strata.pipeline.groups.BATCH_ROWS)
_recent: dict[str, list[str]] = {}


def word_tokens(text: str) -> list[str]:
    """The word and punctuation tokens of `text`, whitespace dropped, as spaCy's blank
    English tokenizer gives them (datatrove's `split_into_words` for English). The tokens of
    the last 1,024 texts are kept, so the rules that judge a batch one after the other split
    each text once (the caller must not change the list)."""
    tokens = _recent.get(text)
    if tokens is not None:
        return tokens
    chunks = text.split()
    if any(len(chunk) > LONG_CHUNK for chunk in chunks):
        tokens = list(itertools.chain.from_iterable(_tokens_of(chunk) for chunk in chunks))
    else:
        tokens = list(itertools.chain.from_iterable(map(_chunk_tokens, chunks)))
    if len(_recent) >= _RECENT_LIMIT:
        _recent.pop(next(iter(_recent)))
    _recent[text] = tokens
    return tokens


def is_symbol(token: str) -> bool:
    """Whether the token is punctuation and symbols only (datatrove's "symbol word", which the
    Gopher word count and mean length leave out)."""
    return not token.isalnum() and _SYMBOLS_ONLY.fullmatch(token) is not None


def ends_sentence(line: str) -> bool:
    """Whether the line's last character is a sentence terminal (Unicode's Sentence_Terminal:
    . ! ? 。 and their kin in other scripts; datatrove's TERMINAL_PUNCTUATION up to three
    Khmer signs)."""
    return bool(line) and _SENTENCE_END.match(line[-1]) is not None


def sentence_count(tokens: list[str]) -> int:
    """Sentences in a run of tokens as spaCy's rule-based `sentencizer` splits them (datatrove's
    `split_into_sentences`): a sentence ends after a token that is a sentence terminal
    (Unicode's Sentence_Terminal property: . ! ? 。 …) once a token that is not punctuation
    follows."""
    count = 1 if tokens else 0
    after_terminal = False
    for token in tokens:
        terminal = len(token) == 1 and _SENTENCE_END.match(token) is not None
        if after_terminal and not terminal and _PUNCTUATION_ONLY.fullmatch(token) is None:
            count += 1
            after_terminal = False
        elif terminal:
            after_terminal = True
    return count


def _tokens_of(chunk: str) -> tuple[str, ...]:
    return (chunk,) if len(chunk) > LONG_CHUNK else _chunk_tokens(chunk)


@functools.lru_cache(maxsize=1 << 18)  # the frequent chunks stay; at most 2^18 × 1,000 characters
def _chunk_tokens(chunk: str) -> tuple[str, ...]:
    return tuple(_split_chunk(chunk))


def _special(chunk: str) -> tuple[str, ...] | None:
    if chunk in _SPECIAL:
        return _SPECIAL[chunk]
    if len(chunk) == 2 and chunk[1] == "." and chunk[0].isalpha():
        return (chunk,)  # "x.", "A.": initials and list letters
    contraction = _CONTRACTION.match(chunk) if "'" in chunk or "’" in chunk else None
    if contraction:
        stem, tail = contraction.groups()
        if tail[0] in "nN" and stem.lower() in ("ca", "wo", "sha"):
            return (stem, tail)  # "can't" -> "ca", "n't"
        return (stem, tail)
    return None


def _split_chunk(chunk: str) -> list[str]:
    """One whitespace-free chunk: prefixes and suffixes peeled off in turn until the rest is
    a special case or bare; the rest kept whole if it is a URL, else split at its infixes
    (spaCy's order: a URL's trailing punctuation is a token of its own)."""
    if chunk.isalpha():  # no affix or infix rule splits letters alone
        return list(_SPECIAL.get(chunk, (chunk,)))
    prefixes: list[str] = []
    suffixes: list[str] = []
    rest = chunk
    while rest and _special(rest) is None:
        prefix = _PREFIX.match(rest)
        pre = prefix.end() if prefix else 0
        suf = _suffix_length(rest[pre:])
        if pre and _special(rest[pre:]) is not None:
            prefixes.append(rest[:pre])
            rest = rest[pre:]
            break
        if suf and _special(rest[:-suf]) is not None:
            suffixes.append(rest[-suf:])
            rest = rest[:-suf]
            break
        if pre and suf and pre + suf <= len(rest):
            prefixes.append(rest[:pre])
            suffixes.append(rest[-suf:])
            rest = rest[pre:-suf]
        elif pre:
            prefixes.append(rest[:pre])
            rest = rest[pre:]
        elif suf:
            suffixes.append(rest[-suf:])
            rest = rest[:-suf]
        else:
            break
    return _merge_specials([*prefixes, *_split_infixes(rest), *reversed(suffixes)])


def _merge_specials(tokens: list[str]) -> list[str]:
    """Join neighbouring tokens that spell a special case made of affixes ("''", "):"), as
    spaCy's matcher of special cases does after the split."""
    if len(tokens) < 2 or not any(t[:1] in _AFFIX_SPECIAL_STARTS for t in tokens):
        return tokens
    merged: list[str] = []
    i = 0
    while i < len(tokens):
        for width in (3, 2):
            joined = "".join(tokens[i : i + width])
            if i + width <= len(tokens) and joined in _AFFIX_SPECIALS:
                merged.append(joined)
                i += width
                break
        else:
            merged.append(tokens[i])
            i += 1
    return merged


def _suffix_length(rest: str) -> int:
    """Length of spaCy's suffix of `rest`: the match of a suffix rule that starts leftmost,
    searched in the last characters only (a longer one is a run of dots, followed left)."""
    suffix = _SUFFIX.search(rest, max(0, len(rest) - _LONGEST_SUFFIX))
    if suffix is None:
        return 0
    if suffix.group().startswith(".."):
        return len(rest) - len(rest.rstrip("."))
    return int(suffix.end() - suffix.start())


def _split_infixes(rest: str) -> list[str]:
    if not rest:
        return []
    special = _special(rest)
    if special is not None:
        return list(special)
    if _URL.fullmatch(rest):
        return [rest]
    parts: list[str] = []
    start = 0
    for infix in _INFIX.finditer(rest):
        if infix.start() == 0:
            continue  # an infix at the start is not split off (spaCy)
        if infix.start() != start:
            parts.append(rest[start : infix.start()])
        if infix.end() != infix.start():
            parts.append(infix.group())
        start = infix.end()
    if start < len(rest):
        parts.append(rest[start:])
    return parts
