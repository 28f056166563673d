"""The ceiling the model can score: drawn clips put through the VAE (encode, decode) and judged like evaluate.py.

    /usr/bin/python3 tools/train-default-model/vae_check.py [--vae work/vae.pt | --model weights] [--clips 48]
"""
import argparse
import json
import os
import sys

import blas_threads  # noqa: F401  (first: before numpy and torch load OpenBLAS)
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from data import COLORS, MOTIONS, SHAPES, draw_single, measure, motion_matches  # noqa: E402
from wan_torch import WanVAE, load_safetensors  # noqa: E402


def load(a):
    if a.model:
        cfg = json.load(open(os.path.join(a.model, "vae", "config.json")))
        vae = WanVAE(cfg)
        vae.load_state_dict(load_safetensors(os.path.join(a.model, "vae", "diffusion_pytorch_model.safetensors")))
        return vae.eval()
    import train
    vae = WanVAE(train.VAE_CFG)
    vae.load_state_dict(torch.load(a.vae)["vae"])
    return vae.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vae", default=os.path.join(HERE, "work", "vae.pt"))
    ap.add_argument("--model", default=None, help="a model folder (its vae/) instead of a training checkpoint")
    ap.add_argument("--clips", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    vae = load(a)
    rng = np.random.default_rng(77)
    cols = list(COLORS)
    tally = {k: 0 for k in ("colour", "background", "shape", "motion")}
    by_shape = {s: [0, 0] for s in SHAPES}
    misses = []
    for k in range(a.clips):
        c, bg = rng.choice(cols, 2, replace=False)
        s, m = SHAPES[k % 4], str(rng.choice(MOTIONS))
        if m == "rotating" and s == "circle":
            m = "left"
        x = draw_single(str(c), s, m, str(bg), 17, 64, 64, rng)
        with torch.no_grad():
            y = vae.decode(vae.encode(torch.from_numpy(x)[None])[0])[0]
        clip = ((y / 2 + 0.5).clamp(0, 1)).permute(1, 2, 3, 0).numpy()
        got = measure(clip)
        ok = {"colour": got["colour"] == c, "background": got["background"] == bg, "shape": got["shape"] == s,
              "motion": bool(motion_matches(m, got, 6.4))}
        for key in tally:
            tally[key] += ok[key]
        by_shape[s][0] += ok["shape"]
        by_shape[s][1] += 1
        if not all(ok.values()):
            misses.append(f"{c} {s} {m} on {bg}: got {got['colour']} {got['shape']} on {got['background']}")
    print(json.dumps({k: round(v / a.clips, 3) for k, v in tally.items()}),
          "shape by kind", {s: f"{v[0]}/{v[1]}" for s, v in by_shape.items()})
    for line in misses[:12]:
        print("  miss:", line)


if __name__ == "__main__":
    main()
