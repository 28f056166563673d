"""Synthetic captioned clips: one or two crisp coloured shapes moving over a plain coloured background, and the
measurements (colours, motion, shape) the evaluation and the engine's end-to-end tests judge them by."""
import numpy as np

COLORS = {
    "red": (0.86, 0.12, 0.12),
    "green": (0.12, 0.70, 0.20),
    "blue": (0.15, 0.30, 0.90),
    "yellow": (0.95, 0.85, 0.10),
    "white": (0.95, 0.95, 0.95),
    "black": (0.05, 0.05, 0.05),
    "gray": (0.50, 0.50, 0.50),
    "orange": (1.00, 0.50, 0.00),
    "purple": (0.50, 0.10, 0.65),
    "cyan": (0.10, 0.85, 0.90),
    "pink": (1.00, 0.55, 0.75),
    "brown": (0.45, 0.25, 0.08),
}
SHAPES = ["circle", "square", "triangle", "star"]
SIZES = ["small", "large"]
STRAIGHT = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
DIAGONAL = {"up and left": (-1, -1), "up and right": (1, -1), "down and left": (-1, 1), "down and right": (1, 1)}
DIRECTIONS = {**STRAIGHT, **DIAGONAL}
MOTIONS = list(STRAIGHT) + list(DIAGONAL) + ["growing", "shrinking", "bouncing", "rotating"]
PAIR_MOTIONS = ["moving apart", "moving together"]

# (object colour, shape, motion) triples never shown in transformer training, with any background or size.
HOLDOUT = [
    ("red", "triangle", "left"),
    ("blue", "circle", "down"),
    ("green", "square", "right"),
    ("white", "triangle", "up"),
    ("yellow", "circle", "growing"),
    ("orange", "star", "rotating"),
    ("purple", "square", "up and right"),
    ("cyan", "star", "left"),
]

# Wan's default negative prompt (Wan2.1 wan/configs/shared_config.py sample_neg_prompt); the engine encodes it as
# the unconditional input when no negative prompt is given, so the model is trained on it as "no caption".
WAN_NEGATIVE_PROMPT = ("色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
                       "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
                       "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走")

SMALL_R, LARGE_R = (0.10, 0.13), (0.16, 0.20)  # object "radius" as a fraction of the frame side


def _a(words):
    return ("an " if words[0] in "aeiou" else "a ") + words


def caption(color, shape, motion, bg, size=None):
    verb = f"moving {motion}" if motion in DIRECTIONS else motion
    thing = f"{size} {color} {shape}" if size else f"{color} {shape}"
    return f"{_a(thing)} {verb} on {_a(bg)} background"


def pair_caption(c1, s1, c2, s2, motion, bg):
    return f"{_a(c1)} {s1} and {_a(c2)} {s2} {motion} on {_a(bg)} background"


def caption_vocabulary():
    """Every word of every caption (the CLI warns of prompt words outside it)."""
    words = set(COLORS) | set(SHAPES) | set(SIZES) | {"a", "an", "and", "on", "background", "moving"}
    for m in MOTIONS + PAIR_MOTIONS:
        words.update(m.split())
    return sorted(words)


def caption_corpus():
    """Every single-object caption (with and without a size word) and a sample of the two-object ones."""
    out = []
    for c, s, m, bg in all_combos():
        out.append(caption(c, s, m, bg))
        out.append(caption(c, s, m, bg, SIZES[len(out) % 2]))
    names = list(COLORS)
    for i, c1 in enumerate(names):
        for j, c2 in enumerate(names):
            if c1 != c2:
                bg = names[(i + j + 1) % len(names)]
                for k, m in enumerate(PAIR_MOTIONS):
                    out.append(pair_caption(c1, SHAPES[(i + k) % 4], c2, SHAPES[(j + 1) % 4], m, bg))
    return out


def contrast(a, b):
    """RGB distance between two palette colours; the measurement needs well above its 0.35 mask threshold."""
    return float(np.sqrt(((np.array(COLORS[a]) - np.array(COLORS[b])) ** 2).sum()))


def all_combos():
    for c in COLORS:
        for s in SHAPES:
            for m in MOTIONS:
                if m == "rotating" and s == "circle":
                    continue  # a rotating circle looks static
                for bg in COLORS:
                    if bg != c:
                        yield c, s, m, bg


def is_holdout(c, s, m):
    return (c, s, m) in HOLDOUT


# ---------------------------------------------------------------- drawing
def _polygon(shape, r, angle):
    if shape == "square":
        R, n, inner = 0.85 * r * np.sqrt(2), 4, None
        a0 = np.pi / 4
    elif shape == "triangle":
        R, n, inner = 1.25 * r, 3, None
        a0 = -np.pi / 2  # pointing up
    else:  # five-pointed star
        R, n, inner = 1.35 * r, 5, 0.5
        a0 = -np.pi / 2
    pts = []
    for k in range(n):
        a = a0 + angle + 2 * np.pi * k / n
        pts.append((R * np.cos(a), R * np.sin(a)))
        if inner:
            a2 = a + np.pi / n
            pts.append((inner * R * np.cos(a2), inner * R * np.sin(a2)))
    return np.array(pts)


def _inside(shape, px, py, r, angle):
    if shape == "circle":
        return px * px + py * py < r * r
    poly = _polygon(shape, r, angle)
    inside = np.zeros(px.shape, bool)
    for (xi, yi), (xj, yj) in zip(poly, np.roll(poly, -1, axis=0)):
        crosses = (yi > py) != (yj > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            xcross = (xj - xi) * (py - yi) / (yj - yi) + xi
        inside ^= crosses & (px < xcross)
    return inside


_SUB = (np.arange(4) + 0.5) / 4  # 4x4 supersampling: crisp, anti-aliased edges


def coverage(shape, H, W, cx, cy, r, angle=0.0):
    """Fraction of each pixel [H, W] inside the shape centred at (cx, cy) (computed in the shape's bounding box)."""
    out = np.zeros((H, W), np.float32)
    R = 1.4 * r + 1
    y0, y1 = max(0, int(cy - R)), min(H, int(np.ceil(cy + R)))
    x0, x1 = max(0, int(cx - R)), min(W, int(np.ceil(cx + R)))
    if y0 >= y1 or x0 >= x1:
        return out
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    sy, sx = np.meshgrid(_SUB, _SUB, indexing="ij")
    px = xx[..., None] + sx.ravel() - cx
    py = yy[..., None] + sy.ravel() - cy
    out[y0:y1, x0:x1] = _inside(shape, px, py, r, angle).mean(-1)
    return out


def _radius(rng, S, size):
    lo, hi = SMALL_R if size == "small" else LARGE_R
    return rng.uniform(lo, hi) * S


def _track(motion, shape, frames, H, W, r, rng):
    """Centre x, y, radius and angle per frame for one object."""
    S = min(H, W)
    t = np.linspace(0.0, 1.0, frames)
    cx = np.full(frames, rng.uniform(0.35, 0.65) * W)
    cy = np.full(frames, rng.uniform(0.35, 0.65) * H)
    rr = np.full(frames, r)
    ang = np.zeros(frames)
    if motion in DIRECTIONS:
        dx, dy = DIRECTIONS[motion]
        travel = rng.uniform(0.3, 0.45) * S / (np.sqrt(2) if dx and dy else 1)
        m = 1.3 * r
        for axis, d, size in ((0, dx, W), (1, dy, H)):
            if d == 0:
                continue
            start = rng.uniform(m, size - m - travel)
            pos = start + travel * t
            if d < 0:
                pos = size - pos
            if axis == 0:
                cx = pos
            else:
                cy = pos
    elif motion in ("growing", "shrinking"):
        lo, hi = 0.06 * S, rng.uniform(0.2, 0.24) * S
        grow = lo + (hi - lo) * t
        rr = grow if motion == "growing" else grow[::-1]
    elif motion == "bouncing":  # falls to the floor and back up, twice
        floor = H - 1.2 * r - 1
        top = rng.uniform(1.3 * r + 1, H * 0.45)
        cy = floor - (floor - top) * np.abs(np.cos(np.pi * 2 * t))
    elif motion == "rotating":
        period = {"square": 90, "triangle": 120, "star": 72}.get(shape, 90)  # its rotational symmetry
        turn = np.radians(rng.uniform(0.4, 0.5) * period) * rng.choice([-1, 1])  # ends farthest from its start
        ang = turn * t
    return cx, cy, rr, ang


def render(objects, bg, frames, H, W):
    """objects: [(colour, shape, cx[F], cy[F], r[F], angle[F])]. Returns a float32 clip [3, F, H, W] in [-1, 1]."""
    bgc = np.array(COLORS[bg], np.float32)[:, None, None]
    clip = np.empty((3, frames, H, W), np.float32)
    for f in range(frames):
        img = np.broadcast_to(bgc, (3, H, W)).copy()
        for color, shape, cx, cy, rr, ang in objects:
            a = coverage(shape, H, W, cx[f], cy[f], rr[f], ang[f])[None]
            img = img * (1 - a) + np.array(COLORS[color], np.float32)[:, None, None] * a
        clip[:, f] = img
    return clip * 2 - 1


def draw_single(color, shape, motion, bg, frames, H, W, rng, size=None):
    size = size or rng.choice(SIZES)
    r = _radius(rng, min(H, W), size)
    return render([(color, shape, *_track(motion, shape, frames, H, W, r, rng))], bg, frames, H, W)


def draw_pair(c1, s1, c2, s2, motion, bg, frames, H, W, rng):
    """Two objects side by side (the first on the left) moving apart or together horizontally."""
    S = min(H, W)
    t = np.linspace(0.0, 1.0, frames)
    r1, r2 = rng.uniform(*SMALL_R) * S, rng.uniform(*SMALL_R) * S
    mid = rng.uniform(0.45, 0.55) * W
    near, far = rng.uniform(0.13, 0.17) * W, rng.uniform(0.33, 0.36) * W
    gap = near + (far - near) * t if motion == "moving apart" else far - (far - near) * t
    cy1, cy2 = (np.full(frames, rng.uniform(0.35, 0.65) * H) for _ in range(2))
    objs = [(c1, s1, mid - gap, cy1, np.full(frames, r1), np.zeros(frames)),
            (c2, s2, mid + gap, cy2, np.full(frames, r2), np.zeros(frames))]
    return render(objs, bg, frames, H, W)


def random_clip(rng, frames, H, W, holdout=True, pair_share=0.15):
    """One clip and its caption: a single object most of the time (its size named half the time), else a pair."""
    names = list(COLORS)
    if rng.random() < pair_share:
        c1, c2, bg = rng.choice(names, 3, replace=False)
        s1, s2 = rng.choice(SHAPES), rng.choice(SHAPES)
        m = rng.choice(PAIR_MOTIONS)
        return draw_pair(c1, s1, c2, s2, m, bg, frames, H, W, rng), pair_caption(c1, s1, c2, s2, m, bg)
    while True:
        c, bg = rng.choice(names, 2, replace=False)
        s, m = rng.choice(SHAPES), rng.choice(MOTIONS)
        if not (m == "rotating" and s == "circle") and not (holdout and is_holdout(c, s, m)):
            break
    size = rng.choice(SIZES)
    named = size if rng.random() < 0.5 else None
    return draw_single(c, s, m, bg, frames, H, W, rng, size), caption(c, s, m, bg, named)


def sample_batch(rng, n, frames, H, W, holdout=True):
    clips, caps = zip(*(random_clip(rng, frames, H, W, holdout) for _ in range(n)))
    return np.stack(clips), list(caps)


# ---------------------------------------------------------------- measurements used by evaluate.py
PALETTE_NAMES = list(COLORS)
PALETTE = np.array([COLORS[n] for n in PALETTE_NAMES])


def nearest_colour(rgb):
    return PALETTE_NAMES[int(np.argmin(((PALETTE - rgb) ** 2).sum(-1)))]


def background_of(clip01):
    """Median of the border pixels over all frames. clip01 [F, H, W, 3] in [0, 1]."""
    border = np.concatenate([clip01[:, 0].reshape(-1, 3), clip01[:, -1].reshape(-1, 3),
                             clip01[:, :, 0].reshape(-1, 3), clip01[:, :, -1].reshape(-1, 3)])
    return np.median(border, axis=0)


def object_mask(clip01, bg):
    return np.sqrt(((clip01 - bg) ** 2).sum(-1)) > 0.35


def dominant_colour(pixels):
    """The palette colour most of these pixels are nearest (a mean would let soft edges pull it off)."""
    nearest = np.argmin(((pixels[:, None, :] - PALETTE[None]) ** 2).sum(-1), 1)
    return PALETTE_NAMES[int(np.bincount(nearest, minlength=len(PALETTE)).argmax())]


def hull_area(points):
    """Area of the convex hull of 2-D points (monotone chain)."""
    pts = sorted(set(map(tuple, points)))
    if len(pts) < 3:
        return 0.0

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = lower[:-1] + upper[:-1]
    x, y = np.array(hull, float).T
    return 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))


def largest_component(mask):
    """The largest 4-connected region of a 2-D mask (so a stray speck does not widen the bounding box)."""
    H, W = mask.shape
    seen = np.zeros_like(mask, bool)
    best = None
    for y0, x0 in zip(*np.nonzero(mask)):
        if seen[y0, x0]:
            continue
        stack, comp = [(y0, x0)], []
        seen[y0, x0] = True
        while stack:
            y, x = stack.pop()
            comp.append((y, x))
            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= ny < H and 0 <= nx < W and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        if best is None or len(comp) > len(best):
            best = comp
    out = np.zeros_like(mask, bool)
    if best:
        ys, xs = zip(*best)
        out[list(ys), list(xs)] = True
    return out


def shape_of(mask2d):
    """circle / square / triangle / star from one frame's object mask, whatever its rotation: a star is the one far
    from convex (area over its convex hull's); of the convex ones, compactness = area / (pi * farthest pixel from
    the centroid ^ 2) is 1 for a circle, 2/pi for a square and 0.41 for a triangle. None when too small to tell."""
    m = largest_component(mask2d)
    area = m.sum()
    if area < 12:
        return None
    ys, xs = np.nonzero(m)
    corners = np.concatenate([np.stack([xs + dx, ys + dy], 1) for dx in (0, 1) for dy in (0, 1)])
    if area / max(hull_area(corners), 1.0) < 0.8:
        return "star"
    reach = np.sqrt((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2).max() + 0.5
    compact = area / (np.pi * reach * reach)
    return "circle" if compact > 0.8 else "square" if compact > 0.52 else "triangle"


def measure(clip01):
    """clip01 [F, H, W, 3] in [0, 1]. Returns a dict: object colour, background colour, dx, dy (centroid shift,
    first to last quarter of the frames), area ratio (last/first quarter), shape (majority over frames: the
    classifier is rotation-invariant, so rotating objects need no special case)."""
    Fr, H, W, _ = clip01.shape
    bg = background_of(clip01)
    out = {"background": nearest_colour(bg), "colour": None, "dx": 0.0, "dy": 0.0, "area_ratio": 1.0, "shape": None,
           "y_range": 0.0, "turned": 0.0}
    mask = object_mask(clip01, bg)
    if mask.sum() == 0:
        return out
    out["colour"] = dominant_colour(clip01[mask])
    yy, xx = np.mgrid[0:H, 0:W]
    cents, areas, shapes = [], [], []
    for f in range(Fr):
        m = mask[f]
        areas.append(m.sum())
        cents.append((xx[m].mean(), yy[m].mean()) if m.sum() else (np.nan, np.nan))
        shapes.append(shape_of(m))
    cents = np.array(cents)
    k = max(1, Fr // 4)
    first, last = np.nanmean(cents[:k], 0), np.nanmean(cents[-k:], 0)
    out["dx"], out["dy"] = float(last[0] - first[0]), float(last[1] - first[1])
    out["area_ratio"] = float((np.mean(areas[-k:]) + 1) / (np.mean(areas[:k]) + 1))
    ys = cents[:, 1][~np.isnan(cents[:, 1])]
    out["y_range"] = float(ys.max() - ys.min()) if len(ys) else 0.0
    a, b = mask[0], mask[-1]
    out["turned"] = float(1 - (a & b).sum() / max((a | b).sum(), 1))  # 1 - IoU of the first and last masks
    named = [s for s in shapes if s]
    out["shape"] = max(SHAPES, key=named.count) if named else None  # ties: the first in SHAPES order
    return out


def motion_of(m, min_move):
    """left/right/up/down, a diagonal ("up and left"), growing/shrinking, or static."""
    dx, dy = m["dx"], m["dy"]
    if np.isnan(dx) or np.isnan(dy):
        return "unknown"  # the object is missing from the first or last quarter of the frames
    if max(abs(dx), abs(dy)) < min_move:
        r = m["area_ratio"]
        return "growing" if r > 1.5 else "shrinking" if r < 1 / 1.5 else "static"
    if min(abs(dx), abs(dy)) > 0.5 * max(abs(dx), abs(dy)):
        return ("up" if dy < 0 else "down") + " and " + ("left" if dx < 0 else "right")
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def motion_matches(wanted, m, min_move):
    got = motion_of(m, min_move)
    if wanted in DIRECTIONS or wanted in ("growing", "shrinking"):
        return got == wanted
    if wanted == "bouncing":  # down and back up: the centroid's height spans a range but ends near where it began
        return m["y_range"] >= 2 * min_move and abs(m["dy"]) < m["y_range"] / 2
    if wanted == "rotating":  # stays in place while its outline turns
        return got == "static" and m["turned"] > 0.2
    raise ValueError(f"unknown motion {wanted!r}")
