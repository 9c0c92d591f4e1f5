"""Benchmark (not a test): posts/s and peak RSS of the sentiment and complaint models on 10,000 real tweets,
the seconds from start to the first post classified, and one post at a time (warm) in milliseconds.

    .venv/bin/python benchmarks/classifier_throughput.py [--model bundled] [--config F] [--data ../shared/data] [--float32]
        [--detect-languages]

By default each post's language is given, as a source that labels its posts gives it (SemEval:
English); `--detect-languages` leaves it to lingua, as for a source that does not, and weighs the
languages' readings by lingua's confidence.

Run it on an otherwise idle machine: other processes on the same cores distort the figure.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

from monitor.config import ConfigError, bundled_config_dir, load_config
from monitor.tsv import read_tsv


def peak_rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def cpu_model() -> str:
    """The processor's name: the figure depends on it (int8 kernels gain most where the CPU has VNNI)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            return next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        return platform.processor()


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", help="bundled, lexicon, or a Hugging Face name or folder; default: --config's, else bundled")
parser.add_argument("--config", type=Path, help="a configuration whose classifiers (model, label map) to measure")
parser.add_argument("--data", type=Path, default=Path("../shared/data"))
parser.add_argument("--posts", type=int, default=10_000)
parser.add_argument("--float32", action="store_true", help="bundled model only: its float32 network, as `eval --float32`")
parser.add_argument("--detect-languages", action="store_true",
                    help="name each post's language with lingua (the configured languages), as for an unlabelled source")
args = parser.parse_args()
try:
    configured = (load_config(args.config) if args.config
                  else load_config(bundled_config_dir() / "example.yaml", environ={})).classifiers
except ConfigError as exc:
    parser.error(f"--config: {'; '.join(exc.problems)}")
args.model = args.model or configured.sentiment_model

texts = [r["text"] for r in read_tsv(args.data / "sentiment" / "semeval_2013_2016_train.tsv", ("text",))][:args.posts]
loading = time.perf_counter()
if args.detect_languages:
    from classifiers.post import PostClassifier

    classifier = PostClassifier(bundled_config_dir(), configured.languages, args.model, configured.sentiment_labels,
                                quantize=not args.float32)
    run = classifier.scores  # no languages given: lingua names them
elif args.model == "bundled":
    from classifiers.bundled import load_bundled
    from classifiers.lexicon import Lexicon

    model = load_bundled(Lexicon(bundled_config_dir() / "lexicons"), quantize=not args.float32)

    def run(batch):  # sentiment and complaint; each post's language as a source gives it (SemEval: English)
        return model.predict_all(batch, ["en"] * len(batch))
else:
    from classifiers.post import PostClassifier

    classifier = PostClassifier(bundled_config_dir(), configured.languages, args.model, configured.sentiment_labels)
    run = classifier.scores
run(texts[:1])
start_s = time.perf_counter() - loading  # what a daemon's first post waits (a cached int8 model: no torch)
start_rss_mb = peak_rss_mb()
run(texts[:64])  # warm up outside the clock
started = time.perf_counter()
run(texts)
seconds = time.perf_counter() - started
one_post_ms = []
for text in texts[:300]:
    began = time.perf_counter()
    run([text])
    one_post_ms.append((time.perf_counter() - began) * 1000)
one_post_ms.sort()
print(json.dumps({"model": args.model, "quantized": args.model == "bundled" and not args.float32,
                  "languages": "detected" if args.detect_languages else "given",
                  "posts": len(texts), "posts_per_s": round(len(texts) / seconds, 1),
                  "peak_rss_mb": peak_rss_mb(),
                  "start_s": round(start_s, 2), "start_peak_rss_mb": start_rss_mb,
                  "one_post_ms": {"median": round(one_post_ms[len(one_post_ms) // 2], 1),
                                  "p95": round(one_post_ms[int(0.95 * len(one_post_ms))], 1)},
                  "cpu": cpu_model()}))
