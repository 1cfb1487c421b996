# Naive Python port of CLIP's reference SimpleTokenizer (ftfy replaced by the subset ClipTokenizer implements), used to
# make clip-reference-cases.json:  python3 clip_reference.py clip-reference-prompts.json clip-reference-cases.json
# (needs the `regex` module; the vocabulary path below is the shared one).
import gzip, html, json, unicodedata, regex as re, sys
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~")+1))+list(range(ord("¡"), ord("¬")+1))+list(range(ord("®"), ord("ÿ")+1))
    cs = bs[:]; n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b); cs.append(256+n); n += 1
    return dict(zip(bs, [chr(c) for c in cs]))
def get_pairs(word):
    return set(zip(word[:-1], word[1:]))
merges = gzip.open('/work/shared/clip/bpe_simple_vocab_16e6.txt.gz').read().decode('utf-8').split('\n')
merges = [tuple(m.split()) for m in merges[1:49152-256-2+1]]
be = bytes_to_unicode()
vocab = list(be.values()); vocab = vocab + [v+'</w>' for v in vocab]
vocab += [''.join(m) for m in merges] + ['<|startoftext|>', '<|endoftext|>']
enc = dict(zip(vocab, range(len(vocab))))
ranks = dict(zip(merges, range(len(merges))))
cache = {'<|startoftext|>': '<|startoftext|>', '<|endoftext|>': '<|endoftext|>'}
pat = re.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", re.IGNORECASE)
def bpe(token):
    if token in cache: return cache[token]
    word = tuple(token[:-1]) + (token[-1] + '</w>',)
    pairs = get_pairs(word)
    if not pairs: return token + '</w>'
    while True:
        bigram = min(pairs, key=lambda p: ranks.get(p, float('inf')))
        if bigram not in ranks: break
        first, second = bigram; new = []; i = 0
        while i < len(word):
            try:
                j = word.index(first, i); new.extend(word[i:j]); i = j
            except ValueError:
                new.extend(word[i:]); break
            if word[i] == first and i < len(word)-1 and word[i+1] == second:
                new.append(first+second); i += 2
            else:
                new.append(word[i]); i += 1
        word = tuple(new)
        if len(word) == 1: break
        pairs = get_pairs(word)
    w = ' '.join(word); cache[token] = w; return w
LIG = set('\u0132\u0133\u0149\u01c4\u01c5\u01c6\u01c7\u01c8\u01c9\u01ca\u01cb\u01cc\u01f1\u01f2\u01f3\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06')
def fix_text(text):
    # the parts of ftfy.fix_text that matter for prompts: curly quotes, Latin ligatures, full-width forms, NFC
    out = []
    for ch in text:
        c = ord(ch)
        if c in (0x2018, 0x2019, 0x201a, 0x201b): out.append("'")
        elif c in (0x201c, 0x201d, 0x201e, 0x201f): out.append('"')
        elif c == 0x3000: out.append(' ')
        elif ch in LIG or 0xff01 <= c < 0xfff0: out.append(unicodedata.normalize('NFKC', ch))
        else: out.append(ch)
    return unicodedata.normalize('NFC', ''.join(out))
def encode(text):
    text = fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    text = re.sub(r'\s+', ' ', text).strip().lower()
    out = []
    for t in re.findall(pat, text):
        t = ''.join(be[b] for b in t.encode('utf-8'))
        out.extend(enc[p] for p in bpe(t).split(' '))
    return out
def ids77(text):
    t = encode(text)[:75]
    return [49406] + t + [49407] + [49407] * (75 - len(t))
prompts = json.load(open(sys.argv[1]))
json.dump([{"prompt": p, "ids": ids77(p)} for p in prompts], open(sys.argv[2], 'w'), ensure_ascii=False, indent=0)
