"""`strata classifier train`: the command that trains a quality classifier (strata.pipeline.classifier)."""

from __future__ import annotations

import argparse
from pathlib import Path

from strata.pipeline.classifier import TrainSettings, train_classifier


def _classifier_train(args: argparse.Namespace) -> None:
    settings = TrainSettings(
        epochs=args.epochs,
        lr=args.lr,
        dim=args.dim,
        word_ngrams=args.word_ngrams,
        buckets=args.buckets,
        seed=args.seed,
        threads=args.threads,
    )
    report = train_classifier(
        Path(args.positive), Path(args.negative), Path(args.out), settings, args.text_key
    )
    print(
        f"trained on {report.positive} positive and {report.negative} negative documents "
        f"(precision@1 on them {report.train_precision:.3f}): {report.out}"
    )


def add_classifier_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = TrainSettings()
    p = sub.add_parser("classifier", help="quality classifiers for the pipeline's classifier stage")
    actions = p.add_subparsers(dest="action", required=True)
    p = actions.add_parser("train", help="train a fastText classifier (the DCLM recipe) from two JSONL sets")
    p.add_argument("--positive", required=True, help="JSONL of high-quality documents (__label__hq)")
    p.add_argument("--negative", required=True, help="JSONL of other documents (__label__cc)")
    p.add_argument("--out", required=True, help="the model file to write (.bin)")
    p.add_argument("--text-key", default="text", help="field holding each document's text")
    p.add_argument("--epochs", type=int, default=defaults.epochs, help="passes over the data")
    p.add_argument("--lr", type=float, default=defaults.lr, help="learning rate")
    p.add_argument("--dim", type=int, default=defaults.dim, help="size of the word vectors")
    p.add_argument(
        "--word-ngrams", type=int, default=defaults.word_ngrams, help="longest word n-gram feature"
    )
    p.add_argument(
        "--buckets", type=int, default=defaults.buckets, help="hash buckets for n-grams (the model's size)"
    )
    p.add_argument("--seed", type=int, default=defaults.seed, help="shuffle and initialization seed")
    p.add_argument("--threads", type=int, default=defaults.threads, help="training threads")
    p.set_defaults(func=_classifier_train)
