"""The BabiStories pipeline on a small self-written file: never the network."""

from __future__ import annotations

import json
import warnings

import pytest

from mosaics_edu.data import (
    BABISTORIES_BASE_URL,
    BABISTORIES_PARTS,
    BabiStoriesSource,
    ChecksumError,
    DatasetUnavailableError,
    prepare_babistories,
    write_babistories_like_files,
)
from mosaics_edu.data.babistories import download_file, read_story_lines, sha256_file


@pytest.fixture()
def small_files(tmp_path):
    paths = write_babistories_like_files(tmp_path / "upstream", n_train=40, n_valid=5, seed=2)
    return paths


def _source(paths, sha=True):
    return BabiStoriesSource(
        urls={p.name: p.as_uri() for p in paths.values()},
        sha256={p.name: sha256_file(p) for p in paths.values()} if sha else {},
        archive=False,
    )


def test_official_source_is_documented():
    assert BABISTORIES_BASE_URL.startswith("https://github.com/facebookresearch/MemoryMosaics")
    assert len(BABISTORIES_PARTS) == 5 and BABISTORIES_PARTS[0].endswith(".7z.001")


def test_line_format(small_files):
    stories = list(read_story_lines(small_files["train"]))
    assert len(stories) == 40 and all(isinstance(s, str) and "\n" in s for s in stories)
    assert len(list(read_story_lines(small_files["train"], max_stories=3))) == 3


def test_prepare_from_file_urls_and_cache(small_files, tmp_path):
    calls = []

    def fetch(url, dest):  # an injected downloader that copies file:// URLs
        calls.append(url)
        dest.write_bytes(open(url.removeprefix("file://"), "rb").read())

    out = tmp_path / "bs"
    ds = prepare_babistories(out, tokenizer="char", source=_source(small_files), fetch=fetch)
    assert len(calls) == 2
    stories = list(read_story_lines(small_files["train"]))
    decoded = ds.tokenizer.decode(ds.train.tolist())
    assert decoded == "".join(s + "\n\n" for s in stories)  # one separator after each story
    assert ds.meta["n_valid"] == len(ds.valid) > 0
    ds2 = prepare_babistories(out, tokenizer="char", source=_source(small_files), fetch=fetch)
    assert len(calls) == 2, "a prepared dataset is reused without downloading again"
    assert ds2.train.tolist() == ds.train.tolist()
    # the default urllib fetcher handles file:// URLs too; BPE tokenizer
    ds3 = prepare_babistories(tmp_path / "bs3", tokenizer="bpe", source=_source(small_files),
                              bpe_vocab_size=300)
    assert ds3.tokenizer.decode(ds3.valid.tolist()).count("\n\n") == 5


def test_checksum_mismatch_refused(small_files, tmp_path):
    src = _source(small_files)
    src.sha256["traindataset.txt"] = "0" * 64
    with pytest.raises(ChecksumError, match="expected 0000"):
        prepare_babistories(tmp_path / "bad", tokenizer="char", source=src)
    assert not (tmp_path / "bad" / "raw" / "traindataset.txt").exists()


def test_unpinned_checksum_recorded_then_enforced(small_files, tmp_path):
    out = tmp_path / "tofu"
    with pytest.warns(UserWarning, match="no pinned SHA-256"):
        prepare_babistories(out, tokenizer="char", source=_source(small_files, sha=False))
    record = json.loads((out / "raw" / "checksums.json").read_text())
    assert record["traindataset.txt"] == sha256_file(small_files["train"])
    (out / "raw" / "traindataset.txt").write_text(json.dumps("tampered") + "\n")
    (out / "meta.json").unlink()  # force a re-preparation from the cached raw file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ChecksumError, match="cached file .* corrupt or was replaced"):
            prepare_babistories(out, tokenizer="char", source=_source(small_files, sha=False))


def test_offline_fails_fast_with_instructions(tmp_path, monkeypatch):
    import urllib.request

    attempts = []
    real_urlopen = urllib.request.urlopen

    def counting_urlopen(url, *args, **kwargs):
        attempts.append(url)
        return real_urlopen(url, *args, **kwargs)

    # "Fast" means one refused connection and no retries or waiting (counted, not timed: a busy
    # machine must not fail this test).
    monkeypatch.setattr(urllib.request, "urlopen", counting_urlopen)
    monkeypatch.setattr("time.sleep", lambda s: pytest.fail(f"the download waited {s} s to retry"))
    src = BabiStoriesSource(urls={"traindataset.txt": "http://127.0.0.1:9/traindataset.txt"},
                            archive=False)
    with pytest.raises(DatasetUnavailableError) as info:
        prepare_babistories(tmp_path / "off", tokenizer="char", source=src)
    assert attempts == ["http://127.0.0.1:9/traindataset.txt"], attempts
    msg = str(info.value)
    for needle in ("offline", "MemoryMosaics", "--data stories", str(tmp_path / "off" / "raw")):
        assert needle in msg
    assert not list((tmp_path / "off" / "raw").glob("*.part"))


def test_download_file_injected_failure(tmp_path):
    def fetch(url, dest):
        raise OSError("network unreachable")

    with pytest.raises(DatasetUnavailableError, match="network unreachable"):
        download_file("https://example.invalid/x", tmp_path / "x", fetch=fetch)


def test_bad_lines_and_arguments(tmp_path):
    bad = tmp_path / "traindataset.txt"
    bad.write_text('"ok"\n{"not": "a string"}\n')
    with pytest.raises(ValueError, match=r"traindataset.txt:2 holds a dict"):
        list(read_story_lines(bad))
    with pytest.raises(ValueError, match="tokenizer must be one of"):
        prepare_babistories(tmp_path, tokenizer="words")
    with pytest.raises(ValueError, match="max_stories"):
        prepare_babistories(tmp_path, max_stories=0)
