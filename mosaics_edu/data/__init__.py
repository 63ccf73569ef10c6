"""Data for the course: generated stories, tokenizers, BabiStories, token memmaps and batches.

- ``stories``     : the package's own procedural children's stories (``story_corpus``)
- ``tokenizers``  : character, byte-pair (trained here) and GPT-2 (tiktoken) tokenizers
- ``batches``     : token datasets on disk (uint16 memmaps) and random training windows
- ``babistories`` : the papers' corpus: download, checksum, cache, tokenize
"""

from .babistories import (
    BABISTORIES_BASE_URL,
    BABISTORIES_PARTS,
    BABISTORIES_REPO,
    BABISTORIES_SHA256,
    BabiStoriesSource,
    ChecksumError,
    DatasetUnavailableError,
    prepare_babistories,
    write_babistories_like_files,
)
from .batches import (
    RandomWindows,
    TokenDataset,
    default_data_dir,
    get_batch,
    load_token_dataset,
    prepare_stories,
    save_token_dataset,
)
from .stories import STORY_SEPARATOR, NameSpan, Story, generate_stories, make_names, name_spans, story_corpus
from .tokenizers import BPETokenizer, CharTokenizer, GPT2Tokenizer, Tokenizer, load_tokenizer, make_tokenizer

__all__ = [
    "BABISTORIES_BASE_URL",
    "BABISTORIES_PARTS",
    "BABISTORIES_REPO",
    "BABISTORIES_SHA256",
    "BPETokenizer",
    "BabiStoriesSource",
    "CharTokenizer",
    "ChecksumError",
    "DatasetUnavailableError",
    "GPT2Tokenizer",
    "NameSpan",
    "RandomWindows",
    "STORY_SEPARATOR",
    "Story",
    "TokenDataset",
    "Tokenizer",
    "default_data_dir",
    "generate_stories",
    "get_batch",
    "load_token_dataset",
    "load_tokenizer",
    "make_names",
    "make_tokenizer",
    "name_spans",
    "prepare_babistories",
    "prepare_stories",
    "save_token_dataset",
    "story_corpus",
    "write_babistories_like_files",
]
