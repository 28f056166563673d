"""PyTorch re-implementation of the Wan2.1 pieces (diffusers tensor names) used to train the shipped model.

Written from /work/shared/docs/wan-architecture.md (sections 2-6); check_against_fixtures.py proves it
reproduces tests/fixtures/wan-small, so weights trained here run identically in the C# engine.
"""
import json
import math
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------- safetensors I/O (no package on this box)
_DT = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2), "I64": (torch.int64, 8)}


def load_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt, _ = _DT[info["dtype"]]
        b, e = info["data_offsets"]
        buf = bytearray(data[base + b:base + e])
        t = torch.frombuffer(buf, dtype=dt) if e > b else torch.empty(0, dtype=dt)
        out[name] = t.reshape(info["shape"]).clone()
    return out


def save_safetensors(path, tensors, dtype=None, metadata=None):
    """Writes tensors (name -> torch tensor) sorted by name; dtype casts floating tensors (e.g. torch.float16)."""
    names = sorted(tensors)
    header, blobs, off = {}, [], 0
    inv = {v[0]: k for k, v in _DT.items()}
    for name in names:
        t = tensors[name].detach().cpu().contiguous()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": inv[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


# ---------------------------------------------------------------- transformer (section 2)
class Attention(nn.Module):
    def __init__(self, dim, heads, eps):
        super().__init__()
        self.heads, self.eps = heads, eps
        self.to_q, self.to_k, self.to_v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])
        self.norm_q = RMSNorm(dim, eps)
        self.norm_k = RMSNorm(dim, eps)

    def forward(self, x, ctx=None, rope=None, key_bias=None):
        ctx = x if ctx is None else ctx
        q, k, v = self.norm_q(self.to_q(x)), self.norm_k(self.to_k(ctx)), self.to_v(ctx)
        B, L, D = q.shape
        h = self.heads
        q = q.view(B, L, h, D // h).transpose(1, 2)
        k = k.view(B, k.shape[1], h, D // h).transpose(1, 2)
        v = v.view(B, v.shape[1], h, D // h).transpose(1, 2)
        if rope is not None:
            q, k = apply_rope(q, rope), apply_rope(k, rope)
        s = (q * (D // h) ** -0.5) @ k.transpose(-1, -2)  # scaling q, not the L x L scores: the same product, far cheaper
        if key_bias is not None:  # [B, Lk]: log-multiplicity of de-duplicated keys (training shortcut)
            s = s + key_bias[:, None, None, :]
        o = torch.softmax(s, dim=-1) @ v
        return self.to_out[0](o.transpose(1, 2).reshape(B, L, D))


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_table(head_dim, T, H, W):
    """Complex rotation per token [L, head_dim/2] (frame, row, column axes; interleaved pairs)."""
    hw = 2 * (head_dim // 6)
    dims = [head_dim - 2 * hw, hw, hw]
    angles = []
    grids = torch.meshgrid(torch.arange(T), torch.arange(H), torch.arange(W), indexing="ij")
    for d, pos in zip(dims, grids):
        omega = 1.0 / (10000.0 ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        angles.append(pos.reshape(-1, 1).double() * omega[None, :])
    ang = torch.cat(angles, dim=1)
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x, rope):
    cos, sin = rope
    xr = x.float().reshape(*x.shape[:-1], -1, 2)
    a, b = xr[..., 0], xr[..., 1]
    out = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1)
    return out.flatten(-2).type_as(x)


class FeedForward(nn.Module):
    def __init__(self, dim, ffn):
        super().__init__()
        proj = nn.Module()
        proj.proj = nn.Linear(dim, ffn)
        self.net = nn.ModuleList([proj, nn.Identity(), nn.Linear(ffn, dim)])

    def forward(self, x):
        return self.net[2](gelu_tanh(self.net[0].proj(x)))


class WanBlock(nn.Module):
    def __init__(self, dim, ffn, heads, eps):
        super().__init__()
        self.eps = eps
        self.attn1 = Attention(dim, heads, eps)
        self.norm2 = nn.LayerNorm(dim, eps=eps, elementwise_affine=True)
        self.attn2 = Attention(dim, heads, eps)
        self.ffn = FeedForward(dim, ffn)
        self.scale_shift_table = nn.Parameter(torch.randn(1, 6, dim) / dim ** 0.5)

    def forward(self, x, tproj, ctx, rope, key_bias):
        """tproj [B, G, 6, D]: one modulation per group of L/G consecutive tokens (G = 1, the frames, or L)."""
        B, L, D = x.shape
        G = tproj.shape[1]
        sh, sc, g, csh, csc, cg = (self.scale_shift_table[:, None] + tproj)[:, :, None].unbind(3)  # [B, G, 1, D]
        grouped = lambda y: y.view(B, G, L // G, D)  # noqa: E731
        n = (grouped(F.layer_norm(x, (D,), eps=self.eps)) * (1 + sc) + sh).view(B, L, D)
        x = x + (grouped(self.attn1(n, rope=rope)) * g).view(B, L, D)
        x = x + self.attn2(self.norm2(x), ctx=ctx, key_bias=key_bias)
        n = (grouped(F.layer_norm(x, (D,), eps=self.eps)) * (1 + csc) + csh).view(B, L, D)
        return x + (grouped(self.ffn(n)) * cg).view(B, L, D)


class WanTransformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        heads, hd = cfg["num_attention_heads"], cfg["attention_head_dim"]
        D = heads * hd
        self.D, self.heads, self.hd = D, heads, hd
        self.patch = cfg["patch_size"]
        self.freq_dim, eps = cfg["freq_dim"], cfg["eps"]
        self.patch_embedding = nn.Conv3d(cfg["in_channels"], D, self.patch, stride=self.patch)
        ce = nn.Module()
        ce.time_embedder = nn.Module()
        ce.time_embedder.linear_1 = nn.Linear(self.freq_dim, D)
        ce.time_embedder.linear_2 = nn.Linear(D, D)
        ce.time_proj = nn.Linear(D, 6 * D)
        ce.text_embedder = nn.Module()
        ce.text_embedder.linear_1 = nn.Linear(cfg["text_dim"], D)
        ce.text_embedder.linear_2 = nn.Linear(D, D)
        self.condition_embedder = ce
        self.blocks = nn.ModuleList([WanBlock(D, cfg["ffn_dim"], heads, eps) for _ in range(cfg["num_layers"])])
        pt, ph, pw = self.patch
        self.proj_out = nn.Linear(D, cfg["out_channels"] * pt * ph * pw)
        self.scale_shift_table = nn.Parameter(torch.randn(1, 2, D) / D ** 0.5)
        self.eps = eps

    def timestep_features(self, t):
        half = self.freq_dim // 2
        omega = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        a = t.float()[:, None] * omega[None, :]
        return torch.cat([torch.cos(a), torch.sin(a)], dim=1)

    def forward(self, x, t, text, key_bias=None):
        """x [B,C,T,H,W]; t on the 0..1000 scale, [B] or one per token [B, L] (Wan2.2's expand_timesteps: tokens in
        frame-major order); text [B,Lt,text_dim] (512 rows as the pipeline builds them, or de-duplicated rows with
        key_bias = log(multiplicity), which is mathematically the same)."""
        B, C, T, H, W = x.shape
        pt, ph, pw = self.patch
        Tp, Hp, Wp = T // pt, H // ph, W // pw
        h = self.patch_embedding(x).flatten(2).transpose(1, 2)
        ce = self.condition_embedder
        tt = t.float().reshape(B, -1)  # [B, 1] or [B, L]
        L = Tp * Hp * Wp
        if tt.shape[1] == L and bool((tt.view(B, Tp, -1) == tt.view(B, Tp, -1)[:, :, :1]).all()):
            tt = tt.view(B, Tp, -1)[:, :, 0]  # one timestep a frame (the known-frame case): embed it once per frame
        temb = ce.time_embedder.linear_2(F.silu(ce.time_embedder.linear_1(
            self.timestep_features(tt.reshape(-1)).view(B, tt.shape[1], -1))))
        tproj = ce.time_proj(F.silu(temb)).view(B, tt.shape[1], 6, self.D)
        ctx = ce.text_embedder.linear_2(gelu_tanh(ce.text_embedder.linear_1(text)))
        rope = rope_table(self.hd, Tp, Hp, Wp)
        for blk in self.blocks:
            h = blk(h, tproj, ctx, rope, key_bias)
        G = tt.shape[1]
        sh, sc = (self.scale_shift_table[:, None] + temb[:, :, None, :])[:, :, None].unbind(3)  # [B, G, 1, D]
        h = (F.layer_norm(h, (self.D,), eps=self.eps).view(B, G, L // G, self.D) * (1 + sc) + sh).view(B, L, self.D)
        y = self.proj_out(h)  # [B, L, pt*ph*pw*Cout]
        Co = self.cfg["out_channels"]
        y = y.view(B, Tp, Hp, Wp, pt, ph, pw, Co).permute(0, 7, 1, 4, 2, 5, 3, 6)
        return y.reshape(B, Co, T, H, W)


# ---------------------------------------------------------------- VAE (section 3, full-sequence form of 3.5)
class CausalConv3d(nn.Conv3d):
    def __init__(self, cin, cout, k, padding=0, stride=1):
        super().__init__(cin, cout, k, stride=stride, padding=0)
        p = padding if isinstance(padding, tuple) else (padding,) * 3
        self.pad = (p[2], p[2], p[1], p[1], 2 * p[0], 0)

    def forward(self, x):
        return super().forward(F.pad(x, self.pad))


class RMSNormCF(nn.Module):
    def __init__(self, dim, images=False):
        super().__init__()
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.ones((dim, 1, 1) if images else (dim, 1, 1, 1)))

    def forward(self, x):
        return F.normalize(x, dim=1) * self.scale * self.gamma


class ResBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1, self.conv1 = RMSNormCF(cin), CausalConv3d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = RMSNormCF(cout), CausalConv3d(cout, cout, 3, padding=1)
        self.conv_shortcut = CausalConv3d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = x if self.conv_shortcut is None else self.conv_shortcut(x)
        r = self.conv1(F.silu(self.norm1(x)))
        return self.conv2(F.silu(self.norm2(r))) + h


class AttnBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = RMSNormCF(dim, images=True)
        self.to_qkv = nn.Conv2d(dim, 3 * dim, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        B, C, T, H, W = x.shape
        f = x.permute(0, 2, 1, 3, 4).reshape(B * T, C, H, W)
        q, k, v = self.to_qkv(self.norm(f)).chunk(3, dim=1)
        q, k, v = (z.flatten(2).transpose(1, 2) for z in (q, k, v))
        o = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(C), dim=-1) @ v
        o = self.proj(o.transpose(1, 2).reshape(B * T, C, H, W)) + f
        return o.view(B, T, C, H, W).permute(0, 2, 1, 3, 4)


class MidBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.resnets = nn.ModuleList([ResBlock(dim, dim), ResBlock(dim, dim)])
        self.attentions = nn.ModuleList([AttnBlock(dim)])

    def forward(self, x):
        return self.resnets[1](self.attentions[0](self.resnets[0](x)))


def per_frame(fn, x):
    B, C, T, H, W = x.shape
    y = fn(x.permute(0, 2, 1, 3, 4).reshape(B * T, C, H, W))
    return y.view(B, T, *y.shape[1:]).permute(0, 2, 1, 3, 4)


class Resample(nn.Module):
    def __init__(self, dim, mode):
        super().__init__()
        self.mode = mode
        conv = nn.Conv2d(dim, dim // 2, 3, padding=1) if mode.startswith("up") else nn.Conv2d(dim, dim, 3, stride=2)
        self.resample = nn.ModuleList([nn.Identity(), conv])
        if mode == "upsample3d":
            self.time_conv = CausalConv3d(dim, 2 * dim, (3, 1, 1), padding=(1, 0, 0))
        elif mode == "downsample3d":
            self.time_conv = nn.Conv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1))

    def forward(self, x):
        if self.mode == "upsample3d" and x.shape[2] > 1:
            B, C, T, H, W = x.shape
            y = self.time_conv(x[:, :, 1:]).view(B, 2, C, T - 1, H, W)
            y = torch.stack([y[:, 0], y[:, 1]], dim=3).reshape(B, C, 2 * (T - 1), H, W)
            x = torch.cat([x[:, :, :1], y], dim=2)
        if self.mode.startswith("up"):
            x = per_frame(lambda f: self.resample[1](F.interpolate(f, scale_factor=2.0, mode="nearest")), x)
        else:
            x = per_frame(lambda f: self.resample[1](F.pad(f, (0, 1, 0, 1))), x)
        if self.mode == "downsample3d" and x.shape[2] > 1:
            x = torch.cat([x[:, :, :1], self.time_conv(x)], dim=2)
        return x


class UpBlock(nn.Module):
    def __init__(self, cin, cout, nres, up_mode):
        super().__init__()
        self.resnets = nn.ModuleList([ResBlock(cin if i == 0 else cout, cout) for i in range(nres + 1)])
        self.upsamplers = nn.ModuleList([Resample(cout, up_mode)]) if up_mode else None

    def forward(self, x):
        for r in self.resnets:
            x = r(x)
        return self.upsamplers[0](x) if self.upsamplers is not None else x


class Encoder(nn.Module):
    def __init__(self, base, z, mult, nres, tdown):
        super().__init__()
        dims = [base * m for m in [1] + mult]
        self.conv_in = CausalConv3d(3, dims[0], 3, padding=1)
        blocks = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            for _ in range(nres):
                blocks.append(ResBlock(a, b))
                a = b
            if i != len(mult) - 1:
                blocks.append(Resample(b, "downsample3d" if tdown[i] else "downsample2d"))
        self.down_blocks = nn.ModuleList(blocks)
        self.mid_block = MidBlock(dims[-1])
        self.norm_out = RMSNormCF(dims[-1])
        self.conv_out = CausalConv3d(dims[-1], 2 * z, 3, padding=1)

    def forward(self, x):
        x = self.conv_in(x)
        for b in self.down_blocks:
            x = b(x)
        return self.conv_out(F.silu(self.norm_out(self.mid_block(x))))


class Decoder(nn.Module):
    def __init__(self, base, z, mult, nres, tup):
        super().__init__()
        dims = [base * m for m in [mult[-1]] + mult[::-1]]
        self.conv_in = CausalConv3d(z, dims[0], 3, padding=1)
        self.mid_block = MidBlock(dims[0])
        ups = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            if i > 0:
                a = a // 2
            mode = None
            if i != len(mult) - 1:
                mode = "upsample3d" if tup[i] else "upsample2d"
            ups.append(UpBlock(a, b, nres, mode))
        self.up_blocks = nn.ModuleList(ups)
        self.norm_out = RMSNormCF(dims[-1])
        self.conv_out = CausalConv3d(dims[-1], 3, 3, padding=1)

    def forward(self, z):
        x = self.mid_block(self.conv_in(z))
        for u in self.up_blocks:
            x = u(x)
        return self.conv_out(F.silu(self.norm_out(x)))


class WanVAE(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        base, z, mult, nres = cfg["base_dim"], cfg["z_dim"], cfg["dim_mult"], cfg["num_res_blocks"]
        td = cfg["temperal_downsample"]
        self.encoder = Encoder(base, z, mult, nres, td)
        self.quant_conv = CausalConv3d(2 * z, 2 * z, 1)
        self.post_quant_conv = CausalConv3d(z, z, 1)
        self.decoder = Decoder(base, z, mult, nres, td[::-1])
        self.z = z

    def encode(self, video):
        """video [B,3,F,H,W] in [-1,1] -> (mean, logvar) [B,z,T,h,w] (raw, not normalised)."""
        F_ = video.shape[2]
        video = video[:, :, :1 + 4 * ((F_ - 1) // 4)]
        h = self.quant_conv(self.encoder(video))
        mean, logvar = h[:, :self.z], h[:, self.z:]
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z, clamp=True):
        x = self.decoder(self.post_quant_conv(z))
        return x.clamp(-1.0, 1.0) if clamp else x


# ---------------------------------------------------------------- UMT5 encoder (section 4)
def rel_bucket(rp, num_buckets=32, max_distance=128):
    nb = num_buckets // 2
    ret = (rp > 0).long() * nb
    a = rp.abs()
    max_exact = nb // 2
    large = max_exact + (torch.log(a.float().clamp(min=1) / max_exact) / math.log(max_distance / max_exact)
                         * (nb - max_exact)).long()
    large = torch.minimum(large, torch.full_like(large, nb - 1))
    return ret + torch.where(a < max_exact, a, large)


class T5Norm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class UMT5Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d, h, dkv, dff, eps = cfg["d_model"], cfg["num_heads"], cfg["d_kv"], cfg["d_ff"], cfg["layer_norm_epsilon"]
        self.h, self.dkv = h, dkv
        self.shared = nn.Embedding(cfg["vocab_size"], d)
        enc = nn.Module()
        blocks = []
        for _ in range(cfg["num_layers"]):
            blk = nn.Module()
            l0, l1 = nn.Module(), nn.Module()
            l0.layer_norm = T5Norm(d, eps)
            sa = nn.Module()
            sa.q, sa.k, sa.v = (nn.Linear(d, h * dkv, bias=False) for _ in range(3))
            sa.o = nn.Linear(h * dkv, d, bias=False)
            sa.relative_attention_bias = nn.Embedding(cfg["relative_attention_num_buckets"], h)
            l0.SelfAttention = sa
            l1.layer_norm = T5Norm(d, eps)
            ff = nn.Module()
            ff.wi_0, ff.wi_1 = nn.Linear(d, dff, bias=False), nn.Linear(d, dff, bias=False)
            ff.wo = nn.Linear(dff, d, bias=False)
            l1.DenseReluDense = ff
            blk.layer = nn.ModuleList([l0, l1])
            blocks.append(blk)
        enc.block = nn.ModuleList(blocks)
        enc.final_layer_norm = T5Norm(d, eps)
        self.encoder = enc

    def forward(self, ids, mask=None):
        B, L = ids.shape
        x = self.shared(ids)
        pos = torch.arange(L)
        buckets = rel_bucket(pos[None, :] - pos[:, None], self.cfg["relative_attention_num_buckets"],
                             self.cfg["relative_attention_max_distance"])
        madd = 0.0 if mask is None else (1.0 - mask.float())[:, None, None, :] * torch.finfo(torch.float32).min
        for blk in self.encoder.block:
            l0, l1 = blk.layer
            sa = l0.SelfAttention
            n = l0.layer_norm(x)
            q, k, v = (p(n).view(B, L, self.h, self.dkv).transpose(1, 2) for p in (sa.q, sa.k, sa.v))
            bias = sa.relative_attention_bias(buckets).permute(2, 0, 1)[None]
            s = q @ k.transpose(-1, -2) + bias + madd
            o = (torch.softmax(s.float(), dim=-1) @ v).transpose(1, 2).reshape(B, L, -1)
            x = x + sa.o(o)
            ff = l1.DenseReluDense
            n = l1.layer_norm(x)
            x = x + ff.wo(gelu_tanh(ff.wi_0(n)) * ff.wi_1(n))
        return self.encoder.final_layer_norm(x)


# ---------------------------------------------------------------- schedulers (section 6.3 / 6.4)
def unipc_sigmas(n, shift):
    s = np.linspace(1.0, 1.0 / 1000, n + 1)[:-1]
    s = shift * s / (1 + (shift - 1) * s)
    if abs(s[0] - 1.0) < 1e-6:
        s[0] -= 1e-6
    t = (s * 1000).astype(np.int64)
    return np.concatenate([s, [0.0]]).astype(np.float32), t


def euler_sigmas(n, shift):
    T = 1000
    smin = shift * (1 / T) / (1 + (shift - 1) * (1 / T))
    tau = np.linspace(1.0 * T, smin * T, n)
    s = tau / T
    s = shift * s / (1 + (shift - 1) * s)
    s = s.astype(np.float32)
    return np.concatenate([s, [0.0]]).astype(np.float32), (s * T).astype(np.float32)


class UniPC:
    """UniPCMultistepScheduler, flow sigmas, order 2, bh2, predict_x0, lower_order_final (section 6.3)."""

    def __init__(self, n, shift):
        self.n = n
        self.sigmas, self.timesteps = unipc_sigmas(n, shift)
        self.sig = self.sigmas.astype(np.float64)
        self.M, self.last, self.prev_order, self.lon, self.i = [], None, 1, 0, 0

    def lam(self, s):
        with np.errstate(divide="ignore"):
            return np.log(1 - s) - np.log(s)

    def step(self, v, x):
        i, sig = self.i, self.sig
        x0 = x - float(sig[i]) * v
        if i > 0:
            s0, t = sig[i - 1], sig[i]
            h = self.lam(t) - self.lam(s0)
            hh = -h
            phi = np.expm1(hh)
            Bh = np.expm1(hh)
            m0 = self.M[-1]
            if self.prev_order == 1:
                rhos, D = [0.5], []
            else:
                r = (self.lam(sig[i - 2]) - self.lam(s0)) / h
                D = [(self.M[-2] - m0) / r]
                b1 = (phi / hh - 1) / Bh
                b2 = 2 * ((phi / hh - 1) / hh - 0.5) / Bh
                rhos = list(np.linalg.solve(np.array([[1.0, 1.0], [r, 1.0]]), np.array([b1, b2])))
            corr = sum(rk * dk for rk, dk in zip(rhos[:-1], D)) if D else 0.0
            corr = corr + rhos[-1] * (x0 - m0)
            x = (t / s0) * self.last - (1 - t) * phi * m0 - (1 - t) * Bh * corr
        self.M = (self.M + [x0])[-2:]
        order = min(2, self.n - i)
        order = min(order, self.lon + 1)
        self.prev_order = order
        self.last = x
        s0, t = sig[i], sig[i + 1]
        h = self.lam(t) - self.lam(s0)
        hh = -h
        phi = np.expm1(hh)
        Bh = np.expm1(hh)
        m0 = self.M[-1]
        res = 0.0
        if order == 2:
            r = (self.lam(sig[i - 1]) - self.lam(s0)) / h
            res = 0.5 * (self.M[-2] - m0) / r
        x_next = (t / s0) * x - (1 - t) * phi * m0 - (1 - t) * Bh * res
        self.lon = min(self.lon + 1, 2)
        self.i += 1
        return x_next.float() if torch.is_tensor(x_next) else x_next


def sample(transformer, latents, cond, uncond, steps, guidance, shift, scheduler="unipc"):
    """CFG sampling loop of section 6.2; cond/uncond [1,512,text_dim]. Returns final latents (normalised space)."""
    x = latents.clone()
    if scheduler == "unipc":
        sch = UniPC(steps, shift)
        ts = sch.timesteps.astype(np.float32)
    else:
        sigmas, ts = euler_sigmas(steps, shift)
    with torch.no_grad():
        for i, t in enumerate(ts):
            tt = torch.full((x.shape[0],), float(t))
            vc = transformer(x, tt, cond)
            vu = transformer(x, tt, uncond)
            v = vu + guidance * (vc - vu)
            if scheduler == "unipc":
                x = sch.step(v, x)
            else:
                x = x + float(sigmas[i + 1] - sigmas[i]) * v
    return x
