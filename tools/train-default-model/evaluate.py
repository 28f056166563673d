"""Samples the exported model (weights/) with the PyTorch pipeline (same math as the engine: prompt padded to 512 rows,
Wan's default negative prompt as the unconditional input, UniPC + CFG, known latent frames at timestep 0 for image to
video and extension) and judges what comes out: object colour, background colour, shape and motion.

    /usr/bin/python3 tools/train-default-model/evaluate.py [--seen 48 --steps 20 --guidance 5]
"""
import argparse
import json
import os
import struct
import sys
import zlib

import blas_threads  # noqa: F401  (first: before numpy and torch load OpenBLAS)
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from data import (COLORS, DIRECTIONS, HOLDOUT, MOTIONS, SHAPES, STRAIGHT, WAN_NEGATIVE_PROMPT, caption,  # noqa: E402
                  contrast, draw_single, measure, motion_matches, motion_of, nearest_colour, pair_caption, object_mask,
                  background_of, dominant_colour)
from wan_torch import UMT5Encoder, UniPC, WanTransformer, WanVAE, load_safetensors  # noqa: E402

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
        self.scale = vcfg.get("scale_factor_spatial", 8)
        self.patch = self.dit.patch

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

    def encode(self, clip):
        """clip [3, F, H, W] in [-1, 1] -> normalised latents [1, z, T, h, w] (posterior mean)."""
        with torch.no_grad():
            return (self.vae.encode(torch.from_numpy(clip)[None])[0] - self.mean) / self.std

    def generate(self, prompt, seed, frames=17, height=64, width=64, steps=20, guidance=5.0, known=None):
        """known: a clip [3, K, H, W] in [-1, 1] whose frames start the new clip (an image: K = 1; extension: the
        last frames of a clip, 4k+1 of them). Returns frames [F, H, W, 3] in [0, 1]."""
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(1, self.z, (frames - 1) // 4 + 1, height // self.scale, width // self.scale, generator=g)
        cond, unc = self.embed(prompt), self.embed(WAN_NEGATIVE_PROMPT)
        k_lat = self.encode(known) if known is not None else None
        K = 0 if k_lat is None else k_lat.shape[2]
        pt, ph, pw = self.patch
        per_frame = (x.shape[3] // ph) * (x.shape[4] // pw)
        sch = UniPC(steps, self.sched["flow_shift"])
        with torch.no_grad():
            for t in sch.timesteps.astype(np.float32):
                xin = x.clone()
                tt = torch.full((1, x.shape[2]), float(t))
                if K:
                    xin[:, :, :K] = k_lat
                    tt[:, :K] = 0.0
                tt = tt.repeat_interleave(per_frame, dim=1)
                vc, vu = self.dit(xin, tt, cond), self.dit(xin, tt, unc)
                x = sch.step(vu + guidance * (vc - vu), x)
            if K:
                x[:, :, :K] = k_lat
            video = self.vae.decode(x * self.std + self.mean)
        return ((video[0] / 2 + 0.5).clamp(0, 1)).permute(1, 2, 3, 0).numpy()


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
    got = measure(clip)
    min_move = 0.1 * clip.shape[2]
    return {"prompt": caption(c, s, m, bg), "colour": got["colour"], "background": got["background"],
            "shape": got["shape"], "motion": motion_of(got, min_move),
            "colour_ok": got["colour"] == c, "background_ok": got["background"] == bg, "shape_ok": got["shape"] == s,
            "motion_ok": bool(motion_matches(m, got, min_move))}


def judge_pair(clip, c1, s1, c2, s2, m, bg):
    """Both colours present, the background right, and the horizontal gap growing (apart) or shrinking (together)."""
    b = background_of(clip)
    mask = object_mask(clip, b)
    W = clip.shape[2]
    left = clip[:, :, :W // 2][mask[:, :, :W // 2]]
    right = clip[:, :, W // 2:][mask[:, :, W // 2:]]
    colours = (dominant_colour(left) if len(left) else None, dominant_colour(right) if len(right) else None)
    xx = np.arange(W)

    def spread(f):
        cols = mask[f].any(0)
        return (xx[cols].max() - xx[cols].min()) if cols.any() else 0
    k = max(1, clip.shape[0] // 4)
    grow = np.mean([spread(f) for f in range(-k, 0)]) - np.mean([spread(f) for f in range(k)])
    moving_ok = grow > 0.1 * W if m == "moving apart" else grow < -0.1 * W
    return {"prompt": pair_caption(c1, s1, c2, s2, m, bg), "colours": colours, "gap_change": float(grow),
            "background_ok": nearest_colour(b) == bg, "colours_ok": colours == (c1, c2), "motion_ok": bool(moving_ok)}


def summarise(rows):
    keys = [k for k in rows[0] if k.endswith("_ok")]
    return {"clips": len(rows), **{k[:-3]: round(sum(r[k] for r in rows) / len(rows), 3) for k in keys}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "weights"))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=5.0)
    ap.add_argument("--seen", type=int, default=48, help="random seen combinations")
    ap.add_argument("--held", type=int, default=3, help="backgrounds per held-out combination")
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--conditioned", type=int, default=16, help="image-to-video and extension clips each")
    ap.add_argument("--out", default=os.path.join(HERE, "eval_results.json"))
    ap.add_argument("--png", default=os.path.join(HERE, "work", "eval_png"))
    a = ap.parse_args()
    torch.set_num_threads(2)
    p = Pipeline(a.model)
    rng = np.random.default_rng(123)
    os.makedirs(a.png, exist_ok=True)
    cols = list(COLORS)
    gen = dict(steps=a.steps, guidance=a.guidance)
    results = {"settings": {**gen, "frames": 17, "height": 64, "width": 64, "negative_prompt": "Wan default (Chinese)",
                            "flow_shift": p.sched["flow_shift"]}}

    def other_colour(c, *not_these):
        """A background for c with clear contrast: yellow on orange (0.37 apart) is plain to a viewer, but its
        anti-aliased edge falls under the measurement's 0.35 mask threshold."""
        return str(rng.choice([b for b in cols if b != c and b not in not_these and contrast(b, c) >= 0.5]))

    def single_set(name, combos):
        rows = []
        for k, combo in enumerate(combos):
            clip = p.generate(caption(*combo), seed=1000 + k, **gen)
            rows.append(judge(clip, *combo))
            if k < 8:
                write_png(os.path.join(a.png, f"{name}_{k:02d}.png"), np.concatenate(list(clip), axis=1))
        report(name, rows)

    def report(name, rows):
        results[name] = {"summary": summarise(rows), "clips": rows}
        print(name, json.dumps(results[name]["summary"]), flush=True)

    single_set("must_hold", [("yellow", "square", "up", "black")])
    single_set("held_out", [(c, s, m, other_colour(c)) for c, s, m in HOLDOUT for _ in range(a.held)])
    seen = []
    while len(seen) < a.seen:
        c, s, m = str(rng.choice(cols)), str(rng.choice(SHAPES)), str(rng.choice(MOTIONS))
        if (c, s, m) not in HOLDOUT and not (m == "rotating" and s == "circle"):
            seen.append((c, s, m, other_colour(c)))
    single_set("seen", seen)

    rows = []
    for k in range(a.pairs):
        c1, c2 = rng.choice(cols, 2, replace=False)
        bg = other_colour(c1, c2)
        while contrast(bg, c2) < 0.5:
            bg = other_colour(c1, c2)
        combo = (str(c1), str(rng.choice(SHAPES)), str(c2), str(rng.choice(SHAPES)),
                 ["moving apart", "moving together"][k % 2], str(bg))
        clip = p.generate(pair_caption(*combo), seed=2000 + k, **gen)
        rows.append(judge_pair(clip, *combo))
        if k < 4:
            write_png(os.path.join(a.png, f"pair_{k:02d}.png"), np.concatenate(list(clip), axis=1))
    report("two_objects", rows)

    # Image to video: a drawn first frame and a prompt naming its motion; the clip must keep the picture's colour,
    # shape and background and move the prompted way.
    rows = []
    dirs = list(DIRECTIONS)
    for k in range(a.conditioned):
        c, s, m = str(rng.choice(cols)), str(rng.choice(SHAPES)), dirs[k % len(dirs)]
        bg = other_colour(c)
        image = draw_single(c, s, m, bg, 17, 64, 64, np.random.default_rng(3000 + k))[:, :1]
        clip = p.generate(caption(c, s, m, bg), seed=3000 + k, known=image, **gen)
        rows.append(judge(clip, c, s, m, bg))
        if k < 4:
            write_png(os.path.join(a.png, f"i2v_{k:02d}.png"), np.concatenate(list(clip), axis=1))
    report("image_to_video", rows)

    # Extension: 9 frames of a shape moving one way; the new clip starts from their last 5 (the engine's default)
    # and must start where the clip ended and keep moving that way.
    rows = []
    for k in range(a.conditioned):
        c, s, m = str(rng.choice(cols)), str(rng.choice(SHAPES)), list(STRAIGHT)[k % 4]
        bg = other_colour(c)
        r = np.random.default_rng(4000 + k)
        source = draw_single(c, s, m, bg, 17, 64, 64, r, size="small")[:, :9]
        clip = p.generate(caption(c, s, m, bg), seed=4000 + k, known=source[:, -5:], **gen)
        row = judge(clip[4:], c, s, m, bg)  # judged on the frames after the given ones
        src = (source.transpose(1, 2, 3, 0) + 1) / 2  # the given clip's last frame is the new clip's frame 4
        m_src, m_new = object_mask(src[-1:], background_of(src))[0], object_mask(clip[4:5], background_of(clip))[0]
        row["starts_where_it_ended_ok"] = bool((m_src & m_new).sum() / max((m_src | m_new).sum(), 1) > 0.5)
        rows.append(row)
        if k < 4:
            write_png(os.path.join(a.png, f"extend_{k:02d}.png"), np.concatenate(list(clip), axis=1))
    report("extension", rows)

    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
