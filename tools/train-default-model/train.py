"""Trains the shipped default model (weights/) from scratch on synthetic clips. Deterministic seeds.

    /usr/bin/python3 tools/train-default-model/train.py            # all stages
    /usr/bin/python3 tools/train-default-model/train.py --stage dit --dit-minutes 5   # resume one stage

Stages: tokenizer -> vae -> latents -> dit -> export. Work files go to tools/train-default-model/work/ (ignored).
"""
import argparse
import json
import math
import os
import shutil
import sys
import time

import blas_threads  # noqa: F401  (first: before numpy and torch load OpenBLAS)
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from data import WAN_NEGATIVE_PROMPT, caption_corpus, caption_vocabulary, sample_batch  # noqa: E402
from spm_words import add_word_pieces  # noqa: E402
from wan_torch import UMT5Encoder, WanTransformer, WanVAE, load_safetensors, save_safetensors  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
WORK = os.path.join(HERE, "work")
OUT = os.path.join(ROOT, "weights")

FRAMES, H, W = 17, 64, 64
T_LAT = 1 + (FRAMES - 1) // 4
# Share of training samples with K = 0, 1, 2, 3 known latent frames: text only, image to video (the first frame),
# extension of the default 5 frames, extension of 9 frames.
KNOWN_SHARE = [0.55, 0.25, 0.1, 0.1]
TEXT_LEN = 512  # the pipeline pads prompt embeddings to 512 rows (zeros after the real tokens)
FLOW_SHIFT = 3.0

VAE_CFG = {
    "_class_name": "AutoencoderKLWan", "_diffusers_version": "0.40.0.dev0", "attn_scales": [], "base_dim": 16,
    "decoder_base_dim": None, "dim_mult": [1, 2, 4, 4], "dropout": 0.0, "in_channels": 3, "is_residual": False,
    "latents_mean": [0.0] * 16, "latents_std": [1.0] * 16, "num_res_blocks": 1, "out_channels": 3,
    "patch_size": None, "scale_factor_spatial": 8, "scale_factor_temporal": 4,
    "temperal_downsample": [False, True, True], "z_dim": 16,
}
TE_CFG = {
    "architectures": ["UMT5EncoderModel"], "model_type": "umt5", "d_model": 32, "d_kv": 16, "d_ff": 64,
    "num_heads": 2, "num_layers": 2, "num_decoder_layers": 2, "vocab_size": 128,
    "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
    "feed_forward_proj": "gated-gelu", "dense_act_fn": "gelu_new", "is_gated_act": True,
    "layer_norm_epsilon": 1e-06, "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0,
    "tie_word_embeddings": False, "scalable_attention": True, "torch_dtype": "float32",
    "tokenizer_class": "T5Tokenizer",
}
DIT_CFG = {
    "_class_name": "WanTransformer3DModel", "_diffusers_version": "0.40.0.dev0", "added_kv_proj_dim": None,
    "attention_head_dim": 64, "cross_attn_norm": True, "eps": 1e-06, "ffn_dim": 512, "freq_dim": 64,
    "image_dim": None, "in_channels": 16, "num_attention_heads": 2, "num_layers": 4, "out_channels": 16,
    "patch_size": [1, 2, 2], "pos_embed_seq_len": None, "qk_norm": "rms_norm_across_heads",
    "rope_max_seq_len": 1024, "text_dim": 32,
}
# Each token outputs in_channels x 2 x 2 = 48 values from the 128-wide state. Patch [1,4,4] (192 values) could not
# work: its prediction had rank at most 128 while the target, noise - x0, is full-rank (README.md, the first
# 2026-12-02 run).
_S = VAE_CFG["scale_factor_spatial"]
TOKENS_PER_FRAME = (H // _S // DIT_CFG["patch_size"][1]) * (W // _S // DIT_CFG["patch_size"][2])


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def cosine_lr(progress, start, end, warmup=0.02):
    """Linear warm-up over the first `warmup` of the run, then cosine from start to end (progress in [0, 1])."""
    if progress < warmup:
        return start * max(progress / warmup, 0.01)
    p = min(1.0, (progress - warmup) / (1 - warmup))
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * p))


# ---------------------------------------------------------------- tokenizer
def stage_tokenizer():
    import sentencepiece as spm
    os.makedirs(WORK, exist_ok=True)
    corpus = os.path.join(WORK, "captions.txt")
    with open(corpus, "w") as f:
        for line in caption_corpus():
            f.write(line + "\n")
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=os.path.join(WORK, "spiece_base"), model_type="unigram", vocab_size=60,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, character_coverage=1.0,
        normalization_rule_name="nmt_nfkc_cf", num_threads=1, minloglevel=2)
    add_word_pieces(os.path.join(WORK, "spiece_base.model"), os.path.join(WORK, "spiece.model"), caption_vocabulary())
    sp = spm.SentencePieceProcessor(model_file=os.path.join(WORK, "spiece.model"))
    assert sp.get_piece_size() <= TE_CFG["vocab_size"]
    log("tokenizer: vocab", sp.get_piece_size(), sp.encode("a yellow square moving up on a black background",
                                                            out_type=str))


def tokenizer():
    import sentencepiece as spm
    return spm.SentencePieceProcessor(model_file=os.path.join(WORK, "spiece.model"))


def ids_for_model(sp, text):
    return sp.encode(text)[:TEXT_LEN - 1] + [1]


# ---------------------------------------------------------------- VAE
# A VAE step draws one plan entry (frames, crop side, batch), in turn: single 64x64 frames train the image path
# (latent frame 0, which image to video encodes alone) and the mid-block attention at full size; windows of 5, 9 and
# 17 frames cropped to 32x32 around the object train the temporal path at a quarter of the cost of whole frames.
# "short" was the first plan; without whole-length windows, later latent frames drifted in colour.
VAE_PLANS = {"short": [(1, 64, 6), (5, 32, 8), (9, 32, 4), (5, 32, 8), (9, 32, 4)],
             "full": [(1, 64, 6), (5, 32, 8), (17, 32, 2), (9, 32, 4), (17, 32, 2)],
             "decoder": [(1, 64, 6), (17, 32, 2), (9, 32, 4), (17, 32, 2), (17, 64, 1)]}


def vae_batch(rng, frames, side, batch):
    """Clips [batch, 3, frames, side, side] in [-1, 1] (a window of a whole 17-frame clip, cropped around the
    object) and the loss weight per pixel (object pixels count 9x: the small object matters most)."""
    clips, _ = sample_batch(rng, batch, FRAMES, H, W, holdout=False)
    out = np.empty((batch, 3, frames, side, side), np.float32)
    for i, c in enumerate(clips):
        f0 = rng.integers(0, FRAMES - frames + 1)
        c = c[:, f0:f0 + frames]
        if side < H:
            fg = np.abs(c - c[:, :, :1, :1]).sum(0).max(0) > 0.2
            ys, xs = np.nonzero(fg)
            cy, cx = (ys.mean(), xs.mean()) if len(ys) else (H / 2, W / 2)
            y0 = int(np.clip(cy - side / 2 + rng.integers(-6, 7), 0, H - side))
            x0 = int(np.clip(cx - side / 2 + rng.integers(-6, 7), 0, W - side))
            c = c[:, :, y0:y0 + side, x0:x0 + side]
        out[i] = c
    x = torch.from_numpy(out)
    wgt = 1.0 + 8.0 * ((x - x[:, :, :, :1, :1]).abs().sum(1, keepdim=True) > 0.2).float()
    return x, wgt


def vae_loss(y, x, wgt):
    """Weighted squared plus absolute error: the absolute term keeps edges crisp once the squared one is small."""
    d = y - x
    return (wgt * (d * d + 0.5 * d.abs())).mean()


def stage_vae(minutes, lr, stop_step=None, plan="full"):
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    vae = WanVAE(VAE_CFG)
    with torch.no_grad():  # start with a narrow posterior: at logvar 0 the sampling noise would drown the signal
        vae.quant_conv.bias[vae.z:] = -6.0
    ck = os.path.join(WORK, "vae.pt")
    step = 0
    if os.path.exists(ck):
        s = torch.load(ck)
        vae.load_state_dict(s["vae"])
        step = s["step"]
        rng = np.random.default_rng(1000 + step)
        log("vae: resumed at step", step)
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    entries = VAE_PLANS[plan]
    t0, last_save, first = time.time(), time.time(), step
    while time.time() - t0 < minutes * 60 and step != stop_step:
        x, wgt = vae_batch(rng, *entries[step % len(entries)])
        mean, logvar = vae.encode(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        y = vae.decode(z, clamp=False)
        rec = vae_loss(y, x, wgt)
        kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).mean()
        loss = rec + 1e-4 * kl
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 0.5)  # RMS norms over few channels spike without it
        for g in opt.param_groups:
            g["lr"] = cosine_lr((time.time() - t0) / (minutes * 60), lr, 3e-5)
        opt.step()
        step += 1
        if step % 30 == 0:
            log(f"vae step {step} rec {rec.item():.4f} kl {kl.item():.2f}")
        if time.time() - last_save > 120:
            torch.save({"vae": vae.state_dict(), "step": step}, ck)
            last_save = time.time()
    torch.save({"vae": vae.state_dict(), "step": step}, ck)
    log(f"vae: {step - first} steps in {(time.time() - t0) / 60:.1f} min")


def stage_decoder(minutes, lr):
    """Decoder-only fine-tuning with the encoder frozen: runs beside the DiT training (the DiT learns the frozen
    encoder's latents, which this stage does not change)."""
    torch.manual_seed(5)
    vae = WanVAE(VAE_CFG)
    ck = os.path.join(WORK, "vae_dec.pt")
    s = torch.load(ck if os.path.exists(ck) else os.path.join(WORK, "vae.pt"))
    vae.load_state_dict(s["vae"])
    step = s.get("decoder_step", 0)
    rng = np.random.default_rng(5000 + step)
    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    entries = VAE_PLANS["decoder"]
    t0, last_save, first = time.time(), time.time(), step
    while time.time() - t0 < minutes * 60:
        x, wgt = vae_batch(rng, *entries[step % len(entries)])
        with torch.no_grad():
            mean, _ = vae.encode(x)
        rec = vae_loss(vae.decode(mean, clamp=False), x, wgt)
        opt.zero_grad()
        rec.backward()
        torch.nn.utils.clip_grad_norm_(params, 0.5)
        for g in opt.param_groups:
            g["lr"] = cosine_lr((time.time() - t0) / (minutes * 60), lr, 2e-5)
        opt.step()
        step += 1
        if step % 30 == 0:
            log(f"decoder step {step} rec {rec.item():.4f}")
        if time.time() - last_save > 120:
            torch.save({"vae": vae.state_dict(), "decoder_step": step}, ck)
            last_save = time.time()
    torch.save({"vae": vae.state_dict(), "decoder_step": step}, ck)
    log(f"decoder: {step - first} steps in {(time.time() - t0) / 60:.1f} min")


def load_vae(final=False):
    """final: the decoder-fine-tuned weights when that stage ran (its encoder is unchanged)."""
    vae = WanVAE(VAE_CFG)
    ck = os.path.join(WORK, "vae_dec.pt")
    vae.load_state_dict(torch.load(ck if final and os.path.exists(ck) else os.path.join(WORK, "vae.pt"))["vae"])
    return vae.eval()


# ---------------------------------------------------------------- dataset latents
def stage_latents(n):
    """Encodes n training clips (held-out combinations left out) to latents (posterior means); continues a
    partial file, so it can run in pieces."""
    path = os.path.join(WORK, "latents.pt")
    vae = load_vae()
    lat, caps = [], []
    if os.path.exists(path):
        d = torch.load(path)
        lat, caps = [d["latents"]], d["captions"]
    done = len(caps)
    rng = np.random.default_rng(2 + done)
    t0 = time.time()
    with torch.no_grad():
        for i in range(done, n, 16):
            x, c = sample_batch(rng, min(16, n - i), FRAMES, H, W, holdout=True)
            lat.append(vae.encode(torch.from_numpy(x))[0])
            caps += c
            if (i // 16) % 20 == 0:
                log(f"latents {i}/{n}")
    lat = torch.cat(lat)
    mean = lat.mean(dim=(0, 2, 3, 4))
    std = lat.std(dim=(0, 2, 3, 4))
    torch.save({"latents": lat, "captions": caps, "mean": mean, "std": std}, path)
    log(f"latents: {lat.shape} in {time.time() - t0:.0f}s; mean {mean.numpy().round(3)} std {std.numpy().round(3)}")


# ---------------------------------------------------------------- DiT (+ text encoder, trained jointly)
def encode_texts(te, sp, texts):
    """Real-token rows per text, de-duplicated padding: returns ctx [B, Lmax+1, d] and key_bias [B, Lmax+1].
    Rows n..511 of the pipeline's [512, d] are all zero, so they collapse into one zero row whose attention weight
    counts (512 - n) times: key_bias = log(512 - n) there, -inf for unused rows. Same math as 512 rows."""
    ids = [ids_for_model(sp, t) for t in texts]
    L = max(len(i) for i in ids)
    B = len(ids)
    tok = torch.zeros(B, L, dtype=torch.long)
    mask = torch.zeros(B, L)
    for b, i in enumerate(ids):
        tok[b, :len(i)] = torch.tensor(i)
        mask[b, :len(i)] = 1
    out = te(tok, mask) * mask[..., None]
    ctx = torch.cat([out, torch.zeros(B, 1, out.shape[-1])], dim=1)
    bias = torch.full((B, L + 1), float("-inf"))
    for b, i in enumerate(ids):
        n = len(i)
        bias[b, :n] = 0.0
        bias[b, n] = math.log(TEXT_LEN - n)  # rows n..L-1 stay -inf: they stand for nothing
    return ctx, bias


def pad512(te, sp, text):
    ids = ids_for_model(sp, text)
    e = torch.zeros(1, TEXT_LEN, TE_CFG["d_model"])
    with torch.no_grad():
        e[0, :len(ids)] = te(torch.tensor([ids]))[0]
    return e


def new_text_encoder():
    torch.manual_seed(3)
    te = UMT5Encoder(TE_CFG)
    with torch.no_grad():
        for n, p in te.named_parameters():
            if n.endswith("layer_norm.weight"):
                p.fill_(1.0)
            elif "relative_attention_bias" in n:
                p.normal_(0, 1.0)
            elif n == "shared.weight":
                p.normal_(0, 1.0)
            else:
                p.normal_(0, p.shape[-1] ** -0.5)
    return te


def stage_dit(minutes, batch, peak_lr):
    torch.manual_seed(4)
    rng = np.random.default_rng(4)
    sp = tokenizer()
    d = torch.load(os.path.join(WORK, "latents.pt"))
    lat = (d["latents"] - d["mean"].view(1, -1, 1, 1, 1)) / d["std"].view(1, -1, 1, 1, 1)
    caps = d["captions"]
    te = new_text_encoder()
    dit = WanTransformer(DIT_CFG)
    with torch.no_grad():  # adaLN-zero style start: gates and output at zero
        dit.proj_out.weight.mul_(0.1)
    params = list(dit.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    ck = os.path.join(WORK, "dit.pt")
    if os.path.exists(ck):  # continuing: also keep the averages and the step count (the EMA decay depends on it)
        s = torch.load(ck)
        dit.load_state_dict(s["dit"])
        te.load_state_dict(s["te"])
        ema, ema_te, step = s["ema"], s["ema_te"], s["step"]
        if "opt" in s:  # the Adam moments (not in checkpoints/' float16 copies), so they do not restart from zero
            opt.load_state_dict(s["opt"])
        rng = np.random.default_rng(4000 + step)  # fresh batches, not a replay of the first run's
        log("dit: resumed at step", step)
    else:
        ema = {k: v.detach().clone() for k, v in dit.state_dict().items()}
        ema_te = {k: v.detach().clone() for k, v in te.state_dict().items()}
        step = 0

    def save():
        torch.save({"dit": dit.state_dict(), "te": te.state_dict(), "ema": ema, "ema_te": ema_te, "step": step,
                    "opt": opt.state_dict()}, ck)

    t0 = time.time()
    last_save = t0
    while time.time() - t0 < minutes * 60:
        idx = rng.integers(len(lat), size=batch)
        x0 = lat[idx]
        texts = []
        for i in idx:
            r = rng.random()
            texts.append("" if r < 0.06 else WAN_NEGATIVE_PROMPT if r < 0.12 else caps[i])
        u = torch.from_numpy(rng.random(batch).astype(np.float32))
        sigma = FLOW_SHIFT * u / (1 + (FLOW_SHIFT - 1) * u)
        noise = torch.from_numpy(rng.standard_normal(x0.shape).astype(np.float32))
        s5 = sigma.view(-1, 1, 1, 1, 1)
        xt = (1 - s5) * x0 + s5 * noise
        # Known latent frames (Wan2.2 TI2V's conditioning, as the engine applies it): the first K frames are the
        # clean latents at timestep 0, the rest noised at sigma; the loss covers only the frames to generate.
        K = torch.from_numpy(rng.choice(len(KNOWN_SHARE), size=batch, p=KNOWN_SHARE))
        known = torch.arange(T_LAT)[None, :] < K[:, None]  # [B, T]
        xt = torch.where(known[:, None, :, None, None], x0, xt)
        t_tok = torch.where(known, 0.0, sigma[:, None] * 1000).repeat_interleave(TOKENS_PER_FRAME, dim=1)
        ctx, bias = encode_texts(te, sp, texts)
        v = dit(xt, t_tok, ctx, key_bias=bias)
        todo = (~known)[:, None, :, None, None].float()
        loss = (((v - (noise - x0)) ** 2) * todo).sum() / (todo.sum() * v[:, :, :1].numel() / batch)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        lr = cosine_lr((time.time() - t0) / (minutes * 60), peak_lr, 2e-5)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        step += 1
        with torch.no_grad():
            dec = min(0.995, (1 + step) / (10 + step))
            for k, p in dit.state_dict().items():
                ema[k].mul_(dec).add_(p.detach(), alpha=1 - dec)
            for k, p in te.state_dict().items():
                ema_te[k].mul_(dec).add_(p.detach(), alpha=1 - dec)
        if step % 50 == 0:
            log(f"dit step {step} loss {loss.item():.4f}")
        if time.time() - last_save > 120:
            save()
            last_save = time.time()
    save()
    log(f"dit: {step} steps in {(time.time() - t0) / 60:.1f} min")


def load_trained(use_ema=True):
    s = torch.load(os.path.join(WORK, "dit.pt"))
    te = UMT5Encoder(TE_CFG)
    te.load_state_dict(s["ema_te"] if use_ema else s["te"])
    dit = WanTransformer(DIT_CFG)
    dit.load_state_dict(s["ema"] if use_ema else s["dit"])
    return dit.eval(), te.eval()


# ---------------------------------------------------------------- export (diffusers layout)
def stage_export(out=OUT):
    d = torch.load(os.path.join(WORK, "latents.pt"))
    dit, te = load_trained()
    vae = load_vae(final=True)
    if os.path.exists(out):
        shutil.rmtree(out)
    for sub in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"):
        os.makedirs(os.path.join(out, sub))

    def dump(obj, *p):
        with open(os.path.join(out, *p), "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")

    dump({"_class_name": "WanPipeline", "_diffusers_version": "0.40.0.dev0",
          "scheduler": ["diffusers", "UniPCMultistepScheduler"], "text_encoder": ["transformers", "UMT5EncoderModel"],
          "tokenizer": ["transformers", "T5TokenizerFast"], "transformer": ["diffusers", "WanTransformer3DModel"],
          "vae": ["diffusers", "AutoencoderKLWan"], "expand_timesteps": True}, "model_index.json")
    sched = json.load(open(os.path.join(ROOT, "tests/fixtures/wan-small/model/scheduler/scheduler_config.json")))
    sched["flow_shift"] = FLOW_SHIFT
    dump(sched, "scheduler", "scheduler_config.json")
    vcfg = dict(VAE_CFG)
    vcfg["latents_mean"] = [float(v) for v in d["mean"]]
    vcfg["latents_std"] = [float(v) for v in d["std"]]
    dump(vcfg, "vae", "config.json")
    dump(DIT_CFG, "transformer", "config.json")
    tcfg = dict(TE_CFG)
    tcfg["vocab_size"] = te.shared.weight.shape[0]
    dump(tcfg, "text_encoder", "config.json")
    meta = {"format": "pt"}  # float32: small enough (a few MB) and bit-identical to what was evaluated
    save_safetensors(os.path.join(out, "transformer", "diffusion_pytorch_model.safetensors"), dit.state_dict(),
                     torch.float32, meta)
    save_safetensors(os.path.join(out, "vae", "diffusion_pytorch_model.safetensors"), vae.state_dict(),
                     torch.float32, meta)
    save_safetensors(os.path.join(out, "text_encoder", "model.safetensors"), te.state_dict(), torch.float32, meta)
    shutil.copy(os.path.join(WORK, "spiece.model"), os.path.join(out, "tokenizer", "spiece.model"))
    dump({"tokenizer_class": "T5Tokenizer", "model_max_length": 512, "eos_token": "</s>", "unk_token": "<unk>",
          "pad_token": "<pad>", "extra_ids": 0, "add_prefix_space": True}, "tokenizer", "tokenizer_config.json")
    dump({"frames": FRAMES, "height": H, "width": W, "steps": 20, "guidance": 5.0, "fps": 8,
          "vocabulary": caption_vocabulary()}, "generation_defaults.json")
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(out) for f in fs)
    log(f"export: {out} ({total / 1e6:.2f} MB)")


# ---------------------------------------------------------------- checkpoints kept in the repository
KEPT = os.path.join(HERE, "checkpoints")


def _cast(obj, dtype):
    if torch.is_tensor(obj):
        return obj.to(dtype) if obj.is_floating_point() else obj
    if isinstance(obj, dict):
        return {k: _cast(v, dtype) for k, v in obj.items()}
    return obj


def stage_keep(keep_dit):
    """Writes float16 copies of the VAE (decoder-tuned when that ran) and transformer checkpoints to checkpoints/,
    so that a later run can continue training where this one stopped (work/ is not kept)."""
    os.makedirs(KEPT, exist_ok=True)
    dec = os.path.join(WORK, "vae_dec.pt")
    torch.save(_cast(torch.load(dec if os.path.exists(dec) else os.path.join(WORK, "vae.pt")), torch.float16),
               os.path.join(KEPT, "vae.pt"))
    if keep_dit:  # without the Adam moments: their second moments underflow in float16
        s = {k: v for k, v in torch.load(os.path.join(WORK, "dit.pt")).items() if k != "opt"}
        torch.save(_cast(s, torch.float16), os.path.join(KEPT, "dit.pt"))
    log("keep:", {f: os.path.getsize(os.path.join(KEPT, f)) for f in os.listdir(KEPT)})


def stage_restore():
    """The reverse of keep: float32 work/ checkpoints to continue from (the VAE's encoder is the frozen one both the
    latents and the decoder stage use); then re-encode the latents with --stage latents."""
    os.makedirs(WORK, exist_ok=True)
    vae = _cast(torch.load(os.path.join(KEPT, "vae.pt")), torch.float32)
    torch.save({"vae": vae["vae"], "step": vae.get("step", 0)}, os.path.join(WORK, "vae.pt"))
    if "decoder_step" in vae:
        torch.save(vae, os.path.join(WORK, "vae_dec.pt"))
    if os.path.exists(os.path.join(KEPT, "dit.pt")):
        torch.save(_cast(torch.load(os.path.join(KEPT, "dit.pt")), torch.float32), os.path.join(WORK, "dit.pt"))
    log("restore: work/ has", sorted(os.listdir(WORK)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stage", default="all", choices=["all", "tokenizer", "vae", "latents", "dit", "decoder", "export", "keep", "restore"])
    ap.add_argument("--vae-minutes", type=float, default=12)
    ap.add_argument("--dit-minutes", type=float, default=25)
    ap.add_argument("--decoder-minutes", type=float, default=0, help="with --stage decoder (or all: after dit)")
    ap.add_argument("--latent-clips", type=int, default=2400)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--vae-plan", default="full", choices=["short", "full"])
    ap.add_argument("--vae-stop-step", type=int, default=None, help="end the VAE stage at this step")
    ap.add_argument("--decoder-lr", type=float, default=3e-4)
    ap.add_argument("--dit-lr", type=float, default=1e-3, help="peak learning rate (lower to continue a run)")
    ap.add_argument("--vae-lr", type=float, default=1e-3, help="peak learning rate (lower to continue a run)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep-dit", action="store_true", help="with --stage keep: the transformer's state too")
    ap.add_argument("--out", default=OUT, help="where export writes the model folder")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    run = lambda s: a.stage in ("all", s)  # noqa: E731
    if run("tokenizer"):
        stage_tokenizer()
    if run("vae"):
        stage_vae(a.vae_minutes, a.vae_lr, a.vae_stop_step, a.vae_plan)
    if run("latents"):
        stage_latents(a.latent_clips)
    if run("dit"):
        stage_dit(a.dit_minutes, a.batch, a.dit_lr)
    if a.stage == "decoder" or (a.stage == "all" and a.decoder_minutes > 0):
        stage_decoder(a.decoder_minutes, a.decoder_lr)
    if run("export"):
        stage_export(a.out)
    if a.stage == "keep":
        stage_keep(a.keep_dit)
    if a.stage == "restore":
        stage_restore()


if __name__ == "__main__":
    main()
