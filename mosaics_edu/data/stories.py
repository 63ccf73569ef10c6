"""A procedural corpus of short children's stories, written by this package.

Why: BabiStories (the papers' corpus) is ~1 GB and needs a GPU to be useful. For a CPU course we
want text with the same *shape* — simple English, a named main character, a place, an object,
a small plot — that any machine can generate in a second, deterministically, at any size.

Names are what make the corpus interesting for in-context learning. Every story draws its
characters from a pool of thousands of procedurally generated first names (``make_names``), so a
model cannot memorise "which name comes next": to predict the third "Brelo" in a story it has to
*copy* the name from earlier in the window. ``name_spans`` finds those names again, so chapter 05
measures how well a model recalls them.

Grammar (every ``{slot}`` is drawn uniformly from a short list of alternatives; the lists are the
module-level tuples below):

    story      := intro  (finding problem)  ending                    3 paragraphs, no friend
                | intro  (finding problem)  helper  ending            4 paragraphs
                | intro  finding  problem  helper  ending             5 paragraphs
    intro      := OPENING "there was a" ADJ KIND "named" NAME "."
                  NAME "lived in" PLACE "." PRONOUN "loved to" HOBBY "."
    finding    := "One day," NAME FOUND "a" COLOUR THING "near" LANDMARK "." QUOTE
                  NAME "wanted to" USE "."
    problem    := TROUBLE-sentence ; NAME "felt" FEELING "." SEARCH-sentence
    helper     := "A" FRIEND_KIND "named" FRIEND "came by." a short dialogue that uses both
                  names; FRIEND offers help; [TOGETHER-sentences: they search together]
    ending     := RESOLUTION-sentence ; NAME "was very happy." CLOSING-sentence [MORAL-sentence]

The number of paragraphs is drawn from {3, 4, 4, 5}.

A name is 2–3 syllables (onset + vowel, with an optional final coda or ending), capitalised,
3–8 letters long, never equal to a word of the templates. Stories are joined into a corpus with
paragraphs separated by one newline and stories by a blank line (``STORY_SEPARATOR``).

Determinism: story ``i`` of split ``s`` with seed ``seed`` depends on ``(seed, s, i)`` only, so
a bigger corpus starts with the same stories as a smaller one, and train and validation stories
are drawn from different streams. A third split, ``"test"``, is a stream no training run reads
(training uses ``train`` and measures ``valid``): the in-distribution held-out set of chapter 06.

Out of distribution (chapter 06): ``generate_ood_stories`` writes stories the models never saw,
in two ways at once. Their names come from ``make_heldout_names``, a pool drawn from another random
stream and filtered so that no name is in the training pool; and with ``mode="game"`` their
structure is another grammar, a question game (see ``generate_game_story``): one sentence frame
repeated turn after turn, which no training story does, in words that all occur in training.
``mode="names"`` keeps the training grammar and changes only the names, to separate the shifts.
The question game rewards copying by construction (one frame, repeated turn after turn);
``mode="walk"`` is a second new grammar that does not: scenes that never repeat a frame, each
name said once (see ``generate_walk_story``).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from ..core.validation import check_positive_int

__all__ = [
    "STORY_SEPARATOR",
    "Story",
    "NameSpan",
    "make_names",
    "generate_story",
    "generate_stories",
    "story_corpus",
    "name_spans",
    "OOD_MODES",
    "make_heldout_names",
    "generate_game_story",
    "generate_walk_story",
    "generate_ood_stories",
]

STORY_SEPARATOR = "\n\n"
"""Text between two stories of a corpus (paragraphs inside a story are separated by ``\\n``)."""

# --- name syllables -------------------------------------------------------------------------
_ONSETS = (
    "b", "br", "bl", "ch", "cl", "d", "dr", "f", "fl", "g", "gr", "h", "j", "k", "kr",
    "l", "m", "n", "p", "pr", "r", "s", "sh", "st", "t", "tr", "v", "w", "y", "z",
)  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ee", "oo", "ia", "y")
_CODAS = ("n", "l", "r", "s", "m", "x", "th", "nd", "sh", "k")
_ENDINGS = ("a", "o", "y", "ie", "el", "in", "an", "on", "en", "ah", "i", "us")

# --- story vocabulary -----------------------------------------------------------------------
_OPENINGS = (
    "Once upon a time,", "Long ago,", "Once,", "Not long ago,", "One sunny spring,",
    "Far away,", "In a happy time,",
)  # fmt: skip
_ADJECTIVES = ("little", "brave", "curious", "kind", "shy", "happy", "clever", "small", "gentle")
_KINDS = (
    ("girl", "she", "her"), ("boy", "he", "his"), ("rabbit", "she", "her"), ("fox", "he", "his"),
    ("bear", "he", "his"), ("duck", "she", "her"), ("cat", "she", "her"), ("dog", "he", "his"),
    ("mouse", "she", "her"), ("bird", "he", "his"), ("frog", "he", "his"), ("owl", "she", "her"),
)  # fmt: skip
# place -> landmarks of that place
_PLACES = (
    ("a small town by the sea", ("the beach", "the old boat", "the big rocks", "the harbor")),
    ("a big green forest", ("a tall tree", "the river", "a mossy log", "the berry bushes")),
    ("a quiet farm", ("the red barn", "the hay", "the duck pond", "the apple trees")),
    ("a busy city", ("the park", "the bakery", "the bus stop", "the fountain")),
    ("a little village", ("the well", "the bridge", "the market", "the school")),
    ("a snowy hill", ("a snowman", "the frozen lake", "the pine trees", "a wooden hut")),
    ("a sunny garden", ("the flowers", "the pond", "the fence", "the vegetable patch")),
    ("a house near the park", ("the swings", "the sandbox", "the slide", "the big oak")),
)  # fmt: skip
_HOBBIES = (
    "play outside", "sing songs", "draw pictures", "run in the grass", "look at the clouds",
    "read books", "help friends", "collect stones", "dance", "build towers of blocks",
)  # fmt: skip
_COLOURS = ("red", "blue", "yellow", "green", "shiny", "tiny", "golden", "striped", "old")
# thing -> what one wants to do with it
_THINGS = (
    ("ball", "play catch with it"), ("kite", "fly it high in the sky"),
    ("hat", "wear it to the party"), ("drum", "play a song on it"),
    ("key", "find the door it could open"), ("boat", "sail it on the water"),
    ("book", "read it before bed"), ("train", "show it to everyone"),
    ("map", "follow it to a secret place"), ("shell", "keep it forever"),
    ("button", "sew it on a coat"), ("bell", "ring it loudly"),
)  # fmt: skip
_FOUND = ("found", "saw", "picked up", "discovered", "spotted")
_QUOTES = (
    '"What a nice {thing}!" said {name}.',
    '"Look at this {thing}!" said {name}.',
    '"Wow, a {thing}!" {name} said with a smile.',
    '"I love this {thing}," said {name}.',
)
_TROUBLES = (
    "But then a strong wind came and blew the {thing} away.",
    "But when {name} looked again, the {thing} was gone.",
    "Then a big dog ran past and took the {thing}.",
    "Then {pronoun} dropped the {thing}, and it rolled far away.",
    "But the {thing} fell into a deep hole.",
)
_FEELINGS = ("sad", "worried", "upset", "lonely", "scared")
_SEARCHES = (
    "{name} looked near {landmark}, but the {thing} was not there.",
    "{name} looked up and down, but {pronoun} could not find the {thing}.",
    "{name} searched all day, but the {thing} was still lost.",
)
_FRIEND_KINDS = ("squirrel", "turtle", "goat", "hen", "lamb", "beaver", "puppy", "kitten")
_HELPER_LINES = (
    '"Why are you sad, {name}?" asked {friend}. {name} told {friend} about the {thing}. '
    '"I will help you," said {friend}.',
    '"What is wrong, {name}?" asked {friend}. "I lost my {thing}," said {name}. '
    '"Do not worry, {name}. We can look together," said {friend}.',
    '{friend} saw that {name} was {feeling}. "Can I help you, {name}?" asked {friend}. '
    '"Yes, please," said {name}.',
)
_TOGETHER = (
    "{name} and {friend} looked behind {landmark}. They looked under every leaf.",
    "{friend} had a good idea. \"Let us ask the birds,\" said {friend}. The birds pointed to "
    "{landmark}.",
    "They walked and walked. {friend} held {name}'s hand, and {name} felt brave again.",
)
_RESOLUTIONS = (
    "At last, {name} saw the {thing} near {landmark}.",
    "Then {name} heard a sound. The {thing} was right there, near {landmark}!",
    "Soon, {finder} found the {thing} under a big leaf.",
    "After a while, the wind blew the {thing} back to {name}.",
)
_CLOSINGS = (
    "{name} and {friend} played until the sun went down.",
    "That night, {name} went to bed with a big smile.",
    "{name} hugged {friend} and said thank you.",
    "From that day on, {name} kept the {thing} safe.",
)
_MORALS = (
    "{name} learned that friends make every problem smaller.",
    "{name} learned to never give up.",
    "{name} learned that it is good to ask for help.",
    "",
)

_WORD_RE = re.compile(r"[A-Za-z]+")


@lru_cache(maxsize=1)
def _template_words() -> frozenset[str]:
    """Every word that appears in a template, lower-cased: names must differ from all of them."""
    texts: list[str] = []
    pools: tuple = (
        _OPENINGS, _ADJECTIVES, _HOBBIES, _COLOURS, _FOUND, _QUOTES, _TROUBLES, _FEELINGS,
        _SEARCHES, _FRIEND_KINDS, _HELPER_LINES, _TOGETHER, _RESOLUTIONS, _CLOSINGS, _MORALS,
    )  # fmt: skip
    for pool in pools:
        texts.extend(pool)
    for kind in _KINDS:
        texts.extend(kind)
    for place, landmarks in _PLACES:
        texts.append(place)
        texts.extend(landmarks)
    for thing, use in _THINGS:
        texts.extend((thing, use))
    texts.append(
        "there was a named lived in loved to one day near wanted felt came by was very happy"
    )
    return frozenset(w.lower() for t in texts for w in _WORD_RE.findall(t))


def _one_name(rng: random.Random) -> str:
    n_syllables = rng.choice((2, 2, 2, 3))
    name = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(n_syllables - 1))
    last = rng.random()
    if last < 0.4:
        name += rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
    elif last < 0.7:
        name += rng.choice(_ONSETS) + rng.choice(_ENDINGS)
    else:
        name += rng.choice(_CODAS) + rng.choice(_ENDINGS)
    return name.capitalize()


def _draw_names(
    stream: str, n: int, forbidden: frozenset[str] | set[str], taken: set[str]
) -> tuple[str, ...]:
    """``n`` distinct names of 3-8 letters from the random stream ``stream``, none in ``taken`` and
    none equal (lower-cased) to a word of ``forbidden``."""
    rng = random.Random(stream)
    seen: set[str] = set()
    names: list[str] = []
    attempts = 0
    while len(names) < n:
        attempts += 1
        if attempts > 200 * n + 10_000:  # pragma: no cover - the syllable space is ~10^6
            raise RuntimeError(f"could not generate {n} distinct names; ask for fewer")
        name = _one_name(rng)
        if not 3 <= len(name) <= 8 or name in seen or name in taken or name.lower() in forbidden:
            continue
        seen.add(name)
        names.append(name)
    return tuple(names)


@lru_cache(maxsize=8)
def _names_cached(n: int, seed: int) -> tuple[str, ...]:
    return _draw_names(f"mosaics-edu-names/{seed}", n, _template_words(), set())


def make_names(n: int = 4000, seed: int = 0) -> list[str]:
    """``n`` distinct, capitalised, pronounceable first names built from syllables.

    The same ``(n, seed)`` always gives the same list, and the first ``m`` names of a longer list
    are the ``m`` names of a shorter one. BabiStories uses 3,984 names; the default is similar.
    """
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 200_000:
        raise ValueError(f"n must be an int between 1 and 200000, got {n!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    return list(_names_cached(n, seed))


@dataclass(frozen=True)
class Story:
    """One generated story: its text and the slots it was built from."""

    text: str
    names: tuple[str, ...]  # main character first, then the friend (if any)
    place: str
    thing: str
    n_paragraphs: int


def _hero_and_friend(rng: random.Random, names: list[str] | tuple[str, ...]) -> tuple[str, str]:
    """Two different names drawn from ``names`` (the first draws of every story's ``rng``)."""
    if not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random, got {type(rng).__name__}")
    if len(names) < 2:
        raise ValueError(f"names must hold at least 2 names, got {len(names)}")
    name = rng.choice(names)
    friend = rng.choice(names)
    while friend == name:
        friend = rng.choice(names)
    return name, friend


def generate_story(rng: random.Random, names: list[str] | tuple[str, ...]) -> Story:
    """Draw one story from the grammar in the module docstring, using ``rng`` and ``names``."""
    name, friend = _hero_and_friend(rng, names)
    c = rng.choice
    kind, pronoun, _possessive = c(_KINDS)
    place, landmarks = c(_PLACES)
    thing, use = c(_THINGS)
    colour = c(_COLOURS)
    feeling = c(_FEELINGS)
    n_paragraphs = c((3, 4, 4, 5))
    has_friend = n_paragraphs >= 4
    slots = {
        "name": name,
        "friend": friend if has_friend else name,
        "thing": thing,
        "pronoun": pronoun,
        "feeling": feeling,
        "landmark": c(landmarks),
        "finder": c((name, friend)) if has_friend else name,
    }

    def fill(template: str) -> str:
        return template.format(**slots)

    intro = (
        f"{c(_OPENINGS)} there was a {c(_ADJECTIVES)} {kind} named {name}. "
        f"{name} lived in {place}. {pronoun.capitalize()} loved to {c(_HOBBIES)}."
    )
    finding = (
        f"One day, {name} {c(_FOUND)} a {colour} {thing} near {c(landmarks)}. "
        f"{fill(c(_QUOTES))} {name} wanted to {use}."
    )
    problem = f"{fill(c(_TROUBLES))} {name} felt {feeling}. {fill(c(_SEARCHES))}"
    if n_paragraphs == 5:
        paragraphs = [intro, finding, problem]
    else:
        paragraphs = [intro, f"{finding} {problem}"]
    if has_friend:
        helper = f"A {c(_FRIEND_KINDS)} named {friend} came by. {fill(c(_HELPER_LINES))}"
        if n_paragraphs == 5 or rng.random() < 0.5:
            helper += " " + fill(c(_TOGETHER))
        paragraphs.append(helper)
    closings = _CLOSINGS if has_friend else tuple(t for t in _CLOSINGS if "{friend}" not in t)
    slots["landmark"] = c(landmarks)
    ending = f"{fill(c(_RESOLUTIONS))} {name} was very happy. {fill(c(closings))}"
    moral = fill(c(_MORALS))
    if moral:
        ending += " " + moral
    paragraphs.append(ending)
    names_used = (name, friend) if has_friend else (name,)
    return Story(
        text="\n".join(paragraphs),
        names=names_used,
        place=place,
        thing=thing,
        n_paragraphs=len(paragraphs),
    )


_SPLITS = ("train", "valid", "test")  # "test": held-out, never used by training or its validation


def generate_stories(
    n_stories: int,
    seed: int = 0,
    split: str = "train",
    n_names: int = 4000,
    start: int = 0,
) -> list[Story]:
    """Stories ``start … start+n_stories-1`` of one split; each depends on (seed, split, index)."""
    if not isinstance(n_stories, int) or isinstance(n_stories, bool) or n_stories < 0:
        raise ValueError(f"n_stories must be a non-negative int, got {n_stories!r}")
    if not isinstance(start, int) or start < 0:
        raise ValueError(f"start must be a non-negative int, got {start!r}")
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    names = _names_cached(int(n_names), int(seed)) if n_names >= 2 else make_names(n_names, seed)
    return [
        generate_story(random.Random(f"mosaics-edu-story/{seed}/{split}/{i}"), names)
        for i in range(start, start + n_stories)
    ]


def story_corpus(
    n_train: int = 4000,
    n_valid: int = 400,
    seed: int = 0,
    n_names: int = 4000,
) -> dict[str, str]:
    """A train/validation corpus: ``{"train": text, "valid": text}``.

    Stories are joined by ``STORY_SEPARATOR``. About 680 characters per story, so the defaults
    give ~2.7 MB of training text and ~0.27 MB of validation text (0.1 s to generate).
    """
    check_positive_int("n_train", n_train)
    check_positive_int("n_valid", n_valid)
    if not isinstance(n_names, int) or n_names < 2:
        raise ValueError(f"n_names must be an int >= 2, got {n_names!r}")
    out = {}
    for split, n in (("train", n_train), ("valid", n_valid)):
        stories = generate_stories(n, seed=seed, split=split, n_names=n_names)
        out[split] = STORY_SEPARATOR.join(s.text for s in stories) + STORY_SEPARATOR
    return out


class NameSpan(NamedTuple):
    """Where a name occurs in a text: ``text[start:end] == name``."""

    start: int
    end: int
    name: str
    repeated: bool  # True if the same name occurred earlier in the text (so it can be copied)


def name_spans(text: str, names: list[str] | tuple[str, ...] | set[str]) -> list[NameSpan]:
    """Every whole-word occurrence of one of ``names`` in ``text``, in order.

    ``repeated`` marks the occurrences a model could copy from its context: the ones after the
    first. Chapter 06 measures recall on exactly those. For a whole corpus, call it per story
    (split on ``STORY_SEPARATOR``) so that "earlier" means "earlier in the same story".
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    wanted = {n for n in names}
    if not wanted:
        raise ValueError("names is empty: pass the names of the story, e.g. story.names")
    spans: list[NameSpan] = []
    seen: set[str] = set()
    for m in _WORD_RE.finditer(text):
        word = m.group(0)
        if word in wanted:
            spans.append(NameSpan(m.start(), m.end(), word, word in seen))
            seen.add(word)
    return spans


# --------------------------------------------------------------------------------------------
# Out of distribution: held-out names and a grammar the models never saw (chapter 06)
# --------------------------------------------------------------------------------------------

# A question game: an opening line, then 5-7 turns that all follow ONE frame, drawn per story,
# with fresh slots in every turn, then a closing line. Every word is a word of the training
# stories (so no token is new to a model); the structure is not: no training story repeats one
# sentence frame turn after turn. A model that learns in context can pick the frame up from the
# first turns.
_GAME_OPENINGS = (
    "{name} and {friend} lived in {place}. Every day, they played near {landmark}.",
    "Once, {name} the {kind} and {friend} played near {landmark}.",
)
_GAME_FRAMES = (
    '"What is near {landmark}?" asked {name}. "A {colour} {thing}," said {friend}.',
    '"Can you {hobby}?" asked {name}. "Yes, I love to {hobby}," said {friend}.',
    "{name} looked near {landmark} and saw a {colour} {thing}. {friend} looked near {landmark2} "
    "and saw a {colour2} {thing2}.",
)
_GAME_CLOSINGS = (
    "That night, {name} and {friend} went to bed with a big smile.",
    "{name} hugged {friend} and said thank you.",
    "{name} and {friend} played until the sun went down.",
)

# A walk: one character goes through 14-18 short scenes, each scene a sentence frame used at most
# once per story, in a random order, with fresh slots (a story is about as long as a training
# one). The hero's name is said once (in the first sentence; later the story says "the fox" or
# "she") and the friend's name once, so, unlike the question game, a story repeats no frame and
# hardly any phrase: the context offers little to copy. Every word, capitalised as written, is a
# word of the training stories; the grammar is not theirs.
_WALK_OPENINGS = (
    "{opening} a {adjective} {kind} named {name} walked to {landmark}.",
    "{opening} {name} the {kind} walked in {place}.",
)
_WALK_SCENES = (
    "The {kind} saw a {colour} {thing} near {landmark}.",
    "Then {pronoun} heard a sound behind {landmark}.",
    "A {friend_kind} named {friend} ran past.",
    "The wind blew, and the {kind} felt {feeling}.",
    "{Pronoun} looked up at the clouds in the sky.",
    "A big dog ran past {landmark} and took a {colour} {thing}.",
    "Soon, {pronoun} walked to {landmark}.",
    "{Pronoun} wanted to {hobby}.",
    "The birds pointed to {landmark}.",
    "{Pronoun} picked up a {colour} {thing} and held it.",
    "Then the {kind} was very happy.",
    "A {friend_kind} asked the {kind} for help.",
    "The {kind} dropped a {thing} into the water.",
    "After a while, {pronoun} found a {colour} {thing} under a leaf.",
    "{Pronoun} ran up the hill and down again.",
    "The day was good, and {pronoun} loved to {hobby}.",
    "The sun was high in the sky.",
    "The {kind} heard the birds sing songs.",
    "{Pronoun} kept a {colour} {thing} safe.",
    "The {kind} played with a {colour} {thing} near {landmark}.",
    "{Pronoun} was not scared of the big dog.",
    "The {kind} looked behind {landmark}, but it was still quiet.",
    "The leaf on the tall tree was {colour}.",
    "{Pronoun} told the {friend_kind} about {landmark}.",
)
_WALK_CLOSINGS = (
    "That night, the {kind} went to bed.",
    "The sun went down, and the {kind} went back.",
)

OOD_MODES = ("game", "names", "walk")
"""``generate_ood_stories`` modes: ``"game"`` (held-out names AND the question-game grammar),
``"names"`` (held-out names in the training grammar) and ``"walk"`` (held-out names, each said
once, in a grammar of scenes that repeats no frame: little to copy)."""


@lru_cache(maxsize=1)
def _game_words() -> frozenset[str]:
    """Every word of the question-game templates, lower-cased (names must differ from them)."""
    texts = (*_GAME_OPENINGS, *_GAME_FRAMES, *_GAME_CLOSINGS)
    return frozenset(w.lower() for t in texts for w in _WORD_RE.findall(t))


@lru_cache(maxsize=8)
def _heldout_names_cached(n: int, seed: int, train_n_names: int) -> tuple[str, ...]:
    # not the training names' stream, and none of the training pool these names must avoid
    return _draw_names(f"mosaics-edu-heldout-names/{seed}", n, _template_words() | _game_words(),
                       set(_names_cached(train_n_names, seed)))  # fmt: skip


def make_heldout_names(n: int = 1000, seed: int = 0, train_n_names: int = 4000) -> list[str]:
    """``n`` distinct names built like ``make_names`` but none of them in ``make_names(train_n_names,
    seed)``, the pool the training stories draw from (and none equal to a template word).

    Why: to test whether a model *copies* a name from its context, the name must be one it cannot
    have memorised. Drawn from their own random stream, so they are also not simply the training
    pool's next names. Deterministic in ``(n, seed, train_n_names)``; a shorter list is a prefix
    of a longer one. Disjointness holds for the pool of the given size (the default, 4,000, is the
    one every training run of this package uses).
    """
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 100_000:
        raise ValueError(f"n must be an int between 1 and 100000, got {n!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not isinstance(train_n_names, int) or isinstance(train_n_names, bool) or train_n_names < 2:
        raise ValueError(
            f"train_n_names must be the training pool's size (an int >= 2, default 4000), "
            f"got {train_n_names!r}"
        )
    return list(_heldout_names_cached(n, seed, train_n_names))


def generate_game_story(rng: random.Random, names: list[str] | tuple[str, ...]) -> Story:
    """One question-game story: an opening, 5-7 turns in one frame (drawn per story), a closing.

    The out-of-distribution grammar of chapter 06. Its words are all words of the training
    stories, so what changes is the structure (and, through ``names``, the names), not the
    vocabulary: a model meets no token it has not been trained on, only an order it has not seen.
    """
    name, friend = _hero_and_friend(rng, names)
    c = rng.choice
    kind, _pronoun, _possessive = c(_KINDS)
    place, landmarks = c(_PLACES)
    frame = c(_GAME_FRAMES)
    opening = c(_GAME_OPENINGS).format(
        name=name, friend=friend, kind=kind, place=place, landmark=c(landmarks)
    )
    turns = []
    for _ in range(c((5, 6, 7))):
        slots = {
            "name": name, "friend": friend, "landmark": c(landmarks), "landmark2": c(landmarks),
            "colour": c(_COLOURS), "colour2": c(_COLOURS), "thing": c(_THINGS)[0],
            "thing2": c(_THINGS)[0], "hobby": c(_HOBBIES),
        }  # fmt: skip
        turns.append(frame.format(**slots))
    closing = c(_GAME_CLOSINGS).format(name=name, friend=friend)
    return Story(
        text="\n".join([opening, " ".join(turns), closing]),
        names=(name, friend),
        place=place,
        thing="",
        n_paragraphs=3,
    )


def generate_walk_story(rng: random.Random, names: list[str] | tuple[str, ...]) -> Story:
    """One walk story: an opening, 14-18 scenes (distinct frames, random order), a closing.

    The out-of-distribution grammar of chapter 06 that does *not* reward copying: each name is
    said once and no sentence frame repeats, so a model that copies from its context gains
    little more than on any text; what it needs is what it learned of the words. All its words
    are words of the training stories.
    """
    name, friend = _hero_and_friend(rng, names)
    c = rng.choice
    kind, pronoun, _possessive = c(_KINDS)
    place, landmarks = c(_PLACES)
    scenes = rng.sample(_WALK_SCENES, rng.randint(14, 18))
    has_friend = any("{friend}" in t for t in scenes)

    def fill(template: str) -> str:
        thing = c(_THINGS)[0]
        return template.format(
            opening=c(_OPENINGS), adjective=c(_ADJECTIVES), kind=kind, name=name, place=place,
            landmark=c(landmarks), colour=c(_COLOURS), thing=thing, pronoun=pronoun,
            Pronoun=pronoun.capitalize(), feeling=c(_FEELINGS), hobby=c(_HOBBIES),
            friend_kind=c(_FRIEND_KINDS), friend=friend,
        )  # fmt: skip

    text = " ".join([fill(c(_WALK_OPENINGS)), *(fill(t) for t in scenes), fill(c(_WALK_CLOSINGS))])
    return Story(text=text, names=(name, friend) if has_friend else (name,), place=place, thing="",
                 n_paragraphs=1)


def generate_ood_stories(
    n_stories: int,
    seed: int = 0,
    mode: str = "game",
    n_names: int = 1000,
    start: int = 0,
    train_n_names: int = 4000,
) -> list[Story]:
    """Stories ``start … start+n_stories-1`` that the models never saw (chapter 06).

    ``mode="game"``: held-out names (``make_heldout_names(n_names, seed, train_n_names)``) in the
    question-game grammar; ``mode="names"``: the same held-out names in the training grammar;
    ``mode="walk"``: the same held-out names in the walk grammar. Story ``i`` depends on
    ``(seed, mode, i)`` only, from a random stream no training split uses.
    """
    if not isinstance(n_stories, int) or isinstance(n_stories, bool) or n_stories < 0:
        raise ValueError(f"n_stories must be a non-negative int, got {n_stories!r}")
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise ValueError(f"start must be a non-negative int, got {start!r}")
    if mode not in OOD_MODES:
        raise ValueError(f"mode must be one of {OOD_MODES}, got {mode!r}")
    if not isinstance(n_names, int) or isinstance(n_names, bool) or n_names < 2:
        raise ValueError(f"n_names must be an int >= 2, got {n_names!r}")
    names = make_heldout_names(n_names, seed, train_n_names)
    make = {"game": generate_game_story, "names": generate_story, "walk": generate_walk_story}[mode]
    return [
        make(random.Random(f"mosaics-edu-ood-story/{seed}/{mode}/{i}"), names)
        for i in range(start, start + n_stories)
    ]
