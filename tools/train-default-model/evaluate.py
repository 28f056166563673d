"""Samples the exported model (weights/) with the PyTorch pipeline (same math as the engine: prompt padded to 512 rows,
Wan's default negative prompt as the unconditional input, UniPC + CFG) and measures what comes out: the dominant
object colour, the background colour and the object's motion (centroid direction, or area trend for growing/shrinking).

    /usr/bin/python3 tools/train-default-model/evaluate.py [--steps 20 --guidance 5 --per-combo 1]
"""
import argparse
import json
import os
import struct
import sys
import zlib

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from data import COLORS, DIRECTIONS, HOLDOUT, MOTIONS, SHAPES, WAN_NEGATIVE_PROMPT, caption, direction_of, measure  # noqa
from wan_torch import UMT5Encoder, WanTransformer, WanVAE, load_safetensors, sample  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


class Pipeline:
    def __init__(self, model_dir):
        import sentencepiece as spm
        j = lambda *p: json.load(open(os.path.join(model_dir, *p)))  # noqa: E731
        self.sched = j("scheduler", "scheduler_config.json")
        self.dit = self._load(WanTransformer(j("transformer", "config.json")), model_dir, "transformer",
                              "diffusion_pytorch_model.safetensors")
        vcfg = j("vae", "config.json")
        self.vae = self._load(WanVAE(vcfg), model_dir, "vae", "diffusion_pytorch_model.safetensors")
        self.te = self._load(UMT5Encoder(j("text_encoder", "config.json")), model_dir, "text_encoder", "model.safetensors")
        self.sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "tokenizer", "spiece.model"))
        self.mean = torch.tensor(vcfg["latents_mean"]).view(1, -1, 1, 1, 1)
        self.std = torch.tensor(vcfg["latents_std"]).view(1, -1, 1, 1, 1)
        self.z = vcfg["z_dim"]

    @staticmethod
    def _load(m, d, sub, f):
        sd = {k: v.float() for k, v in load_safetensors(os.path.join(d, sub, f)).items()}
        m.load_state_dict(sd)
        return m.eval()

    def embed(self, text):
        ids = self.sp.encode(" ".join(text.split()))[:511] + [1]  # pipeline: cleaned text, </s>, zero rows to 512
        e = torch.zeros(1, 512, self.te.cfg["d_model"])
        with torch.no_grad():
            e[0, :len(ids)] = self.te(torch.tensor([ids]))[0]
        return e

    def generate(self, prompt, seed, frames=9, height=32, width=32, steps=20, guidance=5.0, scheduler="unipc",
                 negative=None):
        g = torch.Generator().manual_seed(seed)
        lat = torch.randn(1, self.z, (frames - 1) // 4 + 1, height // 8, width // 8, generator=g)
        cond = self.embed(prompt)
        unc = self.embed(WAN_NEGATIVE_PROMPT if negative is None else negative)
        x = sample(self.dit, lat, cond, unc, steps, guidance, self.sched["flow_shift"], scheduler)
        with torch.no_grad():
            video = self.vae.decode(x * self.std + self.mean)
        return ((video[0] / 2 + 0.5).clamp(0, 1)).permute(1, 2, 3, 0).numpy()  # [F,H,W,3]


def write_png(path, rgb01):
    img = (np.clip(rgb01, 0, 1) * 255).round().astype(np.uint8)
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(t, d):
        c = struct.pack(">I", len(d)) + t + d
        return c + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def judge(clip, c, s, m, bg):
    obj, bgm, dx, dy, ar = measure(clip)
    min_move = 0.1 * clip.shape[2]
    got = direction_of(dx, dy, ar, min_move)
    if m in DIRECTIONS or m in ("growing", "shrinking"):
        motion_ok = got == m
    else:  # bouncing: the object must end where it started horizontally and move vertically at some point
        motion_ok = abs(dx) < min_move
    return {"prompt": caption(c, s, m, bg), "object": obj, "background": bgm, "motion": got,
            "dx": round(dx, 2), "dy": round(dy, 2), "area_ratio": round(ar, 2),
            "object_ok": obj == c, "background_ok": bgm == bg, "motion_ok": bool(motion_ok)}


def summarise(rows):
    n = len(rows)
    f = lambda k: sum(r[k] for r in rows) / max(n, 1)  # noqa: E731
    dirs = [r for r in rows if r["prompt"].split()[3] == "moving"]
    return {"clips": n, "object_colour_acc": round(f("object_ok"), 3), "background_colour_acc": round(f("background_ok"), 3),
            "motion_acc": round(f("motion_ok"), 3),
            "direction_acc (left/right/up/down only)": round(sum(r["motion_ok"] for r in dirs) / max(len(dirs), 1), 3),
            "direction_clips": len(dirs)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "weights"))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=5.0)
    ap.add_argument("--scheduler", default="unipc")
    ap.add_argument("--seen", type=int, default=40, help="random seen combinations to sample")
    ap.add_argument("--out", default=os.path.join(HERE, "eval_results.json"))
    ap.add_argument("--png", default=os.path.join(HERE, "work", "eval_png"))
    a = ap.parse_args()
    torch.set_num_threads(2)
    p = Pipeline(a.model)
    rng = np.random.default_rng(123)
    os.makedirs(a.png, exist_ok=True)
    cols = list(COLORS)
    held, seen = [], []
    for i, (c, s, m) in enumerate(HOLDOUT):
        for bg in [b for b in cols if b != c][:4]:
            held.append((c, s, m, bg))
    while len(seen) < a.seen:
        c, s, m = cols[rng.integers(6)], SHAPES[rng.integers(3)], MOTIONS[rng.integers(len(MOTIONS))]
        bg = cols[rng.integers(6)]
        if bg != c and (c, s, m) not in HOLDOUT:
            seen.append((c, s, m, bg))
    must = ("yellow", "square", "up", "black")
    results = {"settings": {"steps": a.steps, "guidance": a.guidance, "scheduler": a.scheduler,
                            "frames": 9, "height": 32, "width": 32, "negative_prompt": "Wan default (Chinese)",
                            "flow_shift": p.sched["flow_shift"]}}
    for name, combos in (("must_hold", [must]), ("held_out", held), ("seen", seen)):
        rows = []
        for k, combo in enumerate(combos):
            clip = p.generate(caption(*combo), seed=1000 + k, steps=a.steps, guidance=a.guidance, scheduler=a.scheduler)
            rows.append(judge(clip, *combo))
            if k < 12:
                write_png(os.path.join(a.png, f"{name}_{k:02d}.png"), np.concatenate(list(clip), axis=1))
        results[name] = {"summary": summarise(rows), "clips": rows}
        print(name, json.dumps(results[name]["summary"]), flush=True)
        if name == "must_hold":
            print(json.dumps(rows[0]))
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
