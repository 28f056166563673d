using Sora.Runtime;

namespace Sora.Kernels.Cpu;

/// <summary>Direct 3D convolution: one output plane per work item, accumulating shifted input rows.</summary>
internal static unsafe class CpuConv
{
    public static void Run(CpuBackend backend, ConvInput input, float[] w, float[]? bias, float* y, int cout, int ot, int oh, int ow, Conv3dGeometry g)
    {
        int cin = input.Channels, h = input.Height, wd = input.Width;
        int kvol = g.KernelT * g.KernelH * g.KernelW;
        backend.For(cout * ot, item =>
        {
            int co = item / ot, to = item % ot;
            float* dst = y + (long)item * oh * ow;
            new Span<float>(dst, oh * ow).Fill(bias is null ? 0f : bias[co]);
            fixed (float* wp = w)
                for (int ci = 0; ci < cin; ci++)
                    for (int kt = 0; kt < g.KernelT; kt++)
                    {
                        float* plane = input.Frame(ci, to * g.StrideT + kt);
                        if (plane == null) continue;
                        float* wk = wp + ((long)co * cin + ci) * kvol + kt * g.KernelH * g.KernelW;
                        for (int kh = 0; kh < g.KernelH; kh++)
                            for (int ho = 0; ho < oh; ho++)
                            {
                                int hi = ho * g.StrideH + kh - g.PadH0;
                                if ((uint)hi >= (uint)h) continue;
                                float* src = plane + (long)hi * wd;
                                float* drow = dst + (long)ho * ow;
                                for (int kw = 0; kw < g.KernelW; kw++)
                                {
                                    float wv = wk[kh * g.KernelW + kw];
                                    for (int wo = 0; wo < ow; wo++)
                                    {
                                        int wi = wo * g.StrideW + kw - g.PadW0;
                                        if ((uint)wi < (uint)wd) drow[wo] += wv * src[wi];
                                    }
                                }
                            }
                    }
        });
    }
}
