#!/usr/bin/python3
"""Generates the tokenizer test data in this folder with the sentencepiece library (the reference).

Run once with Debian's python3-sentencepiece (0.1.97):  /usr/bin/python3 tests/Text/data/make_cases.py
Writes:
  trained_bytefallback.model  unigram model trained here: nmt_nfkc, user-defined symbols, byte fallback
  trained_flags.model         unigram model trained here: nfkc_cf, no dummy prefix, spaces kept, whitespace as suffix
  hf_tokenizer/tokenizer.json the fixture's spiece.model written in Hugging Face's Unigram tokenizer.json form
  tokenizer_cases.json        {model name: [[text, ids], ...]}: ids from SentencePieceProcessor.encode
"""
import base64
import glob
import json
import os

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE_MODEL = os.path.join(HERE, "..", "..", "fixtures", "wan-small", "model", "tokenizer", "spiece.model")

TEXTS = [
    "",
    " ",
    "     ",
    "a",
    "A red circle moving left on a black background.",
    "two  spaces, three   spaces,\tand a tab\nand a newline",
    "   leading and trailing   ",
    "\u3000ideographic\u3000space\u3000",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３ ！？",
    "ligatures ﬁ ﬂ ﬃ, fractions ½ ¼, super² sub₂, roman Ⅻ, circled ①",
    "e\u0301 combining acute, precomposed é, Å vs A\u030a",
    "café naïve façade — “quotes” ‘single’ …",
    "日本語のテキスト、中文文本，한국어 텍스트",
    "emoji 🎉🚀 family 👨‍👩‍👧 flags 🇯🇵 skin 👍🏽",
    "Ελληνικά, русский, العربية, עברית, हिन्दी, ไทย",
    "zero\u200bwidth\u200cjoiners\u200d and soft\u00adhyphen",
    "control\u0001chars\u0007and\u007fdel",
    "<unk> </s> <pad> <extra_id_0> Wan2.1 Wan2.1Wan2.1",
    "▁already▁escaped ▁ spaces",
    "!!!??? ... ,,, ###",
    "MiXeD CaSe WORDS and numbers 1234567890 3.14159",
    "Wan2.1 generates video from text",
    "unknown wörds 日本語 emoji 🎉",
    "trailing newline\n",
    "\n\n\t  \n",
    ("A cinematic shot of a golden retriever running across a sunlit meadow, "
     "slow motion, shallow depth of field, warm colors, highly detailed. ") * 40,
]


# Character pools for the seeded random strings: whitespace of several kinds, Latin, accents and combining
# marks, full-width and compatibility forms (NFKC expands them), CJK, Hangul, emoji with ZWJ / skin tones,
# controls and NUL. No surrogates (they are not text).
POOLS = [
    " ", "  ", "\t", "\n", "\r", "\u3000", "\u00a0", "\u2003", "\u200b",
    "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", ".,;:!?'\"()[]{}<>-_/\\@#$%^&*+=~`|",
    "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßœ", "\u0301\u0308\u0327\u030a", "ＡＢＣａｂｃ０１２！？（）　",
    "ﬁﬂﬃ½¼²₂ⅫⅣ①㍻ﷺ™℃№", "日本語中文字漢字ひらがなカタカナｶﾀｶﾅ", "한국어텍스트", "Ελληνικάрусскийالعربيةעבריתहिन्दीไทย",
    "🎉🚀👍🏽👨\u200d👩\u200d👧🇯🇵", "\u0001\u0007\u007f\u0000\u00ad\ufeff", "▁", "Wan2.1", "<extra_id_0>", "</s>",
]


def random_texts(count, seed=1234):
    import random
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 12)):
            pool = rng.choice(POOLS)
            if len(pool) > 1 and rng.random() < 0.7:
                parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 6))))
            else:
                parts.append(pool)
        texts.append("".join(parts))
    return texts


def train_corpus(path):
    with open(path, "w", encoding="utf-8") as out:
        for f in sorted(glob.glob("/usr/share/common-licenses/*")):
            if os.path.isfile(f):
                with open(f, encoding="utf-8", errors="ignore") as inp:
                    out.write(inp.read())
        # A little non-Latin text so the vocabulary has such pieces too.
        for _ in range(30):
            out.write("日本語のテキスト 中文文本 한국어 텍스트 Ελληνικά русский café naïve façade\n")


def train():
    corpus = os.path.join(HERE, "corpus.tmp.txt")
    train_corpus(corpus)
    common = dict(input=corpus, model_type="unigram", vocab_size=1200, character_coverage=0.9995,
                  num_threads=1, seed_sentencepiece_size=100000, shuffle_input_sentence=False,
                  input_sentence_size=0, minloglevel=2)
    spm.SentencePieceTrainer.train(
        model_prefix=os.path.join(HERE, "trained_bytefallback"), normalization_rule_name="nmt_nfkc",
        user_defined_symbols=["<extra_id_0>", "Wan2.1"], byte_fallback=True,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, **common)
    spm.SentencePieceTrainer.train(
        model_prefix=os.path.join(HERE, "trained_flags"), normalization_rule_name="nfkc_cf",
        add_dummy_prefix=False, remove_extra_whitespaces=False, treat_whitespace_as_suffix=True,
        split_by_whitespace=False, **common)
    os.remove(corpus)
    for name in ("trained_bytefallback", "trained_flags"):
        os.remove(os.path.join(HERE, name + ".vocab"))


def read_varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def fields(b):
    i = 0
    while i < len(b):
        key, i = read_varint(b, i)
        f, w = key >> 3, key & 7
        if w == 0:
            v, i = read_varint(b, i)
        elif w == 2:
            n, i = read_varint(b, i)
            v, i = b[i:i + n], i + n
        elif w == 5:
            v, i = b[i:i + 4], i + 4
        elif w == 1:
            v, i = b[i:i + 8], i + 8
        else:
            raise ValueError("wire type %d" % w)
        yield f, v


def charsmap_of(model_path):
    data = open(model_path, "rb").read()
    for f, v in fields(data):
        if f == 3:
            for g, w in fields(v):
                if g == 2:
                    return w
    return b""


def write_tokenizer_json(model_path, out_path):
    """The layout transformers' T5 converter writes (Precompiled + Replace, WhitespaceSplit + Metaspace)."""
    sp = spm.SentencePieceProcessor(model_file=model_path)
    vocab = [[sp.id_to_piece(i), sp.get_score(i)] for i in range(sp.get_piece_size())]
    added = [{"id": i, "content": sp.id_to_piece(i), "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i in range(sp.get_piece_size()) if sp.is_control(i) or sp.is_unknown(i)]
    doc = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Precompiled", "precompiled_charsmap": base64.b64encode(charsmap_of(model_path)).decode()},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "WhitespaceSplit"},
            {"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": True}]},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                           "pair": [], "special_tokens": {"</s>": {"id": "</s>", "ids": [sp.eos_id()], "tokens": ["</s>"]}}},
        "decoder": {"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": True},
        "model": {"type": "Unigram", "unk_id": sp.unk_id(), "vocab": vocab, "byte_fallback": False},
    }
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)


def main():
    train()
    write_tokenizer_json(FIXTURE_MODEL, os.path.join(HERE, "hf_tokenizer", "tokenizer.json"))
    models = {
        "fixture": FIXTURE_MODEL,
        "trained_bytefallback": os.path.join(HERE, "trained_bytefallback.model"),
        "trained_flags": os.path.join(HERE, "trained_flags.model"),
    }
    cases = {}
    for name, path in models.items():
        sp = spm.SentencePieceProcessor(model_file=path)
        cases[name] = [[t, sp.encode(t)] for t in TEXTS + random_texts(300)]
    with open(os.path.join(HERE, "tokenizer_cases.json"), "w", encoding="utf-8") as f:
        # One case per line, so a diff of regenerated data is readable.
        f.write('{"sentencepiece_version": %s, "cases": {\n' % json.dumps(spm.__version__))
        f.write(",\n".join('%s: [\n%s\n]' % (json.dumps(name), ",\n".join(json.dumps(c, ensure_ascii=False) for c in model_cases))
                          for name, model_cases in cases.items()))
        f.write("\n}}\n")


if __name__ == "__main__":
    main()
