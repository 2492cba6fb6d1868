#!/usr/bin/env python3
"""Reuters-21578 SGML -> one text file per story, for measuring (README, "Short repeats").

Usage: reuters2text.py SRC_DIR OUT_DIR   (SRC_DIR holds reut2-000.sgm ... reut2-021.sgm)

Writes OUT_DIR/NNNNN.txt per <REUTERS> element (NEWID zero-padded, so corpus order is NEWID order): the TITLE
line, a blank line, then the BODY as it stands (hard-wrapped, 4-space paragraph indents, " Reuter" sign-off).
Entities &lt; &gt; &amp; are decoded; control-character entities (&#2; ...) removed. Stories with neither a
title nor a body are skipped. The corpus is research data: keep the output out of the repository."""
import os, re, sys
src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
STORY = re.compile(rb'<REUTERS[^>]*NEWID="(\d+)"[^>]*>(.*?)</REUTERS>', re.S)
def field(tag, s):
    m = re.search(rb'<' + tag + rb'>(.*?)</' + tag + rb'>', s, re.S)
    return m.group(1) if m else b''
def clean(b):
    b = re.sub(rb'&#\d+;', b'', b)
    return b.replace(b'&lt;', b'<').replace(b'&gt;', b'>').replace(b'&amp;', b'&')
n = 0
for name in sorted(os.listdir(src)):
    if not name.endswith('.sgm'):
        continue
    data = open(os.path.join(src, name), 'rb').read()
    for m in STORY.finditer(data):
        newid, s = int(m.group(1)), m.group(2)
        title, body = clean(field(b'TITLE', s)).strip(), clean(field(b'BODY', s))
        if not title and not body.strip():
            continue
        text = title + b'\n\n' + body.rstrip() + b'\n' if body.strip() else title + b'\n'
        open(os.path.join(out, '%05d.txt' % newid), 'wb').write(text)
        n += 1
print(n, 'stories', file=sys.stderr)
