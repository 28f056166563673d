using System.Runtime.InteropServices;
using Sora.Runtime;

namespace Sora.Kernels.Cpu;

/// <summary>
/// 3D convolution as an implicit GEMM: y[Cout, positions] = W[Cout, Cin·kT·kH·kW] · im2col(x), the im2col
/// columns gathered straight from x (and the time cache) while packing B̃ panels, never materialised.
/// Output positions are split across workers.
/// </summary>
internal static unsafe class CpuConv
{
    public static void Run(CpuBackend backend, ConvInput input, Tensor w, float[]? bias, float* y, int cout, int ot, int oh, int ow, Conv3dGeometry g)
    {
        int k = input.Channels * g.KernelT * g.KernelH * g.KernelW;
        int positions = ot * oh * ow;
        float* wf = (float*)NativeMemory.AlignedAlloc((nuint)cout * (nuint)k * 4, 64);
        try
        {
            var host = (HostStorage)w.Storage;
            for (int co = 0; co < cout; co++) HostArgs.ToFloat(host, w.Offset + (long)co * k, k, wf + (long)co * k);
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
        // A panel's 32 positions fall into at most 33 runs along output rows.
        int* runTo = stackalloc int[NR + 1], runHo = stackalloc int[NR + 1], runWo = stackalloc int[NR + 1], runJ = stackalloc int[NR + 1], runLen = stackalloc int[NR + 1];
        for (int jr = 0; jr < nc; jr += NR)
        {
            float* panel = dst + (long)jr * kc;
            int nr = Math.Min(NR, nc - jr);
            int runs = 0;
            for (int j = 0; j < nr;)
            {
                int pos = pBase + n0 + jr + j;
                int wo = pos % ow, rest = pos / ow;
                int len = Math.Min(ow - wo, nr - j);
                runTo[runs] = rest / oh; runHo[runs] = rest % oh; runWo[runs] = wo; runJ[runs] = j; runLen[runs] = len;
                runs++;
                j += len;
            }
            for (int p = 0; p < kc; p++)
            {
                int kidx = k0 + p;
                int ci = kidx / kthw, r = kidx % kthw;
                int kt = r / khw, kh = r % khw / g.KernelW, kw = r % g.KernelW;
                float* drow = panel + p * NR;
                for (int q = 0; q < runs; q++)
                {
                    float* d = drow + runJ[q];
                    int len = runLen[q];
                    float* plane = input.Frame(ci, runTo[q] * g.StrideT + kt);
                    int hi = runHo[q] * g.StrideH + kh - g.PadH0;
                    if (plane == null || (uint)hi >= (uint)h)
                    {
                        new Span<float>(d, len).Clear();
                        continue;
                    }
                    float* src = plane + (long)hi * w;
                    int wi0 = runWo[q] * g.StrideW + kw - g.PadW0;
                    if (g.StrideW == 1)
                    {
                        // Contiguous input: zeros where the run hangs over the left/right edge, one copy between.
                        int lo = Math.Clamp(-wi0, 0, len), hiEnd = Math.Clamp(w - wi0, lo, len);
                        if (lo > 0) new Span<float>(d, lo).Clear();
                        Buffer.MemoryCopy(src + wi0 + lo, d + lo, (hiEnd - lo) * 4L, (hiEnd - lo) * 4L);
                        if (hiEnd < len) new Span<float>(d + hiEnd, len - hiEnd).Clear();
                    }
                    else
                    {
                        for (int t = 0; t < len; t++)
                        {
                            int wi = wi0 + t * g.StrideW;
                            d[t] = (uint)wi < (uint)w ? src[wi] : 0f;
                        }
                    }
                }
                if (nr < NR) new Span<float>(drow + nr, NR - nr).Clear();
            }
        }
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
