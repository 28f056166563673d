"""Adds whole-word pieces to a trained SentencePiece unigram model (the unigram trainer cannot find them on a
corpus this small; without them every caption word splits into letters). Edits the ModelProto wire format
directly (no protobuf package here): field 1 = repeated SentencePiece {1: piece, 2: score (float), 3: type}."""
import struct


def _varint(b, i):
    v = s = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return v, i


def _enc_varint(v):
    out = bytearray()
    while True:
        c = v & 0x7F
        v >>= 7
        out.append(c | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _fields(b):
    i = 0
    while i < len(b):
        start = i
        tag, i = _varint(b, i)
        wt = tag & 7
        if wt == 0:
            _, i = _varint(b, i)
        elif wt == 2:
            n, i = _varint(b, i)
            i += n
        elif wt == 5:
            i += 4
        elif wt == 1:
            i += 8
        else:
            raise ValueError("unsupported wire type")
        yield tag >> 3, wt, b[start:i]


def _piece(text, score, typ=1):
    p = text.encode()
    body = b"\x0a" + _enc_varint(len(p)) + p + b"\x15" + struct.pack("<f", score) + b"\x18" + _enc_varint(typ)
    return b"\x0a" + _enc_varint(len(body)) + body


def piece_texts(model_bytes):
    out = []
    for f, wt, raw in _fields(model_bytes):
        if f == 1:
            _, j = _varint(raw, 0)
            n, j = _varint(raw, j)
            body = raw[j:j + n]
            for g, _, r in _fields(body):
                if g == 1:
                    _, k = _varint(r, 0)
                    m, k = _varint(r, k)
                    out.append(r[k:k + m].decode())
    return out


def add_word_pieces(src, dst, words, score=-0.5):
    b = open(src, "rb").read()
    have = set(piece_texts(b))
    pieces, rest = bytearray(), bytearray()
    for f, wt, raw in _fields(b):
        (pieces if f == 1 else rest).extend(raw)
    for w in words:
        if "\u2581" + w not in have:
            pieces.extend(_piece("\u2581" + w, score))
    with open(dst, "wb") as f:
        f.write(bytes(pieces) + bytes(rest))
