using Sora.Runtime;
using Tensor = Sora.Runtime.Tensor;

namespace Sora.Kernels.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void Conv3d(Tensor x, Tensor w, Tensor? bias, Tensor y, Conv3dGeometry geometry, Tensor? timeCache = null)
    {
        CheckGeometry(geometry);
        HostArgs.Host(w, nameof(w));
        HostArgs.RequireRank(w, nameof(w), 5);
        HostArgs.RequireRank(x, nameof(x), 4);
        HostArgs.RequireShape(w, nameof(w), w.Dim(0), x.Dim(0), geometry.KernelT, geometry.KernelH, geometry.KernelW);
        HostArgs.RequireContiguous(w, nameof(w));
        Conv3d(x, WeightRows.Dense(w, DenseWeight.RowLength(w)), w.Dim(0), bias, y, geometry, timeCache);
    }

    public void Conv3d(Tensor x, Weight w, Tensor? bias, Tensor y, Conv3dGeometry geometry, Tensor? timeCache = null)
    {
        ArgumentNullException.ThrowIfNull(w);
        CheckGeometry(geometry);
        if (w is DenseWeight d)
        {
            HostArgs.RequireRank(x, nameof(x), 4);
            Conv3d(x, d.Kernel(x.Dim(0), geometry), bias, y, geometry, timeCache);
            return;
        }
        HostArgs.RequireRank(x, nameof(x), 4);
        long k = (long)x.Dim(0) * geometry.KernelT * geometry.KernelH * geometry.KernelW;
        if (w.In != k)
            throw new ArgumentException($"w [{w.Out}, {w.In}] ({w.Format}) does not fit x {x.ShapeString} under {geometry}: expected [Cout, {k}]", nameof(w));
        Conv3d(x, WeightRows.Of(w, nameof(w)), w.Out, bias, y, geometry, timeCache);
    }

    private static void CheckGeometry(Conv3dGeometry geometry)
    {
        var g = geometry;
        if (g.KernelT <= 0 || g.KernelH <= 0 || g.KernelW <= 0 || g.StrideT <= 0 || g.StrideH <= 0 || g.StrideW <= 0)
            throw new ArgumentException($"kernel and stride must be positive: {g}", nameof(geometry));
        if (g.PadT0 < 0 || g.PadT1 < 0 || g.PadH0 < 0 || g.PadH1 < 0 || g.PadW0 < 0 || g.PadW1 < 0)
            throw new ArgumentException($"padding must not be negative: {g}", nameof(geometry));
    }

    private void Conv3d(Tensor x, WeightRows w, int cout, Tensor? bias, Tensor y, Conv3dGeometry geometry, Tensor? timeCache)
    {
        var g = geometry;
        float* xp = HostArgs.F32Dense(x, nameof(x));
        HostArgs.RequireRank(x, nameof(x), 4);
        int cin = x.Dim(0), t = x.Dim(1), h = x.Dim(2), wd = x.Dim(3);
        int tc = 0;
        float* cp = null;
        if (timeCache is not null)
        {
            cp = HostArgs.F32Dense(timeCache, nameof(timeCache));
            HostArgs.RequireRank(timeCache, nameof(timeCache), 4);
            tc = timeCache.Dim(1);
            HostArgs.RequireShape(timeCache, nameof(timeCache), cin, tc, h, wd);
        }
        // Cache frames replace left padding; a cache longer than the padding extends the input in front.
        int left = Math.Max(g.PadT0, tc);
        int span = left + t + g.PadT1;
        int ot = span < g.KernelT ? 0 : (span - g.KernelT) / g.StrideT + 1;
        int oh = g.OutH(h), ow = g.OutW(wd);
        if (ot <= 0 || oh <= 0 || ow <= 0)
            throw new ArgumentException($"x {x.ShapeString} (time cache {tc} frames) is smaller than the kernel under {g}", nameof(x));
        float* yp = HostArgs.F32Dense(y, nameof(y));
        HostArgs.RequireShape(y, nameof(y), cout, ot, oh, ow);
        HostArgs.RequireDisjoint(y, nameof(y), x, nameof(x));
        if (timeCache is not null) HostArgs.RequireDisjoint(y, nameof(y), timeCache, nameof(timeCache));
        float[]? b = bias is null ? null : HostArgs.Vector(bias, nameof(bias), cout);
        var input = new ConvInput(xp, cp, cin, t, tc, h, wd, left - tc, left);
        CpuConv.Run(this, input, w, b, yp, cout, ot, oh, ow, g);
    }
}

/// <summary>
/// The virtual time axis of a conv input: frames [0, zeroFront) are zero padding, [zeroFront, xStart) come
/// from the cache, then x's frames, then zero padding to the right.
/// </summary>
internal readonly unsafe struct ConvInput(float* x, float* cache, int channels, int frames, int cacheFrames, int height, int width, int zeroFront, int xStart)
{
    public int Channels => channels;
    public int Height => height;
    public int Width => width;

    /// <summary>Plane [H, W] of channel c at virtual frame u, or null where it is padding.</summary>
    public float* Frame(int c, int u)
    {
        long plane = (long)height * width;
        if (u < zeroFront) return null;
        if (u < xStart) return cache + ((long)c * cacheFrames + (u - zeroFront)) * plane;
        if (u < xStart + frames) return x + ((long)c * frames + (u - xStart)) * plane;
        return null;
    }
}
