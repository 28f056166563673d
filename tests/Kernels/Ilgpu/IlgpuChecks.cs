using Sora.Runtime;
using static Sora.Tests.Kernels.OpTestKit;

namespace Sora.Tests.Kernels.Ilgpu;

/// <summary>Op checks against the float64 reference, shared by the CPU-accelerator and OpenCL tests.</summary>
public static class IlgpuChecks
{
    public static void Gemm(IBackend backend, int m, int n, int k, DType wtype)
    {
        foreach (var epilogue in Enum.GetValues<GemmEpilogue>())
        {
            int seed = m * 7919 + n * 104729 + k + (int)epilogue * 31 + (int)wtype * 1000003;
            float[] x = Random(m * k, seed), w = Round(Random(n * k, seed + 1), wtype), b = Random(n, seed + 2);
            float[] r = Random(m * n, seed + 3), g = Random(n, seed + 4);
            using var xt = Upload(backend, x, [m, k]);
            using var wt = Upload(backend, w, [n, k], wtype);
            using var bt = Upload(backend, b, [n]);
            using var rt = Upload(backend, r, [m, n]);
            using var gt = Upload(backend, g, [n]);
            using var y = Poisoned(backend, m, n);
            bool needsResidual = epilogue is GemmEpilogue.AddResidual or GemmEpilogue.GatedResidual;
            backend.Gemm(xt, wt, bt, y, epilogue, needsResidual ? rt : null, epilogue == GemmEpilogue.GatedResidual ? gt : null);
            var expected = Reference.Gemm(D(x), D(w), D(b), m, n, k, (Reference.Epilogue)(int)epilogue, D(r), D(g));
            AssertClose(expected, Download(backend, y), 1e-5, $"{epilogue} {m}x{n}x{k} {wtype}");
        }
    }

    public static void Attention(IBackend backend, int nq, int nk, int h, int d, float scale, int[]? qo = null, int[]? ko = null,
        int[]? valid = null, bool bias = false, int center = 0, int seed = 1, float spread = 1f)
    {
        float[] q = Random(nq * h * d, seed, spread), k = Random(nk * h * d, seed + 1, spread), v = Random(nk * h * d, seed + 2);
        float[]? rb = bias ? Random(h * (2 * center + 1), seed + 3, 2f) : null;
        using var qt = Upload(backend, q, [nq, h, d]);
        using var kt = Upload(backend, k, [nk, h, d]);
        using var vt = Upload(backend, v, [nk, h, d]);
        using var bt = rb is null ? null : Upload(backend, rb, [h, 2 * center + 1]);
        using var o = Poisoned(backend, nq, h, d);
        backend.Attention(qt, kt, vt, o, new AttentionOptions
        {
            Scale = scale, QueryOffsets = qo, KeyOffsets = ko, KeyValidLengths = valid, RelativeBias = bt, RelativeBiasCenter = center,
        });
        var expected = Reference.Attention(D(q), D(k), D(v), nq, nk, h, d, scale, qo, ko, valid, rb is null ? null : D(rb), center);
        AssertClose(expected, Download(backend, o), 1e-5, $"attention nq={nq} nk={nk} h={h} d={d}");
    }

    public static void Conv3d(IBackend backend, int cin, int cout, int t, int h, int w, Conv3dGeometry g, int cacheFrames = -1,
        DType wtype = DType.F32, int seed = 1)
    {
        float[] x = Random(cin * t * h * w, seed), wt = Round(Random(cout * cin * g.KernelT * g.KernelH * g.KernelW, seed + 1, 0.3f), wtype);
        float[] b = Random(cout, seed + 2);
        float[]? cache = cacheFrames >= 0 ? Random(cin * cacheFrames * h * w, seed + 3) : null;
        var expected = Reference.Conv3d(D(x), cin, t, h, w, D(wt), cout, g.KernelT, g.KernelH, g.KernelW, D(b),
            g.StrideT, g.StrideH, g.StrideW, g.PadT0, g.PadT1, g.PadH0, g.PadH1, g.PadW0, g.PadW1,
            cache is null ? null : D(cache), Math.Max(0, cacheFrames), out int ot, out int oh, out int ow);
        using var xt = Upload(backend, x, [cin, t, h, w]);
        using var wtt = Upload(backend, wt, [cout, cin, g.KernelT, g.KernelH, g.KernelW], wtype);
        using var bt = Upload(backend, b, [cout]);
        using var ct = cache is null ? null : Upload(backend, cache, [cin, cacheFrames, h, w]);
        using var y = Poisoned(backend, cout, ot, oh, ow);
        backend.Conv3d(xt, wtt, bt, y, g, ct);
        AssertClose(expected, Download(backend, y), 1e-5, $"conv {g} cache {cacheFrames}");
    }

    public static void Norms(IBackend backend, int m, int n, int seed)
    {
        float[] x = Random(m * n, seed, 3f), w = Random(n, seed + 1), b = Random(n, seed + 2);
        for (int i = 0; i < x.Length; i++) x[i] += 5f; // a mean far from zero checks the two-pass variance
        using var xt = Upload(backend, x, [m, n]);
        using var wt = Upload(backend, w, [n]);
        using var bt = Upload(backend, b, [n]);
        using (var y = Poisoned(backend, m, n))
        {
            backend.LayerNorm(xt, wt, bt, 1e-6f, y);
            AssertClose(Reference.LayerNorm(D(x), m, n, D(w), D(b), 1e-6), Download(backend, y), 1e-5, $"LayerNorm {m}x{n}");
        }
        using (var y = Poisoned(backend, m, n))
        {
            backend.LayerNorm(xt, null, null, 1e-5f, y);
            AssertClose(Reference.LayerNorm(D(x), m, n, null, null, 1e-5), Download(backend, y), 1e-5, $"LayerNorm no affine {m}x{n}");
        }
        using (var y = Poisoned(backend, m, n))
        {
            backend.RmsNorm(xt, wt, 1e-6f, y);
            AssertClose(Reference.RmsNorm(D(x), m, n, D(w), 1e-6), Download(backend, y), 1e-5, $"RmsNorm {m}x{n}");
        }
        using (var y = Poisoned(backend, m, n))
        {
            backend.AdaLnModulate(xt, bt, wt, 1e-6f, y);
            AssertClose(Reference.AdaLnModulate(D(x), m, n, D(b), D(w), 1e-6), Download(backend, y), 1e-5, $"AdaLN {m}x{n}");
        }
    }
}
