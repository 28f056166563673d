using ILGPU;
using ILGPU.Runtime;
using Sora.Runtime;

namespace Sora.Kernels.Gpu;

public sealed partial class IlgpuBackend
{
    public void Gemm(Tensor x, Tensor w, Tensor? bias, Tensor y, GemmEpilogue epilogue = GemmEpilogue.None, Tensor? residual = null, Tensor? gate = null)
    {
        Storage(w, nameof(w));
        RequireRank(w, nameof(w), 2);
        RequireContiguous(w, nameof(w));
        RequireRank(x, nameof(x), 2);
        int m = x.Dim(0), k = x.Dim(1), n = w.Dim(0);
        if (w.Dim(1) != k) throw new ArgumentException($"w {w.ShapeString} does not match x {x.ShapeString}: expected [N, {k}]", nameof(w));
        var xv = Matrix(x, nameof(x), m, k, out long ldx);
        var yv = Matrix(y, nameof(y), m, n, out long ldy);
        using var temps = new Temps();
        var bv = bias is null ? Dummy : Vector(bias, nameof(bias), n, temps);
        int hasBias = bias is null ? 0 : 1;
        var a = new DenseInput(xv, ldx);
        switch (epilogue)
        {
            case GemmEpilogue.None:
                GemmWith(a, w, new ActivationOutput<Identity>(yv, ldy, bv, hasBias), m, n, k);
                break;
            case GemmEpilogue.GeluTanh:
                GemmWith(a, w, new ActivationOutput<GeluTanhAct>(yv, ldy, bv, hasBias), m, n, k);
                break;
            case GemmEpilogue.Silu:
                GemmWith(a, w, new ActivationOutput<SiluAct>(yv, ldy, bv, hasBias), m, n, k);
                break;
            case GemmEpilogue.AddResidual or GemmEpilogue.GatedResidual:
                {
                    if (residual is null) throw new ArgumentNullException(nameof(residual), $"epilogue {epilogue} needs a residual [{m}, {n}]");
                    var rv = Matrix(residual, nameof(residual), m, n, out long ldr);
                    var gv = Dummy;
                    int hasGate = 0;
                    if (epilogue == GemmEpilogue.GatedResidual)
                    {
                        if (gate is null) throw new ArgumentNullException(nameof(gate), $"epilogue GatedResidual needs a gate [{n}]");
                        gv = Vector(gate, nameof(gate), n, temps);
                        hasGate = 1;
                    }
                    GemmWith(a, w, new ResidualOutput(yv, ldy, bv, hasBias, rv, ldr, gv, hasGate), m, n, k);
                    break;
                }
            default:
                throw new ArgumentOutOfRangeException(nameof(epilogue), epilogue, "unknown GEMM epilogue");
        }
    }

    /// <summary>Dispatches on the weight dtype (the kernel widens W while loading its tile).</summary>
    private void GemmWith<TA, TO>(TA a, Tensor w, TO output, int m, int n, int k)
        where TA : struct, IGemmInput where TO : struct, IGemmOutput
    {
        if (m == 0 || n == 0) return;
        var ws = Storage(w, nameof(w));
        switch (w.DType)
        {
            case DType.F32: LaunchGemm(a, new WeightRows<F32Values>(new F32Values(ws.View<float>().SubView(w.Offset)), k), output, m, n, k); break;
            case DType.F16: LaunchGemm(a, new WeightRows<F16Values>(new F16Values(ws.View<ushort>().SubView(w.Offset)), k), output, m, n, k); break;
            case DType.BF16: LaunchGemm(a, new WeightRows<Bf16Values>(new Bf16Values(ws.View<ushort>().SubView(w.Offset)), k), output, m, n, k); break;
            default: throw new ArgumentException($"w has unsupported dtype {w.DType}", nameof(w));
        }
    }

    private void LaunchGemm<TA, TB, TO>(TA a, TB b, TO output, int m, int n, int k)
        where TA : struct, IGemmInput where TB : struct, IGemmInput where TO : struct, IGemmOutput
    {
        int tx = Options.GemmThreadsX, ty = Options.GemmThreadsY, tk = Options.GemmTileK;
        int bm = ty * GemmKernels.Block, bn = tx * GemmKernels.Block;
        var kernel = Kernel("gemm", () => Accelerator.LoadStreamKernel<TA, TB, TO, int, int, int, int>(GemmKernels.Gemm));
        var grid = new Index2D((m + bm - 1) / bm, (n + bn - 1) / bn);
        if (grid.Y > 65535) throw new ArgumentException($"GEMM N = {n} exceeds the {65535 * bn} columns one launch covers");
        var config = new KernelConfig(grid, new Index2D(tx, ty));
        kernel(config, a, b, output, m, n, k, tk);
    }

    public void Conv3d(Tensor x, Tensor w, Tensor? bias, Tensor y, Conv3dGeometry geometry, Tensor? timeCache = null)
    {
        var g = geometry;
        if (g.KernelT <= 0 || g.KernelH <= 0 || g.KernelW <= 0 || g.StrideT <= 0 || g.StrideH <= 0 || g.StrideW <= 0)
            throw new ArgumentException($"kernel and stride must be positive: {g}", nameof(geometry));
        if (g.PadT0 < 0 || g.PadT1 < 0 || g.PadH0 < 0 || g.PadH1 < 0 || g.PadW0 < 0 || g.PadW1 < 0)
            throw new ArgumentException($"padding must not be negative: {g}", nameof(geometry));
        var xv = F32Dense(x, nameof(x));
        RequireRank(x, nameof(x), 4);
        int cin = x.Dim(0), t = x.Dim(1), h = x.Dim(2), wd = x.Dim(3);
        Storage(w, nameof(w));
        RequireRank(w, nameof(w), 5);
        RequireContiguous(w, nameof(w));
        int cout = w.Dim(0);
        RequireShape(w, nameof(w), cout, cin, g.KernelT, g.KernelH, g.KernelW);
        int tc = 0;
        var cv = Dummy;
        if (timeCache is not null)
        {
            cv = F32Dense(timeCache, nameof(timeCache));
            RequireRank(timeCache, nameof(timeCache), 4);
            tc = timeCache.Dim(1);
            RequireShape(timeCache, nameof(timeCache), cin, tc, h, wd);
        }
        // Cache frames take the place of the last left-padding frames; a longer cache extends the input in front.
        int left = Math.Max(g.PadT0, tc);
        int span = left + t + g.PadT1;
        int ot = span < g.KernelT ? 0 : (span - g.KernelT) / g.StrideT + 1;
        int oh = g.OutH(h), ow = g.OutW(wd);
        if (ot <= 0 || oh <= 0 || ow <= 0)
            throw new ArgumentException($"x {x.ShapeString} (time cache {tc} frames) is smaller than the kernel under {g}", nameof(x));
        var yv = F32Dense(y, nameof(y));
        RequireShape(y, nameof(y), cout, ot, oh, ow);
        using var temps = new Temps();
        var bv = bias is null ? Dummy : Vector(bias, nameof(bias), cout, temps);
        long voxels = (long)ot * oh * ow;
        long kTotal = (long)cin * g.KernelT * g.KernelH * g.KernelW;
        if (voxels > int.MaxValue || kTotal > int.MaxValue) throw new ArgumentException($"conv of x {x.ShapeString} is too large for 32-bit indexing", nameof(x));
        var input = new ConvInput(xv, cv, t, h, wd, tc, left - tc, left,
            g.KernelT, g.KernelH, g.KernelW, g.StrideT, g.StrideH, g.StrideW, g.PadH0, g.PadW0, oh, ow);
        // Implicit GEMM: M = output voxels, N = Cout, K = Cin·kT·kH·kW; w [Cout, Cin, kT, kH, kW] is already W[N, K].
        GemmWith(input, w, new ChannelFirstOutput(yv, voxels, bv, bias is null ? 0 : 1), (int)voxels, cout, (int)kTotal);
    }
}
