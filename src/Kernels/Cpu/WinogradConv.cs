using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sora.Runtime;

namespace Sora.Kernels.Cpu;

/// <summary>
/// 3D convolution with 3×3 spatial taps at stride 1 by Winograd's minimal filtering F(4×4, 3×3) (Lavin and Gray,
/// 2016). Each 4×4 tile of output frame t, channel co is
/// <code>Y = Aᵀ [ Σ_{ci, kt} (G g[co, ci, kt] Gᵀ) ⊙ (Bᵀ d[ci, t·sT + kt] B) ] A</code>
/// with g the 3×3 spatial filter and d the 6×6 input patch under the tile (zero outside the input: the padding).
/// The time taps join the input channels in the reduction, so at each of the 36 transform points ξ the sum is one
/// GEMM M[ξ] (tiles × Cout) = V[ξ] (tiles × Cin·kT) · U[ξ]ᵀ (Cin·kT × Cout): 36 products per tile and reduction
/// row where the direct sum takes 144.
/// <para>
/// Interpolation points 0, 1, −1, 2, −1/2 and ∞. In a float64 simulation with float32 transforms and GEMMs over
/// 288–3072 reduction rows they gave relative errors 0.9–1.9·10⁻⁶, against 1.4–2.9·10⁻⁶ for 0, ±1, ±2 (the same for
/// 0, ±1, ±1/2), 0.5·10⁻⁶ for F(2×2, 3×3) and 0.3·10⁻⁶ for the direct sum; this code measures 0.7–2.1·10⁻⁶ against
/// the float64 convolution (WinogradConvTests), the implicit GEMM 0.4·10⁻⁶.
/// </para>
/// <para>
/// Work runs in blocks of up to 64 tiles of one output frame (and, when there are few blocks, a range of output
/// channels). Per depth block the input patches are transformed straight into the micro-kernel's Ã panels (8 tiles),
/// the 36 GEMMs accumulate into M, and the finished block is transformed back into the output. U, in B̃ panels
/// (32 output channels), is transformed once per call and shared by the blocks when there are more than two;
/// otherwise each block transforms the panels it needs as it goes.
/// </para>
/// </summary>
internal static unsafe class WinogradConv
{
    private const int Tile = 4, Points = 36, MR = MicroKernel.MR, NR = MicroKernel.NR;
    private const int MaxBlockTiles = 8 * MR, DepthBlock = 256;

    /// <summary>
    /// The stride between the 36 per-point arrays (V, M, U): one cache line more than their length, because the
    /// transforms touch all 36 at once and at a multiple of 4 KiB apart they would fall in one L1 set.
    /// </summary>
    private static long Skewed(long floats) => floats + 16;

    /// <summary>3×3 spatial taps at spatial stride 1, any time kernel, stride and padding, on AVX2 + FMA machines.</summary>
    public static bool Applies(Conv3dGeometry g) =>
        g.KernelH == 3 && g.KernelW == 3 && g.StrideH == 1 && g.StrideW == 1 && Avx2.IsSupported && Fma.IsSupported;

    public static void Run(CpuBackend backend, ConvInput input, WeightRows w, float[]? bias, float* y, int cout, int ot, int oh, int ow, Conv3dGeometry g)
    {
        var l = new Layout(input.Channels * g.KernelT, cout, oh, ow, ot, backend.Threads);
        // U from the backend's pool: the next call of the same width reuses it instead of faulting in fresh pages.
        using var shared = l.SharedFilters ? backend.Allocate(DType.F32, Points, checked((int)l.PointU)) : null;
        float* u = shared is null ? null : HostArgs.F32Dense(shared, "U");
        if (shared is not null)
            backend.For(l.CoPanels, q =>
            {
                for (int p0 = 0; p0 < l.Depth; p0 += l.DepthStep)
                {
                    int kc = Math.Min(l.DepthStep, l.Depth - p0);
                    TransformFilterPanel(w, l, q, p0, kc, u + l.UPanel(0, p0, kc, q), l.PointU);
                }
            });
        backend.For(l.Blocks * l.CoParts, task =>
        {
            int block = task / l.CoParts, part = task % l.CoParts;
            int q0 = l.CoPanels * part / l.CoParts, q1 = l.CoPanels * (part + 1) / l.CoParts;
            new BlockWork(l, input, g, block / l.BlocksPerFrame, block % l.BlocksPerFrame, q0, q1).Run(w, u, bias, y);
        });
    }

    /// <summary>Sizes and the split of the work.</summary>
    private readonly struct Layout
    {
        public Layout(int depth, int cout, int oh, int ow, int ot, int threads)
        {
            Depth = depth;
            Cout = cout;
            OutH = oh;
            OutW = ow;
            OutT = ot;
            CoPanels = (cout + NR - 1) / NR;
            TilesW = (ow + Tile - 1) / Tile;
            int perFrame = (oh + Tile - 1) / Tile * TilesW;
            TilesPerFrame = perFrame;
            BlocksPerFrame = (perFrame + MaxBlockTiles - 1) / MaxBlockTiles;
            BlockTiles = BlockedGemm.RoundUp((perFrame + BlocksPerFrame - 1) / BlocksPerFrame, MR);
            Blocks = ot * BlocksPerFrame;
            // Few tile blocks (small frames): also split the output channels, so every worker has work.
            CoParts = Blocks >= 2 * threads ? 1 : Math.Min(CoPanels, (2 * threads + Blocks - 1) / Blocks);
            // U is 4× the weight: written out and read back it costs more than the GEMMs save when only one or two
            // blocks of tiles use it; then each block transforms the filter panels it needs as it goes, in cache.
            SharedFilters = Blocks > 2;
            // Equal depth blocks, as BlockedGemm cuts them; shorter without shared U, so V and a U panel share L2.
            int step = SharedFilters ? DepthBlock : DepthBlock / 2;
            int kBlocks = (depth + step - 1) / step;
            DepthStep = (depth + kBlocks - 1) / kBlocks;
        }

        public int Depth { get; }
        public int Cout { get; }
        public int OutH { get; }
        public int OutW { get; }
        public int OutT { get; }
        public int CoPanels { get; }
        public int DepthStep { get; }
        public int TilesW { get; }
        public int TilesPerFrame { get; }
        public int BlocksPerFrame { get; }
        public int BlockTiles { get; }
        public int Blocks { get; }
        public int CoParts { get; }
        public bool SharedFilters { get; }

        /// <summary>Floats of U per transform point: depth × Cout rounded up to whole panels.</summary>
        public long PointU => Skewed((long)Depth * CoPanels * NR);

        /// <summary>Where U[ξ]'s B̃ panel of output channels [32q, 32q + 32) and the depth block at p0 (kc deep) starts.</summary>
        public long UPanel(int xi, int p0, int kc, int q) => xi * PointU + (long)p0 * CoPanels * NR + (long)q * kc * NR;
    }

    /// <summary>
    /// U = G g Gᵀ for output channels [32q, 32q + 32) and depth rows [p0, p0 + kc), as 36 B̃ panels [kc][32] (ξ-th at
    /// dst + ξ·pointStride), 8 channels at a time in the lanes; channels past Cout are zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformFilterPanel(WeightRows w, Layout l, int q, int p0, int kc, float* dst, long pointStride)
    {
        int k = kc * 9;
        var scratch = Scratch.Get();
        float* rows = scratch.Rows((long)NR * k), taps = scratch.Taps((long)k * NR);
        int live = Math.Min(NR, l.Cout - q * NR);
        // Weight layout [co][ci][kt][kh][kw]: depth row p = ci·kT + kt holds the 3×3 filter at 9p.
        for (int j = 0; j < live; j++) w.Read(q * NR + j, p0 * 9, k, rows + (long)j * k);
        new Span<float>(rows + (long)live * k, (NR - live) * k).Clear();
        // Channels innermost ([depth·9][32]), so each tap of 8 channels is one load.
        Transpose.Block(rows, k, NR, k, taps, NR);
        Vector256<float>* f = stackalloc Vector256<float>[9];
        Vector256<float>* uv = stackalloc Vector256<float>[Points];
        for (int kk = 0; kk < kc; kk++)
            for (int j0 = 0; j0 < NR; j0 += 8)
            {
                float* src = taps + kk * 9 * NR + j0;
                for (int e = 0; e < 9; e++) f[e] = Vector256.Load(src + e * NR);
                FilterTransform(f, uv);
                for (int xi = 0; xi < Points; xi++) uv[xi].Store(dst + xi * pointStride + kk * NR + j0);
            }
    }

    /// <summary>One block of tiles of one output frame, for the output channels of panels [q0, q1).</summary>
    private readonly struct BlockWork
    {
        private readonly Layout _l;
        private readonly ConvInput _input;
        private readonly Conv3dGeometry _g;
        private readonly int _frame, _first, _count, _q0, _q1;

        public BlockWork(Layout l, ConvInput input, Conv3dGeometry g, int frame, int blockInFrame, int q0, int q1)
        {
            _l = l;
            _input = input;
            _g = g;
            _frame = frame;
            _first = blockInFrame * l.BlockTiles;
            _count = Math.Min(l.BlockTiles, l.TilesPerFrame - _first);
            _q0 = q0;
            _q1 = q1;
        }

        private int Panels => (_count + MR - 1) / MR;

        /// <summary>Row stride of M: the block's output channels rounded up to whole panels.</summary>
        private int Ldm => (_q1 - _q0) * NR;

        /// <summary>The block's output; U is the shared transformed filter, or null to transform panels here as needed.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(WeightRows w, float* u, float[]? bias, float* y)
        {
            var scratch = Scratch.Get();
            int panels = Panels;
            long pointV = Skewed((long)panels * MR * _l.DepthStep), pointM = Skewed((long)panels * MR * Ldm), pointU = Skewed((long)_l.DepthStep * NR);
            float* v = scratch.V(Points * pointV);
            float* m = scratch.M(Points * pointM);
            float* own = u == null ? scratch.U(Points * pointU) : null;
            float* patches = scratch.Patches(Points * (long)PatchStride + RowFloats);
            // Lanes past the block's last tile stay finite (their rows of M are never read).
            new Span<float>(patches, Points * PatchStride).Clear();
            for (int p0 = 0; p0 < _l.Depth; p0 += _l.DepthStep)
            {
                int kc = Math.Min(_l.DepthStep, _l.Depth - p0);
                long pointA = Skewed((long)panels * MR * kc);
                TransformInput(p0, kc, patches, v);
                if (u != null)
                {
                    // V[ξ] stays in L1/L2 while the U panels stream past.
                    for (int xi = 0; xi < Points; xi++)
                        for (int q = _q0; q < _q1; q++)
                            Gemm(v + xi * pointA, u + _l.UPanel(xi, p0, kc, q), kc, m + xi * pointM + (q - _q0) * NR, p0 > 0);
                    continue;
                }
                for (int q = _q0; q < _q1; q++)
                {
                    TransformFilterPanel(w, _l, q, p0, kc, own, pointU);
                    for (int xi = 0; xi < Points; xi++)
                        Gemm(v + xi * pointA, own + xi * pointU, kc, m + xi * pointM + (q - _q0) * NR, p0 > 0);
                }
            }
            TransformOutput(m, pointM, bias, y);
        }

        /// <summary>C (+)= Ã·B̃ for every tile panel against one B̃ panel (32 output channels).</summary>
        private void Gemm(float* a, float* b, int kc, float* c, bool accumulate)
        {
            for (int p = 0, panels = Panels; p < panels; p++)
                MicroKernel.Run(a + (long)p * MR * kc, b, kc, c + (long)p * MR * Ldm, Ldm, MR, NR, accumulate);
        }

        /// <summary>Row stride of the patch table: the block's tiles, whole panels, and 4 lanes of spill.</summary>
        private int PatchStride => Panels * MR + 8;

        /// <summary>Floats of the staged input row: 4 columns per tile of a block's tile row, 4 more read past its end.</summary>
        private const int RowFloats = 4 * MaxBlockTiles + 8;

        /// <summary>V = Bᵀ d B for depth rows [p0, p0 + kc) of every tile, written as Ã panels [kc][8 tiles] per ξ.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void TransformInput(int p0, int kc, float* patches, float* v)
        {
            int panels = Panels, kT = _g.KernelT, ld = PatchStride;
            long point = Skewed((long)panels * MR * kc);
            Vector256<float>* d = stackalloc Vector256<float>[Points];
            for (int kk = 0; kk < kc; kk++)
            {
                int depthRow = p0 + kk;
                float* plane = _input.Frame(depthRow / kT, _frame * _g.StrideT + depthRow % kT);
                if (plane == null)
                {
                    for (int p = 0; p < panels; p++)
                        for (int xi = 0; xi < Points; xi++) Vector256<float>.Zero.Store(v + xi * point + (long)p * MR * kc + kk * MR);
                    continue;
                }
                Patches(plane, patches, patches + Points * ld);
                for (int p = 0; p < panels; p++)
                {
                    for (int e = 0; e < Points; e++) d[e] = Vector256.Load(patches + e * ld + p * MR);
                    InputTransform(d);
                    float* dst = v + (long)p * MR * kc + kk * MR;
                    for (int xi = 0; xi < Points; xi++) d[xi].Store(dst + xi * point);
                }
            }
        }

        /// <summary>
        /// The 6×6 input patches of the block's tiles in one plane, as a table [36][tiles] (element 6r + c of every
        /// tile in a row), zero outside the plane. Per tile row and patch row, the input row is staged (zero padded)
        /// and read 4 tiles at a time: their 4-column groups transposed give columns 0–3, and the groups one tile on
        /// give columns 4–5. A row's last group may write up to 3 lanes past its tiles: into the next tile row's,
        /// which are written after, or into the table's slack.
        /// </summary>
        private void Patches(float* plane, float* table, float* row)
        {
            int h = _input.Height, w = _input.Width, ld = PatchStride;
            for (int t = _first; t < _first + _count;)
            {
                int ty = t / _l.TilesW, x0 = t % _l.TilesW;
                int n = Math.Min(_l.TilesW - x0, _first + _count - t), groups = (n + 3) / 4;
                int span = 16 * groups + 4, col0 = Tile * x0 - _g.PadW0;
                int lo = Math.Clamp(-col0, 0, span), hi = Math.Clamp(w - col0, lo, span);
                float* at = table + (t - _first);
                for (int r = 0; r < 6; r++)
                {
                    int ih = Tile * ty + r - _g.PadH0;
                    if ((uint)ih >= (uint)h)
                    {
                        for (int c = 0; c < 6; c++) new Span<float>(at + (6 * r + c) * ld, 4 * groups).Clear();
                        continue;
                    }
                    float* src = plane + (long)ih * w + col0;
                    new Span<float>(row, lo).Clear();
                    Buffer.MemoryCopy(src + lo, row + lo, (hi - lo) * 4L, (hi - lo) * 4L);
                    new Span<float>(row + hi, span - hi).Clear();
                    float* e0 = at + 6 * r * ld;
                    for (int gi = 0; gi < groups; gi++)
                    {
                        float* x = row + 16 * gi;
                        Vector128<float> a0 = Vector128.Load(x), a1 = Vector128.Load(x + 4), a2 = Vector128.Load(x + 8);
                        Vector128<float> a3 = Vector128.Load(x + 12), a4 = Vector128.Load(x + 16);
                        Vector128<float> t0 = Sse.UnpackLow(a0, a1), t1 = Sse.UnpackLow(a2, a3);
                        Vector128<float> t2 = Sse.UnpackHigh(a0, a1), t3 = Sse.UnpackHigh(a2, a3);
                        Vector128<float> s0 = Sse.UnpackLow(a1, a2), s1 = Sse.UnpackLow(a3, a4);
                        float* e = e0 + 4 * gi;
                        Sse.MoveLowToHigh(t0, t1).Store(e);
                        Sse.MoveHighToLow(t1, t0).Store(e + ld);
                        Sse.MoveLowToHigh(t2, t3).Store(e + 2 * ld);
                        Sse.MoveHighToLow(t3, t2).Store(e + 3 * ld);
                        Sse.MoveLowToHigh(s0, s1).Store(e + 4 * ld);
                        Sse.MoveHighToLow(s1, s0).Store(e + 5 * ld);
                    }
                }
                t += n;
            }
        }

        /// <summary>Y = Aᵀ M A plus the bias for every tile of the block, 8 output channels at a time, into y.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void TransformOutput(float* m, long pointM, float[]? bias, float* y)
        {
            int oh = _l.OutH, ow = _l.OutW;
            long plane = (long)oh * ow, channel = _l.OutT * plane;
            int co0 = _q0 * NR, co1 = Math.Min(_l.Cout, _q1 * NR);
            Vector256<float>* mv = stackalloc Vector256<float>[Points];
            float* tile = stackalloc float[16 * 8];
            for (int i = 0; i < _count; i++)
            {
                int t = _first + i;
                int row0 = t / _l.TilesW * Tile, col0 = t % _l.TilesW * Tile;
                int rows = Math.Min(Tile, oh - row0), cols = Math.Min(Tile, ow - col0);
                for (int co = co0; co < co1; co += 8)
                {
                    float* src = m + (long)i * Ldm + (co - co0);
                    for (int xi = 0; xi < Points; xi++) mv[xi] = Vector256.Load(src + xi * pointM);
                    OutputTransform(mv);
                    for (int e = 0; e < 16; e++) mv[e].Store(tile + e * 8);
                    int lanes = Math.Min(8, co1 - co);
                    for (int lane = 0; lane < lanes; lane++)
                    {
                        float b = bias?[co + lane] ?? 0f;
                        float* dst = y + (co + lane) * channel + _frame * plane + (long)row0 * ow + col0;
                        for (int r = 0; r < rows; r++)
                            for (int c = 0; c < cols; c++) dst[r * ow + c] = tile[(r * 4 + c) * 8 + lane] + b;
                    }
                }
            }
        }
    }

    // ---- the transforms, on 8 lanes at once ------------------------------------------------------------

    /// <summary>u = G g Gᵀ: f holds the 3×3 filter row-major, u receives 6×6 row-major.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FilterTransform(Vector256<float>* f, Vector256<float>* u)
    {
        Vector256<float>* t = stackalloc Vector256<float>[18];
        for (int c = 0; c < 3; c++) FilterRow(f[c], f[3 + c], f[6 + c], t + c, 3);
        for (int r = 0; r < 6; r++) FilterRow(t[3 * r], t[3 * r + 1], t[3 * r + 2], u + 6 * r, 1);
    }

    /// <summary>
    /// G·(g0, g1, g2) with G rows (1, 0, 0), −(1, 1, 1)/3, (1, −1, 1)/3, (1, 2, 4)/15, (−16, 8, −4)/15, (0, 0, 1)
    /// (the points 0, 1, −1, 2, −1/2, ∞), written at dst[0], dst[stride], …
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FilterRow(Vector256<float> g0, Vector256<float> g1, Vector256<float> g2, Vector256<float>* dst, int stride)
    {
        Vector256<float> third = Vector256.Create(1f / 3), fifteenth = Vector256.Create(1f / 15);
        dst[0] = g0;
        dst[stride] = -(g0 + g1 + g2) * third;
        dst[2 * stride] = (g0 - g1 + g2) * third;
        dst[3 * stride] = Fma.MultiplyAdd(Vector256.Create(4f), g2, Fma.MultiplyAdd(Vector256.Create(2f), g1, g0)) * fifteenth;
        dst[4 * stride] = Fma.MultiplyAdd(Vector256.Create(-4f), g2, Fma.MultiplyAdd(Vector256.Create(8f), g1, Vector256.Create(-16f) * g0)) * fifteenth;
        dst[5 * stride] = g2;
    }

    /// <summary>d ← Bᵀ d B in place (6×6 row-major): rows, then columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void InputTransform(Vector256<float>* d)
    {
        for (int r = 0; r < 6; r++) InputRow(d + 6 * r, 1);
        for (int c = 0; c < 6; c++) InputRow(d + c, 6);
    }

    /// <summary>
    /// x ← Bᵀx (stride apart) with Bᵀ rows (1, 3/2, −2, −3/2, 1, 0), (0, −1, −5/2, −1/2, 1, 0), (0, 1, 1/2, −5/2, 1, 0),
    /// (0, −1/2, −1, 1/2, 1, 0), (0, 2, −1, −2, 1, 0), (0, 1, 3/2, −2, −3/2, 1).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void InputRow(Vector256<float>* x, int stride)
    {
        Vector256<float> d0 = x[0], d1 = x[stride], d2 = x[2 * stride], d3 = x[3 * stride], d4 = x[4 * stride], d5 = x[5 * stride];
        Vector256<float> half = Vector256.Create(0.5f), three2 = Vector256.Create(1.5f), five2 = Vector256.Create(2.5f), two = Vector256.Create(2f);
        x[0] = Fma.MultiplyAdd(three2, d1 - d3, Fma.MultiplyAdd(-two, d2, d0 + d4));
        x[stride] = Fma.MultiplyAdd(-half, d3, Fma.MultiplyAdd(-five2, d2, d4 - d1));
        x[2 * stride] = Fma.MultiplyAdd(-five2, d3, Fma.MultiplyAdd(half, d2, d4 + d1));
        x[3 * stride] = Fma.MultiplyAdd(half, d3 - d1, d4 - d2);
        x[4 * stride] = Fma.MultiplyAdd(two, d1 - d3, d4 - d2);
        x[5 * stride] = Fma.MultiplyAdd(three2, d2 - d4, Fma.MultiplyAdd(-two, d3, d1 + d5));
    }

    /// <summary>m ← Aᵀ m A (6×6 row-major in, 4×4 row-major out in m[0..16)): rows, then columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OutputTransform(Vector256<float>* m)
    {
        Vector256<float>* z = stackalloc Vector256<float>[24];
        for (int r = 0; r < 6; r++) OutputRow(m + 6 * r, 1, z + 4 * r, 1);
        for (int c = 0; c < 4; c++) OutputRow(z + c, 4, m + c, 4);
    }

    /// <summary>
    /// Aᵀx (six values stride apart in, four out) with Aᵀ rows (1, 1, 1, 1, 1, 0), (0, 1, −1, 2, −1/2, 0),
    /// (0, 1, 1, 4, 1/4, 0), (0, 1, −1, 8, −1/8, 1).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void OutputRow(Vector256<float>* x, int stride, Vector256<float>* dst, int dstStride)
    {
        Vector256<float> m0 = x[0], m3 = x[3 * stride], m4 = x[4 * stride], m5 = x[5 * stride];
        Vector256<float> sum = x[stride] + x[2 * stride], diff = x[stride] - x[2 * stride];
        dst[0] = m0 + sum + m3 + m4;
        dst[dstStride] = Fma.MultiplyAdd(Vector256.Create(-0.5f), m4, Fma.MultiplyAdd(Vector256.Create(2f), m3, diff));
        dst[2 * dstStride] = Fma.MultiplyAdd(Vector256.Create(0.25f), m4, Fma.MultiplyAdd(Vector256.Create(4f), m3, sum));
        dst[3 * dstStride] = Fma.MultiplyAdd(Vector256.Create(-0.125f), m4, Fma.MultiplyAdd(Vector256.Create(8f), m3, diff)) + m5;
    }

    /// <summary>Per-thread 64-byte aligned buffers, grown on demand and kept for the thread's life (no page faults per call).</summary>
    private sealed class Scratch
    {
        [ThreadStatic] private static Scratch? t_scratch;
        private readonly float*[] _buffers = new float*[6];
        private readonly long[] _lengths = new long[6];

        public static Scratch Get() => t_scratch ??= new Scratch();

        public float* V(long length) => Grow(0, length);
        public float* M(long length) => Grow(1, length);
        public float* Patches(long length) => Grow(2, length);
        public float* Rows(long length) => Grow(3, length);
        public float* U(long length) => Grow(4, length);
        public float* Taps(long length) => Grow(5, length);

        private float* Grow(int slot, long need)
        {
            if (need <= _lengths[slot]) return _buffers[slot];
            if (_buffers[slot] != null) NativeMemory.AlignedFree(_buffers[slot]);
            _buffers[slot] = (float*)NativeMemory.AlignedAlloc((nuint)need * 4, 64);
            _lengths[slot] = need;
            return _buffers[slot];
        }

        ~Scratch()
        {
            foreach (float* p in _buffers)
                if (p != null) NativeMemory.AlignedFree(p);
        }
    }
}
