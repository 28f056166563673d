"""Proves wan_torch.py reproduces tests/fixtures/wan-small (diffusers/transformers reference outputs).

Usage: /usr/bin/python3 tools/train-default-model/check_against_fixtures.py   (exit code 1 on any failure)
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wan_torch import (UMT5Encoder, WanTransformer, WanVAE, euler_sigmas, load_safetensors, sample,  # noqa: E402
                       unipc_sigmas)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FX = os.path.join(ROOT, "tests", "fixtures", "wan-small")
failures = []


def rel(out, ref):
    out, ref = out.double(), ref.double()
    if torch.isnan(out).any():
        return float("nan")
    return float((out - ref).norm() / ref.norm())


def check(name, out, ref, tol):
    e = rel(out, ref)
    ok = e < tol
    print(f"{'ok  ' if ok else 'FAIL'} {name}: rel err {e:.3e} (tol {tol:g})")
    if not ok:
        failures.append(name)


def load_module(cls, sub, weights):
    cfg = json.load(open(os.path.join(FX, "model", sub, "config.json")))
    m = cls(cfg)
    sd = load_safetensors(os.path.join(FX, "model", sub, weights))
    missing, unexpected = m.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise SystemExit(f"{sub}: name mismatch: missing {missing} unexpected {unexpected}")
    return m.eval(), cfg


def main():
    torch.set_num_threads(2)
    tr, _ = load_module(WanTransformer, "transformer", "diffusion_pytorch_model.safetensors")
    vae, vcfg = load_module(WanVAE, "vae", "diffusion_pytorch_model.safetensors")
    te, _ = load_module(UMT5Encoder, "text_encoder", "model.safetensors")
    with torch.no_grad():
        c = load_safetensors(os.path.join(FX, "transformer_case.safetensors"))
        check("transformer", tr(c["hidden_states"], c["timestep"], c["encoder_hidden_states"]), c["expected"], 1e-4)

        c = load_safetensors(os.path.join(FX, "vae_decode_case.safetensors"))
        check("vae decode", vae.decode(c["latents"]), c["expected"], 1e-4)
        c = load_safetensors(os.path.join(FX, "vae_encode_case.safetensors"))
        mean, logvar = vae.encode(c["video"])
        check("vae encode mean", mean, c["expected_mean"], 1e-4)
        check("vae encode logvar", logvar, c["expected_logvar"], 1e-4)

        c = load_safetensors(os.path.join(FX, "text_encoder_case.safetensors"))
        out = te(c["input_ids"], c["attention_mask"])
        m = c["attention_mask"].bool()
        check("umt5 encoder (masked rows)", out[m], c["expected"][m], 1e-4)
        # running only the real tokens must give the same rows (what the engine does)
        n0 = int(m[0].sum())
        check("umt5 encoder (unpadded row 0)", te(c["input_ids"][:1, :n0])[0], c["expected"][0, :n0], 1e-4)

        c = load_safetensors(os.path.join(FX, "scheduler_case.safetensors"))
        for n in (4, 10, 50):
            s, t = unipc_sigmas(n, 3.0)
            check(f"unipc sigmas {n}", torch.from_numpy(s), c[f"sigmas_{n}"], 1e-6)
            if not np.array_equal(t.astype(np.float32), c[f"timesteps_{n}"].numpy()):
                print(f"FAIL unipc timesteps {n}")
                failures.append(f"timesteps {n}")
        s, t = euler_sigmas(10, 3.0)
        check("euler sigmas 10", torch.from_numpy(s), c["euler_sigmas_10"], 1e-6)
        check("euler timesteps 10", torch.from_numpy(t), c["euler_timesteps_10"], 1e-6)

        case = json.load(open(os.path.join(FX, "case.json")))
        mean_t = torch.tensor(vcfg["latents_mean"]).view(1, -1, 1, 1, 1)
        std_t = torch.tensor(vcfg["latents_std"]).view(1, -1, 1, 1, 1)
        for fname in ("pipeline_case", "prompt_case"):
            c = load_safetensors(os.path.join(FX, fname + ".safetensors"))
            if fname == "prompt_case":
                neg = c["prompt_embeds"] * 0  # built below from negative_ids
                ids = c["negative_ids"][None]
                e = te(ids)
                neg[:, :ids.shape[1]] = e
                negative = neg
                pids = c["prompt_ids"][None]
                pe = torch.zeros_like(c["prompt_embeds"])
                pe[:, :pids.shape[1]] = te(pids)
                check("prompt_case prompt_embeds from ids", pe, c["prompt_embeds"], 1e-4)
                prompt = pe
            else:
                prompt, negative = c["prompt_embeds"], c["negative_prompt_embeds"]
            lat = sample(tr, c["latents"], prompt, negative, case["steps"], case["guidance_scale"], 3.0)
            check(f"{fname} latents (4 UniPC steps, CFG 5)", lat, c["expected_latents"], 1e-3)
            video = vae.decode(lat * std_t + mean_t)
            video = (video / 2 + 0.5).clamp(0, 1).permute(0, 2, 1, 3, 4)
            check(f"{fname} video", video, c["expected_video"], 1e-3)
    print("ALL OK" if not failures else f"FAILED: {failures}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
