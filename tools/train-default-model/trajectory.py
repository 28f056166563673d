"""Follows one sampled trajectory of an exported model: at each Euler step the clean-latent prediction
x0 = x_t - sigma * v, its spread against the training latents', and a strip of decoded frames (rows: x0 every five
steps, then the sample; columns: frames 0, 4, 8, 12, 16). With --from-clip, starts from a training clip noised to
--sigma instead of from noise (SDEdit), which shows whether the low-noise steps alone keep a clip.

    /usr/bin/python3 tools/train-default-model/trajectory.py --model work/model --clip 0 --out work/traj.png
"""
import argparse
import os
import sys

import blas_threads  # noqa: F401  (first: before numpy and torch load OpenBLAS)
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from data import measure  # noqa: E402
from evaluate import Pipeline, write_png  # noqa: E402
from wan_torch import euler_sigmas  # noqa: E402


def decode(p, x):
    with torch.no_grad():
        v = p.vae.decode(x * p.std + p.mean)
    return ((v[0] / 2 + 0.5).clamp(0, 1)).permute(1, 2, 3, 0).numpy()


def strip(clips):
    return np.concatenate([np.concatenate([c[i] for i in range(0, c.shape[0], 4)], axis=1) for c in clips], axis=0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(HERE, "work", "model"))
    ap.add_argument("--latents", default=os.path.join(HERE, "work", "latents.pt"))
    ap.add_argument("--clip", type=int, default=0, help="training clip whose caption (and, with --from-clip, latents)")
    ap.add_argument("--from-clip", action="store_true")
    ap.add_argument("--sigma", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--guidance", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(HERE, "work", "trajectory.png"))
    a = ap.parse_args()
    p = Pipeline(a.model)
    d = torch.load(a.latents)
    clip = ((d["latents"][a.clip:a.clip + 1] - d["mean"].view(1, -1, 1, 1, 1)) / d["std"].view(1, -1, 1, 1, 1))
    prompt = d["captions"][a.clip]
    sig, ts = euler_sigmas(a.steps, p.sched["flow_shift"])
    noise = torch.randn(clip.shape, generator=torch.Generator().manual_seed(a.seed))
    first = int(np.argmin(np.abs(sig[:-1] - a.sigma))) if a.from_clip else 0
    x = (1 - sig[first]) * clip + sig[first] * noise if a.from_clip else noise
    cond, unc = p.embed(prompt), p.embed("")
    per_frame = (x.shape[3] // p.patch[1]) * (x.shape[4] // p.patch[2])
    print(f"{prompt!r}: training latents std {clip.std().item():.3f}, per frame "
          f"{d['latents'][:200].sub(d['mean'].view(1, -1, 1, 1, 1)).div(d['std'].view(1, -1, 1, 1, 1)).std(dim=(0, 1, 3, 4)).numpy().round(2)}")
    rows = []
    with torch.no_grad():
        for i in range(first, a.steps):
            t = torch.full((1, x.shape[2] * per_frame), float(ts[i]))
            v = p.dit(x, t, cond)
            if a.guidance != 1:
                vu = p.dit(x, t, unc)
                v = vu + a.guidance * (v - vu)
            x0 = x - float(sig[i]) * v
            print(f"  sigma {sig[i]:.3f}: x0 mean {x0.mean().item():+.3f} std {x0.std().item():.3f}, "
                  f"per frame {x0.std(dim=(0, 1, 3, 4)).numpy().round(2)}, mse to the clip {(x0 - clip).pow(2).mean().item():.3f}")
            if (i - first) % 5 == 0:
                rows.append(decode(p, x0))
            x = x + float(sig[i + 1] - sig[i]) * v
    rows.append(decode(p, x))
    got = measure(rows[-1])
    print("  sample:", {k: got[k] for k in ("colour", "background", "shape")})
    write_png(a.out, strip(rows))


if __name__ == "__main__":
    main()
