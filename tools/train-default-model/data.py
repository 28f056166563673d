"""Synthetic captioned clips: one coloured shape moving over a plain coloured background."""
import numpy as np

COLORS = {
    "red": (0.86, 0.12, 0.12),
    "green": (0.12, 0.70, 0.20),
    "blue": (0.15, 0.30, 0.90),
    "yellow": (0.95, 0.85, 0.10),
    "white": (0.95, 0.95, 0.95),
    "black": (0.05, 0.05, 0.05),
}
SHAPES = ["circle", "square", "triangle"]
MOTIONS = ["left", "right", "up", "down", "growing", "shrinking", "bouncing"]
DIRECTIONS = {"left", "right", "up", "down"}

# (object colour, shape, motion) triples never shown in training, with any background.
HOLDOUT = [
    ("red", "triangle", "left"),
    ("blue", "circle", "down"),
    ("green", "square", "right"),
    ("white", "triangle", "up"),
    ("yellow", "circle", "growing"),
]

# Wan's default negative prompt (Wan2.1 wan/configs/shared_config.py sample_neg_prompt); the engine encodes it as
# the unconditional input when no negative prompt is given, so the model is trained on it as "no caption".
WAN_NEGATIVE_PROMPT = ("色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
                       "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
                       "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走")


def caption(color, shape, motion, bg):
    verb = f"moving {motion}" if motion in DIRECTIONS else motion
    return f"a {color} {shape} {verb} on a {bg} background"


def caption_vocabulary():
    """Every word of every caption (the CLI warns of prompt words outside it)."""
    words = set()
    for c, s, m, bg in all_combos():
        words.update(caption(c, s, m, bg).split())
    return sorted(words)


def all_combos():
    for c in COLORS:
        for s in SHAPES:
            for m in MOTIONS:
                for bg in COLORS:
                    if bg != c:
                        yield c, s, m, bg


def is_holdout(c, s, m):
    return (c, s, m) in HOLDOUT


def _coverage(shape, xx, yy, cx, cy, r):
    dx, dy = xx - cx, yy - cy
    if shape == "circle":
        d = np.sqrt(dx * dx + dy * dy) - r
    elif shape == "square":
        d = np.maximum(np.abs(dx), np.abs(dy)) - 0.85 * r
    else:  # upward-pointing triangle (approximate signed distance from three half-planes)
        k = 0.866
        d = np.maximum(np.maximum(dy - 0.6 * r, k * dx - 0.5 * dy - 0.6 * r), -k * dx - 0.5 * dy - 0.6 * r)
    return np.clip(0.5 - d, 0.0, 1.0)


def render(color, shape, motion, bg, frames, H, W, rng):
    """Returns a float32 clip [3, F, H, W] in [-1, 1]. Positions/sizes/speeds are randomised by rng."""
    S = min(H, W)
    t = np.linspace(0.0, 1.0, frames)
    r = rng.uniform(0.13, 0.19) * S
    travel = rng.uniform(0.35, 0.5) * S
    cx0 = rng.uniform(0.3, 0.7) * W
    cy0 = rng.uniform(0.3, 0.7) * H
    cx = np.full(frames, cx0)
    cy = np.full(frames, cy0)
    rr = np.full(frames, r)
    if motion in ("left", "right"):
        start = rng.uniform(r, W - r - travel)
        pos = start + travel * t
        cx = pos if motion == "right" else W - pos
    elif motion in ("up", "down"):
        start = rng.uniform(r, H - r - travel)
        pos = start + travel * t
        cy = pos if motion == "down" else H - pos
    elif motion in ("growing", "shrinking"):
        lo, hi = 0.07 * S, rng.uniform(0.24, 0.3) * S
        grow = lo + (hi - lo) * t
        rr = grow if motion == "growing" else grow[::-1]
        cx, cy = np.full(frames, W / 2 + rng.uniform(-0.1, 0.1) * W), np.full(frames, H / 2 + rng.uniform(-0.1, 0.1) * H)
    else:  # bouncing: falls to the floor and back up, twice
        floor = H - r - 1
        top = rng.uniform(r + 1, H * 0.45)
        cy = floor - (floor - top) * np.abs(np.cos(np.pi * 2 * t))
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32) + 0.5
    fg = np.array(COLORS[color], np.float32)[:, None, None]
    bgc = np.array(COLORS[bg], np.float32)[:, None, None]
    clip = np.empty((3, frames, H, W), np.float32)
    for f in range(frames):
        a = _coverage(shape, xx, yy, cx[f], cy[f], rr[f])[None]
        clip[:, f] = bgc * (1 - a) + fg * a
    return clip * 2 - 1


def sample_batch(rng, n, frames, H, W, holdout=True):
    combos = [c for c in all_combos() if not (holdout and is_holdout(c[0], c[1], c[2]))]
    clips, caps = [], []
    for _ in range(n):
        c, s, m, bg = combos[rng.integers(len(combos))]
        clips.append(render(c, s, m, bg, frames, H, W, rng))
        caps.append(caption(c, s, m, bg))
    return np.stack(clips), caps


# ---------------------------------------------------------------- measurements used by evaluate.py
def measure(clip01, bg_hint=None):
    """clip01 [F, H, W, 3] in [0,1]. Background = median of the border pixels of each frame; the object is the
    set of pixels far from it, its colour the dominant one. Returns (object colour name, background colour name,
    dx, dy, area ratio last/first)."""
    Fr, H, W, _ = clip01.shape
    names = list(COLORS)
    pal = np.array([COLORS[n] for n in names])
    border = np.concatenate([clip01[:, 0].reshape(-1, 3), clip01[:, -1].reshape(-1, 3),
                             clip01[:, :, 0].reshape(-1, 3), clip01[:, :, -1].reshape(-1, 3)])
    bg = np.median(border, axis=0)
    bg_name = names[int(np.argmin(((pal - bg) ** 2).sum(1)))]
    dist = np.sqrt(((clip01 - bg) ** 2).sum(-1))  # [F,H,W]
    mask = dist > 0.35
    if mask.sum() == 0:
        return None, bg_name, 0.0, 0.0, 1.0
    # dominant colour: the palette colour most object pixels are nearest (a mean lets the soft edge, blended
    # with the background, pull e.g. a yellow object on black towards red)
    nearest = np.argmin(((clip01[mask][:, None, :] - pal[None]) ** 2).sum(-1), 1)
    obj_name = names[int(np.bincount(nearest, minlength=len(names)).argmax())]
    yy, xx = np.mgrid[0:H, 0:W]
    cents, areas = [], []
    for f in range(Fr):
        m = mask[f]
        areas.append(m.sum())
        cents.append((xx[m].mean(), yy[m].mean()) if m.sum() else (np.nan, np.nan))
    cents = np.array(cents)
    k = max(1, Fr // 4)
    first = np.nanmean(cents[:k], 0)
    last = np.nanmean(cents[-k:], 0)
    a0, a1 = np.mean(areas[:k]) + 1, np.mean(areas[-k:]) + 1
    return obj_name, bg_name, float(last[0] - first[0]), float(last[1] - first[1]), float(a1 / a0)


def direction_of(dx, dy, area_ratio, min_move):
    if abs(dx) < min_move and abs(dy) < min_move:
        if area_ratio > 1.5:
            return "growing"
        if area_ratio < 1 / 1.5:
            return "shrinking"
        return "static"
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"
