using System.Runtime.InteropServices;

namespace Sora.Kernels.Cpu;

/// <summary>Packs rows m0..m0+mc, depth k0..k0+kc of the left operand as MR-row panels [kc][MR], zero-padded.</summary>
internal unsafe interface IPackA
{
    void Pack(int m0, int mc, int k0, int kc, float* dst);
}

/// <summary>Packs columns n0..n0+nc, depth k0..k0+kc of the right operand as NR-column panels [kc][NR], zero-padded.</summary>
internal unsafe interface IPackB
{
    void Pack(int n0, int nc, int k0, int kc, float* dst);
}

/// <summary>Called once the block C[m0..m0+mc, n0..n0+nc] holds its final sums (bias, activation, residual).</summary>
internal interface IBlockTail
{
    void Apply(int m0, int mc, int n0, int nc);
}

/// <summary>
/// BLIS-style blocked GEMM on one thread: C[m×n] = A[m×k]·B[k×n], B packed per (NC, KC) block, A per
/// (MC, KC) block, the micro-kernel sweeping MR×NR tiles with the B micro-panel hot in L1 and the A
/// block in L2. Operands come through packers, so the same loop serves linear layers (B = Wᵀ converted
/// from F16/BF16 while packing) and implicit-GEMM convolution (B gathered from the input).
/// </summary>
internal static unsafe class BlockedGemm
{
    public const int KC = 512;
    public const int MC = MicroKernel.MR * 6;
    public const int NC = 2048;

    [ThreadStatic] private static Scratch? t_scratch;

    /// <summary>C = A·B; depth blocks are multiples of <paramref name="kAlign"/> (a divisor of KC) except the last.</summary>
    public static void Run<TA, TB, TT>(TA a, TB b, TT tail, float* c, long ldc, int m, int n, int k, int kAlign = 1)
        where TA : struct, IPackA where TB : struct, IPackB where TT : struct, IBlockTail
    {
        if (m <= 0 || n <= 0) return;
        if (k == 0)
        {
            for (int i = 0; i < m; i++) new Span<float>(c + i * ldc, n).Clear();
            tail.Apply(0, m, 0, n);
            return;
        }
        var scratch = t_scratch ??= new Scratch();
        float* bp = scratch.B((long)KC * RoundUp(Math.Min(n, NC), MicroKernel.NR));
        float* ap = scratch.A((long)KC * RoundUp(Math.Min(m, MC), MicroKernel.MR));
        // Equal depth blocks (a short last block would pay the C-tile load/store for little work).
        int kBlocks = (k + KC - 1) / KC;
        int kStep = RoundUp((k + kBlocks - 1) / kBlocks, kAlign);
        for (int jc = 0; jc < n; jc += NC)
        {
            int nc = Math.Min(NC, n - jc);
            for (int pc = 0; pc < k; pc += kStep)
            {
                int kc = Math.Min(kStep, k - pc);
                bool last = pc + kc == k;
                b.Pack(jc, nc, pc, kc, bp);
                for (int ic = 0; ic < m; ic += MC)
                {
                    int mc = Math.Min(MC, m - ic);
                    a.Pack(ic, mc, pc, kc, ap);
                    for (int jr = 0; jr < nc; jr += MicroKernel.NR)
                    {
                        int nr = Math.Min(MicroKernel.NR, nc - jr);
                        float* bpanel = bp + (long)jr * kc;
                        for (int ir = 0; ir < mc; ir += MicroKernel.MR)
                        {
                            int mr = Math.Min(MicroKernel.MR, mc - ir);
                            MicroKernel.Run(ap + (long)ir * kc, bpanel, kc, c + (ic + ir) * ldc + jc + jr, ldc, mr, nr, pc > 0);
                        }
                    }
                    if (last) tail.Apply(ic, mc, jc, nc);
                }
            }
        }
    }

    public static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;

    /// <summary>Per-thread 64-byte aligned packing buffers, grown on demand and kept for the thread's life.</summary>
    private sealed class Scratch
    {
        private float* _a, _b;
        private long _aLength, _bLength;

        public float* A(long length) => Grow(ref _a, ref _aLength, length);
        public float* B(long length) => Grow(ref _b, ref _bLength, length);

        private static float* Grow(ref float* p, ref long have, long need)
        {
            if (need <= have) return p;
            if (p != null) NativeMemory.AlignedFree(p);
            p = (float*)NativeMemory.AlignedAlloc((nuint)need * 4, 64);
            have = need;
            return p;
        }

        ~Scratch()
        {
            if (_a != null) NativeMemory.AlignedFree(_a);
            if (_b != null) NativeMemory.AlignedFree(_b);
        }
    }
}
