#!/usr/bin/env python3
"""Generate a realistic, seeded news corpus for benches/bench.sh.

Same (size, seed, sources) -> byte-identical output. The corpus is a tree
OUT/tree/<outlet>/<yyyy-mm-dd>/<nnnnnnn>.txt of small articles, the same articles
concatenated into OUT/all.txt, and one JSON line per article in OUT/big.jsonl
({"id": ..., "text": ...}).

Text is drawn from ../shared/corpora (BBC News articles, Reuters-21578 bodies,
the Dai 2017 news articles) when present, else from fixtures/ (much less
varied). What makes it realistic for a deduplicator:

* new articles recombine real sentences, so most paragraphs are distinct;
* syndicated copies: an earlier article republished by another outlet with
  that outlet's typography (curly quotes, NBSP, CRLF) and boilerplate;
* doubled copies: the body pasted twice into one file;
* boilerplate lines per outlet (bylines, "Advertisement", copyright lines);
* hard-wrapped wire copy with 4-space paragraph indents (Reuters style);
* curly quotes, NBSP, CRLF line endings, a few NFD accents.

With --script cyrillic or --script cjk, every ASCII letter of the text is
replaced one for one by a Cyrillic letter or a CJK ideograph (the same
articles, typography and repeats): a corpus for the throughput of text in
other scripts, where every letter is a character outside ASCII.

Usage: gencorpus.py OUT_DIR [--mb 200] [--seed 1] [--sources DIR] [--script latin|cyrillic|cjk]
"""

import argparse
import csv
import datetime
import json
import os
import random
import re
import sys

OUTLETS = [
    # name, curly quotes, nbsp, crlf, wire (hard-wrapped), boilerplate
    ("daily-courier", True, False, False, False,
     ["Advertisement", "Share this article", "Copyright 2017 Daily Courier. All rights reserved."]),
    ("metro-herald", False, True, True, False,
     ["By Metro Herald staff", "Follow us on Twitter @metroherald for the latest news."]),
    ("globe-wire", False, False, False, True,
     ["Reuters", "(Reporting by staff; editing by the desk)"]),
    ("the-sentinel", True, True, False, False,
     ["Sign up for our morning briefing and get the news in your inbox.", "Advertisement"]),
    ("evening-post", False, False, True, False,
     ["Related stories", "Copyright 2017 Evening Post Ltd. This material may not be redistributed."]),
    ("world-today", True, False, False, False,
     ["Read more", "World Today is not responsible for the content of external sites."]),
    ("capital-news", False, True, False, False, ["Advertisement", "Comments are closed."]),
    ("north-times", True, False, True, False,
     ["North Times newsroom", "Do you have a story for us? Email newsdesk@northtimes.example."]),
]

SENT_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")


def read_sources(src, repo):
    """Returns (paragraphs, wire_paragraphs): lists of plain-ASCII-quote text."""
    paras, wire = [], []
    bbc = os.path.join(src, "bbc-news")
    if os.path.isdir(bbc):
        for root, dirs, files in os.walk(bbc):
            dirs.sort()
            for f in sorted(files):
                if f.endswith(".txt") and f != "README.TXT":
                    text = open(os.path.join(root, f), "rb").read().decode("utf-8", "replace")
                    paras += [p.strip() for p in text.splitlines() if p.strip()]
    reu = os.path.join(src, "reuters21578")
    if os.path.isdir(reu):
        for f in sorted(os.listdir(reu)):
            if f.endswith(".sgm"):
                text = open(os.path.join(reu, f), "rb").read().decode("latin-1")
                for body in re.findall(r"<BODY>(.*?)</BODY>", text, re.S):
                    body = body.replace("&lt;", "<").replace("&amp;", "&").replace("\x03", "").replace("&#3;", "")
                    for p in re.split(r"\n    ", body):
                        p = " ".join(p.split())
                        if len(p) > 40 and not p.endswith("REUTER"):
                            wire.append(p)
    dai = os.path.join(src, "newsarticles-dai2017", "NewsArticles.csv")
    if os.path.isfile(dai):
        csv.field_size_limit(1 << 30)
        with open(dai, encoding="utf-8", errors="replace", newline="") as fh:
            for row in csv.DictReader(fh):
                sents = SENT_RE.split(row.get("text", "").strip())
                for i in range(0, len(sents), 3):
                    p = " ".join(sents[i:i + 3]).strip()
                    if 40 < len(p) < 700:
                        paras.append(p)
    if not paras:
        fx = os.path.join(repo, "fixtures")
        for root, dirs, files in os.walk(fx):
            dirs.sort()
            for f in sorted(files):
                text = open(os.path.join(root, f), "rb").read().decode("utf-8", "replace")
                paras += [" ".join(p.split()) for p in text.splitlines() if p.strip()]
    if not paras:
        sys.exit("gencorpus: no source text found (give --sources DIR)")
    return paras, wire or paras


class Gen:
    def __init__(self, rng, paras, wire):
        self.rng = rng
        self.sentences = [s for p in paras for s in SENT_RE.split(p) if len(s) > 15]
        self.paras = paras
        self.wire = wire

    def fresh_para(self):
        """A new paragraph: one to three real sentences, often a real paragraph."""
        r = self.rng
        if r.random() < 0.3:
            return r.choice(self.paras)
        return " ".join(r.choice(self.sentences) for _ in range(r.randint(1, 3)))

    def article(self, wire):
        r = self.rng
        if wire:
            body = [r.choice(self.wire) for _ in range(r.randint(3, 8))]
        else:
            body = [self.fresh_para() for _ in range(r.randint(4, 10))]
        title = " ".join(r.choice(self.sentences).split()[:8]).rstrip(".,;:")
        return title, body


def typography(text, outlet, rng):
    _, curly, nbsp, _, _, _ = outlet
    if curly:
        text = re.sub(r'"(\S[^"]*?)"', "\u201c\\1\u201d", text)
        text = re.sub(r"(\w)'(\w)", "\\1\u2019\\2", text)
    if nbsp:
        text = text.replace(". ", ".\u00a0 ", 2).replace(" per cent", "\u00a0per cent")
    if rng.random() < 0.02:
        text = text.replace("e", "e\u0301", 1)  # NFD accent (normalises to é)
    return text


def wrap(p, width=64):
    out, line = [], ""
    for w in p.split():
        if line and len(line) + 1 + len(w) > width:
            out.append(line)
            line = w
        else:
            line = f"{line} {w}" if line else w
    out.append(line)
    return "    " + "\n".join(out)


def render(title, body, outlet, rng, doubled):
    name, _, _, crlf, wire, boiler = outlet
    paras = [typography(p, outlet, rng) for p in body]
    if doubled:
        paras = paras + paras
    head = [b for b in boiler[:1] if rng.random() < 0.5]
    tail = [b for b in boiler[1:] if rng.random() < 0.7]
    if wire:
        text = title + "\n\n" + "\n".join(wrap(p) for p in head + paras + tail) + "\n"
    else:
        text = "\n\n".join([title] + head + paras + tail) + "\n"
    if crlf:
        text = text.replace("\n", "\r\n")
    return text


LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
SCRIPTS = {
    "latin": None,
    # The first 26 letters of the Russian alphabet without Yo, lower then upper case.
    "cyrillic": str.maketrans(LETTERS, "".join(map(chr, range(0x430, 0x44A))) + "".join(map(chr, range(0x410, 0x42A)))),
    # Every seventh CJK ideograph from U+4E00.
    "cjk": str.maketrans(LETTERS, "".join(chr(0x4E00 + 7 * i) for i in range(52))),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--mb", type=float, default=200.0, help="approximate corpus size in MB (10^6 bytes)")
    ap.add_argument("--seed", type=int, default=1)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--sources", default=os.path.join(repo, "..", "shared", "corpora"))
    ap.add_argument("--script", choices=sorted(SCRIPTS), default="latin", help="letters of another script (see above)")
    a = ap.parse_args()
    letters = SCRIPTS[a.script]

    rng = random.Random(a.seed)
    paras, wire = read_sources(a.sources, repo)
    gen = Gen(rng, paras, wire)
    target = int(a.mb * 1e6)
    tree = os.path.join(a.out, "tree")
    os.makedirs(tree, exist_ok=True)
    made_dirs = set()
    history = []  # recent (title, body) for syndication
    total, n = 0, 0
    with open(os.path.join(a.out, "all.txt"), "wb") as cat, open(os.path.join(a.out, "big.jsonl"), "wb") as jl:
        while total < target:
            outlet = OUTLETS[rng.randrange(len(OUTLETS))]
            roll = rng.random()
            if history and roll < 0.18:  # syndicated copy of a recent article
                title, body = history[rng.randrange(len(history))]
            else:
                title, body = gen.article(outlet[4])
                history.append((title, body))
                if len(history) > 5000:
                    history.pop(rng.randrange(len(history)))
            text = render(title, body, outlet, rng, doubled=0.18 <= roll < 0.23)
            if letters:
                text = text.translate(letters)
            day = (datetime.date(2016, 1, 1) + datetime.timedelta(days=n // 120)).isoformat()
            rel = os.path.join(outlet[0], day, f"{n:07d}.txt")
            d = os.path.join(tree, outlet[0], day)
            if d not in made_dirs:
                os.makedirs(d, exist_ok=True)
                made_dirs.add(d)
            data = text.encode("utf-8")
            with open(os.path.join(tree, rel), "wb") as fh:
                fh.write(data)
            cat.write(data)
            jl.write(json.dumps({"id": rel, "text": text}, ensure_ascii=False).encode("utf-8") + b"\n")
            total += len(data)
            n += 1
    print(f"gencorpus: {n} articles, {total} bytes, {len(made_dirs)} folders in {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
