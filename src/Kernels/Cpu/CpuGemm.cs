using Sora.Runtime;

namespace Sora.Kernels.Cpu;

/// <summary>
/// y = epilogue(x·Wᵀ + b) through <see cref="BlockedGemm"/>: the work is cut into row (or, for few rows,
/// column) ranges run by separate workers, each with its own packing buffers.
/// </summary>
internal static unsafe class CpuGemm
{
    public static void Run(CpuBackend backend, float* x, long ldx, Tensor w, float* y, long ldy, int m, int n, int k, GemmTail tail)
    {
        var host = (HostStorage)w.Storage;
        var weights = new WeightRows(host, w.Offset, k);
        // Enough row ranges to balance two noisy workers, but each big enough to amortise packing W.
        int mTasks = Math.Clamp(m / (4 * MicroKernel.MR), 1, backend.Threads * 2);
        int nTasks = mTasks >= backend.Threads ? 1 : Math.Clamp(n / (4 * MicroKernel.NR), 1, backend.Threads * 2 / mTasks);
        backend.For(mTasks * nTasks, task =>
        {
            int mt = task / nTasks, nt = task % nTasks;
            int m0 = (int)((long)m * mt / mTasks), m1 = (int)((long)m * (mt + 1) / mTasks);
            int n0 = RoundDown((int)((long)n * nt / nTasks)), n1 = nt == nTasks - 1 ? n : RoundDown((int)((long)n * (nt + 1) / nTasks));
            var a = new RowsPackA(x + m0 * ldx, ldx);
            var b = new WeightPackB(weights, n0);
            var t = new GemmBlockTail(tail, y + m0 * ldy, ldy, m0, n0);
            BlockedGemm.Run(a, b, t, y + m0 * ldy + n0, ldy, m1 - m0, n1 - n0, k);
        });
    }

    private static int RoundDown(int v) => v / MicroKernel.NR * MicroKernel.NR;
}

/// <summary>Row-major [M, K] activations with row stride ld as the left operand.</summary>
internal readonly unsafe struct RowsPackA(float* x, long ld) : IPackA
{
    public void Pack(int m0, int mc, int k0, int kc, float* dst)
    {
        const int MR = MicroKernel.MR;
        for (int ir = 0; ir < mc; ir += MR)
        {
            float* panel = dst + (long)ir * kc;
            int mr = Math.Min(MR, mc - ir);
            for (int i = 0; i < mr; i++)
            {
                float* src = x + (m0 + ir + i) * ld + k0;
                for (int p = 0; p < kc; p++) panel[p * MR + i] = src[p];
            }
            for (int i = mr; i < MR; i++)
                for (int p = 0; p < kc; p++) panel[p * MR + i] = 0;
        }
    }
}

/// <summary>Rows of a weight [N, K] of any dtype; a row segment is converted to float32 when read.</summary>
internal readonly unsafe struct WeightRows(HostStorage storage, long offset, int k)
{
    public void Read(int row, int k0, int count, float* dst) => HostArgs.ToFloat(storage, offset + (long)row * k + k0, count, dst);
}

/// <summary>Wᵀ as the right operand: column n of B is row n of W, converted while packing.</summary>
internal readonly unsafe struct WeightPackB(WeightRows w, int nBase) : IPackB
{
    public void Pack(int n0, int nc, int k0, int kc, float* dst)
    {
        const int NR = MicroKernel.NR;
        float* row = stackalloc float[BlockedGemm.KC];
        for (int jr = 0; jr < nc; jr += NR)
        {
            float* panel = dst + (long)jr * kc;
            int nr = Math.Min(NR, nc - jr);
            for (int j = 0; j < nr; j++)
            {
                w.Read(nBase + n0 + jr + j, k0, kc, row);
                for (int p = 0; p < kc; p++) panel[p * NR + j] = row[p];
            }
            for (int j = nr; j < NR; j++)
                for (int p = 0; p < kc; p++) panel[p * NR + j] = 0;
        }
    }
}

/// <summary>Applies the GEMM epilogue to finished blocks (rows relative to the task's first row).</summary>
internal readonly unsafe struct GemmBlockTail(GemmTail tail, float* y, long ldy, int mBase, int nBase) : IBlockTail
{
    public void Apply(int m0, int mc, int n0, int nc)
    {
        for (int r = m0; r < m0 + mc; r++) tail.Apply(y + r * ldy, mBase + r, nBase + n0, nc);
    }
}
