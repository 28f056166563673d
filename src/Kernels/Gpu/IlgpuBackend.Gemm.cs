using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using Sora.Runtime;
using Sora.Runtime.Gguf;

namespace Sora.Kernels.Gpu;

public sealed unsafe partial class IlgpuBackend
{
    public void Gemm(Tensor x, Tensor w, Tensor? bias, Tensor y, GemmEpilogue epilogue = GemmEpilogue.None, Tensor? residual = null, Tensor? gate = null)
    {
        Storage(w, nameof(w));
        RequireRank(w, nameof(w), 2);
        RequireContiguous(w, nameof(w));
        RequireRank(x, nameof(x), 2);
        if (w.Dim(1) != x.Dim(1)) throw new ArgumentException($"w {w.ShapeString} does not match x {x.ShapeString}: expected [N, {x.Dim(1)}]", nameof(w));
        GemmAny(x, new DenseWeight(w), bias, y, epilogue, residual, gate);
    }

    public void Gemm(Tensor x, Weight w, Tensor? bias, Tensor y, GemmEpilogue epilogue = GemmEpilogue.None, Tensor? residual = null, Tensor? gate = null)
    {
        ArgumentNullException.ThrowIfNull(w);
        switch (w)
        {
            case DenseWeight d: Gemm(x, d.Matrix, bias, y, epilogue, residual, gate); return;
            case LoraWeight l: LowRankPath.Gemm(this, x, l, bias, y, epilogue, residual, gate); return;
        }
        RequireRank(x, nameof(x), 2);
        if (w.In != x.Dim(1)) throw new ArgumentException($"w [{w.Out}, {w.In}] ({w.Format}) does not match x {x.ShapeString}: expected [N, {x.Dim(1)}]", nameof(w));
        GemmAny(x, w, bias, y, epilogue, residual, gate);
    }

    private void GemmAny(Tensor x, Weight w, Tensor? bias, Tensor y, GemmEpilogue epilogue, Tensor? residual, Tensor? gate)
    {
        int m = x.Dim(0), k = w.In, n = w.Out;
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

    /// <summary>Launches the GEMM with W read through the decoder of its stored form (expanded while loading the tile).</summary>
    private void GemmWith<TA, TO>(TA a, Weight w, TO output, int m, int n, int k)
        where TA : struct, IGemmInput where TO : struct, IGemmOutput
    {
        if (m == 0 || n == 0) return;
        WithValues(w, new GemmLaunch<TA, TO>(this, a, output, m, n, k));
    }

    /// <summary>Something to run with a weight's element decoder, whose type the kernel is compiled for.</summary>
    private interface IValuesUser
    {
        void Use<TW>(TW values) where TW : struct, IReadFloat;
    }

    private readonly struct GemmLaunch<TA, TO>(IlgpuBackend backend, TA a, TO output, int m, int n, int k) : IValuesUser
        where TA : struct, IGemmInput where TO : struct, IGemmOutput
    {
        public void Use<TW>(TW values) where TW : struct, IReadFloat => backend.LaunchGemm(a, new WeightRows<TW>(values, k), output, m, n, k);
    }

    /// <summary>Calls <paramref name="user"/> with the decoder of w's elements (flat row-major index over [Out, In]).</summary>
    private void WithValues<TU>(Weight w, TU user) where TU : IValuesUser
    {
        switch (w)
        {
            case DenseWeight d:
                {
                    var ws = Storage(d.Tensor, nameof(w));
                    RequireContiguous(d.Tensor, nameof(w));
                    long at = d.Tensor.Offset;
                    switch (d.Tensor.DType)
                    {
                        case DType.F32: user.Use(new F32Values(ws.View<float>().SubView(at))); return;
                        case DType.F16: user.Use(new F16Values(ws.View<ushort>().SubView(at))); return;
                        case DType.BF16: user.Use(new Bf16Values(ws.View<ushort>().SubView(at))); return;
                        default: throw new ArgumentException($"w has unsupported dtype {d.Tensor.DType}", nameof(w));
                    }
                }
            case Fp8Weight f:
                {
                    var codes = Storage(f.Codes, nameof(w)).View<byte>().SubView(f.Codes.Offset);
                    RequireContiguous(f.Codes, nameof(w));
                    if (f.Codes.DType == DType.F8E4M3) user.Use(new E4M3Values(codes, f.Scale));
                    else user.Use(new E5M2Values(codes, f.Scale));
                    return;
                }
            case BlockWeight b:
                {
                    var data = Bytes(b.Blocks, nameof(w));
                    switch (b.Type)
                    {
                        case GgmlType.F32: user.Use(new GgmlF32Values(data)); return;
                        case GgmlType.F16: user.Use(new GgmlF16Values(data)); return;
                        case GgmlType.BF16: user.Use(new GgmlBf16Values(data)); return;
                        case GgmlType.Q4_0: user.Use(new Q4_0Values(data)); return;
                        case GgmlType.Q4_1: user.Use(new Q4_1Values(data)); return;
                        case GgmlType.Q5_0: user.Use(new Q5_0Values(data)); return;
                        case GgmlType.Q5_1: user.Use(new Q5_1Values(data)); return;
                        case GgmlType.Q8_0: user.Use(new Q8_0Values(data)); return;
                        case GgmlType.Q2_K: user.Use(new Q2_KValues(data)); return;
                        case GgmlType.Q3_K: user.Use(new Q3_KValues(data)); return;
                        case GgmlType.Q4_K: user.Use(new Q4_KValues(data)); return;
                        case GgmlType.Q5_K: user.Use(new Q5_KValues(data)); return;
                        case GgmlType.Q6_K: user.Use(new Q6_KValues(data)); return;
                        default: throw new ArgumentException($"w: {Device.Id} does not decode {b.Format} weights", nameof(w));
                    }
                }
            default:
                throw new ArgumentException($"w: {Device.Id} does not multiply {w.Format} weights directly", nameof(w));
        }
    }

    /// <summary>The CPU backend's bytes cannot be read by kernels: copies them into a device buffer of this backend.</summary>
    public DeviceBytes Upload(ReadOnlyMemory<byte> bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var buffer = _pool.Rent(Math.Max(1, bytes.Length));
        try
        {
            if (bytes.Length > 0)
            {
                using var pin = bytes.Pin();
                ((ArrayView1D<byte, Stride1D.Dense>)buffer.View.SubView(0, bytes.Length)).CopyFromCPU(ref Unsafe.AsRef<byte>(pin.Pointer), bytes.Length);
                // The memory is only pinned inside this block and OpenCL writes asynchronously: wait for the copy.
                Accelerator.Synchronize();
            }
            return new IlgpuBytes(_pool, buffer, bytes.Length, Device.Id);
        }
        catch
        {
            _pool.Return(buffer, Math.Max(1, bytes.Length));
            throw;
        }
    }

    private ArrayView<byte> Bytes(DeviceBytes bytes, string name)
    {
        if (bytes is not IlgpuBytes b || b.Owner != this)
            throw new ArgumentException($"{name}: blocks on {bytes.Location} do not live on {Device.Id}: upload them with this backend", name);
        ObjectDisposedException.ThrowIf(b.IsDisposed, b);
        return b.View;
    }

    public void Dequantize(Weight w, Tensor y)
    {
        ArgumentNullException.ThrowIfNull(w);
        var yv = F32Dense(y, nameof(y));
        RequireShape(y, nameof(y), w.Out, w.In);
        if (y.ElementCount == 0) return;
        WithValues(w, new ExpandLaunch(this, yv, y.ElementCount));
    }

    private readonly struct ExpandLaunch(IlgpuBackend backend, ArrayView<float> y, long count) : IValuesUser
    {
        public void Use<TW>(TW values) where TW : struct, IReadFloat
        {
            var accelerator = backend.Accelerator;
            var kernel = backend.Kernel("expand", () => accelerator.LoadAutoGroupedStreamKernel<Index1D, TW, ArrayView<float>>(ElementwiseKernels.Expand));
            kernel(Elements(count, "w"), values, y);
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
        Storage(w, nameof(w));
        RequireRank(w, nameof(w), 5);
        RequireContiguous(w, nameof(w));
        Conv3dAny(x, new DenseWeight(w), w, bias, y, geometry, timeCache);
    }

    public void Conv3d(Tensor x, Weight w, Tensor? bias, Tensor y, Conv3dGeometry geometry, Tensor? timeCache = null)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (w is DenseWeight d)
        {
            RequireRank(x, nameof(x), 4);
            Conv3d(x, d.Kernel(x.Dim(0), geometry), bias, y, geometry, timeCache);
        }
        else Conv3dAny(x, w, null, bias, y, geometry, timeCache);
    }

    /// <summary>The convolution with W of any kind; <paramref name="dense"/> is the 5-D tensor when there is one (its shape is checked).</summary>
    private void Conv3dAny(Tensor x, Weight w, Tensor? dense, Tensor? bias, Tensor y, Conv3dGeometry geometry, Tensor? timeCache)
    {
        var g = geometry;
        if (g.KernelT <= 0 || g.KernelH <= 0 || g.KernelW <= 0 || g.StrideT <= 0 || g.StrideH <= 0 || g.StrideW <= 0)
            throw new ArgumentException($"kernel and stride must be positive: {g}", nameof(geometry));
        if (g.PadT0 < 0 || g.PadT1 < 0 || g.PadH0 < 0 || g.PadH1 < 0 || g.PadW0 < 0 || g.PadW1 < 0)
            throw new ArgumentException($"padding must not be negative: {g}", nameof(geometry));
        var xv = F32Dense(x, nameof(x));
        RequireRank(x, nameof(x), 4);
        int cin = x.Dim(0), t = x.Dim(1), h = x.Dim(2), wd = x.Dim(3);
        int cout = w.Out;
        if (dense is not null) RequireShape(dense, nameof(w), cout, cin, g.KernelT, g.KernelH, g.KernelW);
        else if (w.In != (long)cin * g.KernelT * g.KernelH * g.KernelW)
            throw new ArgumentException($"w [{w.Out}, {w.In}] ({w.Format}) does not fit x {x.ShapeString} under {g}: expected [Cout, {(long)cin * g.KernelT * g.KernelH * g.KernelW}]", nameof(w));
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
