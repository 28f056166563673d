using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Sora.Runtime;

namespace Sora.Kernels.Cpu;

/// <summary>
/// 3D convolution as an implicit GEMM: y[Cout, positions] = W[Cout, Cin·kT·kH·kW] · im2col(x), the im2col
/// columns gathered straight from x (and the time cache) while packing B̃ panels, never materialised.
/// Output positions are split across workers. Convolutions with 3×3 spatial taps at stride 1 go to
/// <see cref="WinogradConv"/> instead (a quarter of the products), unless the backend pins this path.
/// </summary>
internal static unsafe class CpuConv
{
    public static void Run(CpuBackend backend, ConvInput input, WeightRows w, float[]? bias, float* y, int cout, int ot, int oh, int ow, Conv3dGeometry g)
    {
        if (backend.ConvAlgorithm == ConvAlgorithm.Auto && WinogradConv.Applies(g))
        {
            WinogradConv.Run(backend, input, w, bias, y, cout, ot, oh, ow, g);
            return;
        }
        int k = input.Channels * g.KernelT * g.KernelH * g.KernelW;
        int positions = ot * oh * ow;
        float* wf = (float*)NativeMemory.AlignedAlloc((nuint)cout * (nuint)k * 4, 64);
        try
        {
            // The stored weight (of any kind) is expanded per call, so it stays in its stored form between calls.
            for (int co = 0; co < cout; co++) w.Read(co, 0, k, wf + (long)co * k);
            var geometry = new ConvColumns(input, g, oh, ow);
            int tasks = Math.Clamp(positions / (8 * MicroKernel.NR), 1, backend.Threads * 3);
            backend.For(tasks, task =>
            {
                int p0 = Split(positions, task, tasks), p1 = Split(positions, task + 1, tasks);
                var a = new RowsPackA(wf, k);
                var b = new ConvPackB(geometry, p0);
                var t = new BiasTail(bias, y + p0, positions);
                BlockedGemm.Run(a, b, t, y + p0, positions, cout, p1 - p0, k);
            });
        }
        finally
        {
            NativeMemory.AlignedFree(wf);
        }
    }

    /// <summary>Boundaries on multiples of the micro-tile width so only the last range has a partial panel.</summary>
    private static int Split(int n, int part, int parts) =>
        part == parts ? n : (int)((long)n * part / parts) / MicroKernel.NR * MicroKernel.NR;
}

/// <summary>How im2col column (position) and row (ci, kt, kh, kw) map to input elements.</summary>
internal readonly struct ConvColumns(ConvInput input, Conv3dGeometry g, int oh, int ow)
{
    public ConvInput Input => input;
    public Conv3dGeometry G => g;
    public int OutH => oh;
    public int OutW => ow;
}

/// <summary>Gathers im2col panels: for each depth index, runs of positions along an output row read one input row.</summary>
internal readonly unsafe struct ConvPackB(ConvColumns cols, int pBase) : IPackB
{
    public void Pack(int n0, int nc, int k0, int kc, float* dst)
    {
        const int NR = MicroKernel.NR;
        var g = cols.G;
        var input = cols.Input;
        int ow = cols.OutW, oh = cols.OutH, w = input.Width, h = input.Height;
        int khw = g.KernelH * g.KernelW, kthw = g.KernelT * khw;
        // Runs: stretches of positions along one output row inside one panel; at most one per position.
        var runs = new Run[nc + 1];
        int count = 0;
        for (int jr = 0; jr < nc; jr += NR)
        {
            int nr = Math.Min(NR, nc - jr);
            for (int j = 0; j < nr;)
            {
                int pos = pBase + n0 + jr + j;
                int wo = pos % ow, rest = pos / ow;
                int len = Math.Min(ow - wo, nr - j);
                runs[count++] = new Run { Dst = (long)jr * kc + j, To = rest / oh, Ho = rest % oh, Wo = wo, Len = len };
                j += len;
            }
        }
        // Depth row by depth row, so each input row is read as one sequential stream across all panels.
        // Depth index k0 + p = ((ci·kT + kt)·kH + kh)·kW + kw, stepped incrementally.
        int ci = k0 / kthw, kt = k0 % kthw / khw, kh = k0 % khw / g.KernelW, kw = k0 % g.KernelW;
        int rowKey = -1;
        fixed (Run* rp = runs)
            for (int p = 0; p < kc; p++)
            {
                // The input row of a run depends on (ci, kt, kh) only: look it up once per kW depth rows.
                int key = (ci * g.KernelT + kt) * g.KernelH + kh;
                if (key != rowKey)
                {
                    rowKey = key;
                    for (int q = 0; q < count; q++)
                    {
                        float* plane = input.Frame(ci, rp[q].To * g.StrideT + kt);
                        int hi = rp[q].Ho * g.StrideH + kh - g.PadH0;
                        rp[q].Src = plane == null || (uint)hi >= (uint)h ? null : plane + (long)hi * w;
                    }
                }
                for (int q = 0; q < count; q++)
                {
                    Run* r = rp + q;
                    float* d = dst + r->Dst + p * NR;
                    int len = r->Len;
                    if (r->Src == null)
                    {
                        Zero(d, len);
                        continue;
                    }
                    int wi0 = r->Wo * g.StrideW + kw - g.PadW0;
                    if (g.StrideW == 1)
                    {
                        // Contiguous input: zeros where the run hangs over the left/right edge, one copy between.
                        int lo = Math.Clamp(-wi0, 0, len), hiEnd = Math.Clamp(w - wi0, lo, len);
                        if (lo > 0) Zero(d, lo);
                        Copy(r->Src + wi0 + lo, d + lo, hiEnd - lo);
                        if (hiEnd < len) Zero(d + hiEnd, len - hiEnd);
                    }
                    else
                    {
                        for (int t = 0; t < len; t++)
                        {
                            int wi = wi0 + t * g.StrideW;
                            d[t] = (uint)wi < (uint)w ? r->Src[wi] : 0f;
                        }
                    }
                }
                if (++kw == g.KernelW)
                {
                    kw = 0;
                    if (++kh == g.KernelH)
                    {
                        kh = 0;
                        if (++kt == g.KernelT)
                        {
                            kt = 0;
                            ci++;
                        }
                    }
                }
            }
        // The last panel's columns past the end are zero.
        int tail = nc % NR;
        if (tail != 0)
        {
            float* panel = dst + (long)(nc - tail) * kc;
            for (int p = 0; p < kc; p++) Zero(panel + p * NR + tail, NR - tail);
        }
    }

    private struct Run
    {
        public long Dst;
        public int To, Ho, Wo, Len;
        public float* Src;
    }

    /// <summary>Copies n ≤ a few dozen floats: whole 256-bit vectors (native on AVX2 and AVX-512 machines alike), the
    /// remainder as one overlapping vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Copy(float* src, float* dst, int n)
    {
        if (n >= 8)
        {
            int i = 0;
            for (; i + 8 <= n; i += 8) Vector256.Load(src + i).Store(dst + i);
            if (i < n) Vector256.Load(src + n - 8).Store(dst + n - 8);
        }
        else
            for (int i = 0; i < n; i++) dst[i] = src[i];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Zero(float* dst, int n)
    {
        if (n >= 8)
        {
            int i = 0;
            for (; i + 8 <= n; i += 8) Vector256<float>.Zero.Store(dst + i);
            if (i < n) Vector256<float>.Zero.Store(dst + n - 8);
        }
        else
            for (int i = 0; i < n; i++) dst[i] = 0;
    }
}

/// <summary>Adds a per-output-channel bias to finished rows.</summary>
internal readonly unsafe struct BiasTail(float[]? bias, float* y, long ldy) : IBlockTail
{
    public void Apply(int m0, int mc, int n0, int nc)
    {
        if (bias is null) return;
        for (int r = m0; r < m0 + mc; r++)
        {
            var row = new Span<float>(y + r * ldy + n0, nc);
            System.Numerics.Tensors.TensorPrimitives.Add(row, bias[r], row);
        }
    }
}
