#!/usr/bin/env python3
"""Times diffusers on the two whole-model cases of bench/WanModelBench.cs, on this machine, so the C# figures can
be reported as a ratio against the reference implementation (bench/RESULTS.md).

  vae_decode       AutoencoderKLWan with the Wan2.2 configuration (base_dim 160, decoder_base_dim 256, z_dim 48,
                   is_residual, patch_size 2) decoding latents [1, 48, 3, 16, 16] to 9 frames of 256x256.
  i2v_cfg_step     WanTransformer3DModel shaped like Wan2.1-T2V-1.3B on latents [1, 16, 3, 32, 32] (768 tokens)
                   with per-token timesteps (latent frame 0 at 0, the rest at t) as WanImageToVideoPipeline with
                   expand_timesteps passes them, and classifier-free guidance over a prompt and a negative prompt
                   of 512 text rows each: two forward calls as the pipeline makes them ("2 calls"), and the same
                   work as one batch of 2 ("batch 2"); the faster of the two is the peer figure.

Only diffusers' public model classes are used, built from the configurations below with random weights (torch's
default initialisation from a fixed seed), float32, no_grad, a warm-up run, then the median of --reps runs.

Setup: a Debian 13 chroot (python3-torch 2.6, libopenblas0-pthread, python3-safetensors, python3-numpy,
python3-httpx, python3-requests, python3-filelock, python3-regex, python3-yaml, python3-tqdm, python3-fsspec,
python3-click, python3-typing-extensions, python3-packaging, python3-pil), a diffusers source checkout and a
huggingface_hub source checkout (not packaged by Debian) on PYTHONPATH:
  PYTHONPATH=/tmp/hfhub/src python3 bench/diffusers_peer.py /tmp/diffusers --threads 2
--dump-shapes FILE writes every parameter's name and shape of both models (built on the meta device, instantly)
as JSON, to check that the C# benchmark writes the same tensors.
"""
import argparse, json, os, statistics, sys, time

VAE_CONFIG = dict(
    base_dim=160, decoder_base_dim=256, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
    temperal_downsample=[False, True, True], is_residual=True, in_channels=12, out_channels=12, patch_size=2,
    scale_factor_temporal=4, scale_factor_spatial=16, latents_mean=[0.0] * 48, latents_std=[1.0] * 48)
VAE_LATENTS = (1, 48, 3, 16, 16)

TRANSFORMER_CONFIG = dict(
    patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16, out_channels=16,
    text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
    qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=None, added_kv_proj_dim=None, rope_max_seq_len=1024)
TRANSFORMER_LATENTS = (1, 16, 3, 32, 32)
TEXT_ROWS = 512
TIMESTEP = 937.0
GUIDANCE = 5.0


def cpu_facts():
    flags = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                break
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return model, sorted(f for f in flags if f.startswith("avx") or f in ("fma", "f16c"))


def timed(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs), runs


def vae_case(torch, diffusers, warmup, reps):
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKLWan(**VAE_CONFIG).eval()
    z = torch.randn(*VAE_LATENTS)
    out = vae.decode(z).sample
    assert out.shape == (1, 3, 9, 256, 256) and torch.isfinite(out).all(), out.shape
    yield "vae_decode", "Wan2.2 VAE, z [1,48,3,16,16] -> 9x256x256", timed(lambda: vae.decode(z).sample, warmup, reps)


def transformer_case(torch, diffusers, warmup, reps):
    torch.manual_seed(0)
    model = diffusers.WanTransformer3DModel(**TRANSFORMER_CONFIG).eval()
    x = torch.randn(*TRANSFORMER_LATENTS)
    prompt, negative = torch.randn(1, TEXT_ROWS, 4096), torch.randn(1, TEXT_ROWS, 4096)
    # WanImageToVideoPipeline (expand_timesteps): first_frame_mask[0][0][:, ::2, ::2] * t, flattened.
    mask = torch.ones(TRANSFORMER_LATENTS[2], TRANSFORMER_LATENTS[3] // 2, TRANSFORMER_LATENTS[4] // 2)
    mask[0] = 0
    ts = (mask * TIMESTEP).flatten().unsqueeze(0)

    def two_calls():
        cond = model(hidden_states=x, timestep=ts, encoder_hidden_states=prompt, return_dict=False)[0]
        uncond = model(hidden_states=x, timestep=ts, encoder_hidden_states=negative, return_dict=False)[0]
        return uncond + GUIDANCE * (cond - uncond)

    def batch_two():
        both = model(hidden_states=x.expand(2, -1, -1, -1, -1), timestep=ts.expand(2, -1),
                     encoder_hidden_states=torch.cat([prompt, negative]), return_dict=False)[0]
        cond, uncond = both.chunk(2)
        return uncond + GUIDANCE * (cond - uncond)

    a, b = two_calls(), batch_two()
    assert torch.isfinite(a).all() and (a - b).norm() / a.norm() < 1e-4, "batched and per-prompt CFG differ"
    shape = "1.3B-shaped, 768 tokens, per-token t, CFG"
    yield "i2v_cfg_step", shape + " (2 calls)", timed(two_calls, warmup, reps)
    yield "i2v_cfg_step", shape + " (batch 2)", timed(batch_two, warmup, reps)


def dump_shapes(torch, diffusers, path):
    with torch.device("meta"):
        models = {"vae": diffusers.AutoencoderKLWan(**VAE_CONFIG),
                  "transformer": diffusers.WanTransformer3DModel(**TRANSFORMER_CONFIG)}
    shapes = {k: {n: list(p.shape) for n, p in m.state_dict().items()} for k, m in models.items()}
    with open(path, "w") as f:
        json.dump(shapes, f, indent=0, sort_keys=True)
    print(f"wrote {sum(map(len, shapes.values()))} parameter shapes to {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("diffusers", help="a diffusers source checkout (the folder that holds src/diffusers)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="", help="vae,transformer (default both)")
    ap.add_argument("--json", default="", help="also write the table here")
    ap.add_argument("--dump-shapes", default="", metavar="FILE")
    a = ap.parse_args()
    src = os.path.join(a.diffusers, "src")
    if not os.path.isdir(os.path.join(src, "diffusers")):
        sys.exit(f"diffusers_peer: {a.diffusers}: no src/diffusers in this folder (give a diffusers source checkout)")
    sys.path.insert(0, src)
    import torch
    import diffusers

    if a.dump_shapes:
        dump_shapes(torch, diffusers, a.dump_shapes)
        return
    torch.set_num_threads(a.threads)
    model, flags = cpu_facts()
    print(f"cpu: {model}; flags: {' '.join(flags)}")
    torch.ones(64, 64) @ torch.ones(64, 64)  # loads the BLAS, so the line below can name it
    blas = sorted({os.path.basename(l.split()[-1]) for l in open("/proc/self/maps") if "blas" in l.lower()})
    print(f"torch {torch.__version__}, BLAS {' '.join(blas) or '?'}, oneDNN {torch.backends.mkldnn.is_available()}, "
          f"diffusers {diffusers.__version__}, threads {torch.get_num_threads()}, float32, "
          f"warm-up {a.warmup}, median of {a.reps}", flush=True)
    only = set(filter(None, a.only.split(","))) or {"vae", "transformer"}
    rows = []
    with torch.no_grad():
        for name, case in (("vae", vae_case), ("transformer", transformer_case)):
            if name not in only:
                continue
            for op, shape, (median, runs) in case(torch, diffusers, a.warmup, a.reps):
                rows.append({"op": op, "shape": shape, "median_s": round(median, 3), "runs_s": [round(r, 3) for r in runs]})
                print(f"{op:14} {shape:52} {median:9.3f} s   runs {' '.join(f'{r:.3f}' for r in runs)}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"torch": torch.__version__, "diffusers": diffusers.__version__, "threads": a.threads,
                       "cpu": model, "flags": flags, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
