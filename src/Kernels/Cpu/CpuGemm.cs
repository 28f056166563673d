using Sora.Runtime;

namespace Sora.Kernels.Cpu;

/// <summary>y = x·Wᵀ with the weight converted to float32 on the fly, rows of x split across workers.</summary>
internal static unsafe class CpuGemm
{
    public static void Run(CpuBackend backend, float* x, long ldx, Tensor w, float* y, long ldy, int m, int n, int k, GemmTail tail)
    {
        float[] wf = HostArgs.AllAsFloat(w, nameof(w));
        backend.ForRanges(m, 1, (r0, r1) =>
        {
            fixed (float* wp = wf)
                for (long r = r0; r < r1; r++)
                {
                    float* xr = x + r * ldx;
                    float* yr = y + r * ldy;
                    for (int j = 0; j < n; j++) yr[j] = CpuVector.Dot(xr, wp + (long)j * k, k);
                    tail.Apply(yr, (int)r, 0, n);
                }
        });
    }
}
