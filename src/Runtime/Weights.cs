using System.Buffers;
using Sora.Runtime.Gguf;

namespace Sora.Runtime;

/// <summary>
/// A weight matrix W [Out, In] as a GEMM (or a convolution, In = Cin·kT·kH·kW) multiplies it: y = x·Wᵀ. The kind
/// says how it is stored, and the backend expands stored values while it packs or tiles W inside the kernel, so a
/// quantised weight stays quantised in memory. <see cref="IBackend.Gemm(Tensor, Weight, Tensor?, Tensor, GemmEpilogue, Tensor?, Tensor?)"/>
/// and its siblings take any kind.
/// </summary>
public abstract record Weight(int Out, int In)
{
    /// <summary>How the weight is stored, for messages and <c>sora inspect</c>: "bf16", "f8_e4m3 scaled", "q4_K + LoRA r16".</summary>
    public abstract string Format { get; }

    /// <summary>Bytes the stored weight holds (what it costs in memory).</summary>
    public abstract long StoredBytes { get; }
}

/// <summary>W as a plain F32, F16 or BF16 tensor [Out, ...] (a linear [Out, In] or a conv [Cout, Cin, kT, kH, kW]).</summary>
public sealed record DenseWeight(Tensor Tensor) : Weight(Tensor.Dim(0), RowLength(Tensor))
{
    public override string Format => DTypes.SafetensorsName(Tensor.DType).ToLowerInvariant();
    public override long StoredBytes => Tensor.ElementCount * DTypes.SizeOf(Tensor.DType);

    /// <summary>The tensor seen as [Out, In] (a view of a conv kernel, or the tensor itself).</summary>
    public Tensor Matrix => Tensor.Rank == 2 ? Tensor : Tensor.Reshape(Out, In);

    /// <summary>The tensor seen as a conv kernel [Out, inChannels, kT, kH, kW] (a Conv2d's [Out, in, kH, kW] is one with kT = 1).</summary>
    public Tensor Kernel(int inChannels, Conv3dGeometry g) =>
        Tensor.Rank == 5 ? Tensor
        : (long)inChannels * g.KernelT * g.KernelH * g.KernelW == In ? Tensor.Reshape(Out, inChannels, g.KernelT, g.KernelH, g.KernelW)
        : throw new ArgumentException($"w {Tensor.ShapeString} does not fit a kernel over {inChannels} channels under {g}", "w");

    public static int RowLength(Tensor t) => t.Rank == 0 || t.Dim(0) == 0 ? 0 : checked((int)(t.ElementCount / t.Dim(0)));
}

/// <summary>
/// W = Scale · decode(Codes), Codes an F8E4M3 or F8E5M2 tensor [Out, ...] of one byte per weight. Scale is ComfyUI's
/// per-tensor <c>scale_weight</c> of "scaled fp8" files (1 for plain casts); each weight is decode(code)·Scale in f32,
/// as ComfyUI's <c>weight.to(float32) * scale_weight</c>.
/// </summary>
public sealed record Fp8Weight(Tensor Codes, float Scale = 1f) : Weight(Codes.Dim(0), DenseWeight.RowLength(Codes))
{
    public Tensor Codes { get; } = Codes.DType is DType.F8E4M3 or DType.F8E5M2 ? Codes
        : throw new ArgumentException($"fp8 weight codes must be F8_E4M3 or F8_E5M2, got {Codes}", nameof(Codes));

    public override string Format => DTypes.SafetensorsName(Codes.DType).ToLowerInvariant() + (Scale == 1f ? "" : " scaled");
    public override long StoredBytes => Codes.ElementCount;
}

/// <summary>
/// W in a ggml block format: <see cref="Blocks"/> hold the Out·In elements row-major (row r is elements [r·In, (r+1)·In)
/// of the flat tensor, which may begin inside a block when In is not a multiple of the block size) exactly as a GGUF
/// file stores them; values are ggml's dequantize_row_* of them.
/// </summary>
public sealed record BlockWeight : Weight
{
    public BlockWeight(GgmlType type, DeviceBytes blocks, int outFeatures, int inFeatures) : base(outFeatures, inFeatures)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        if (!GgmlTypes.IsSupported(type)) throw new ArgumentException($"ggml type id {(uint)type} is not supported", nameof(type));
        ArgumentOutOfRangeException.ThrowIfNegative(outFeatures);
        ArgumentOutOfRangeException.ThrowIfNegative(inFeatures);
        long need = GgmlTypes.ByteCount(type, (long)outFeatures * inFeatures);
        if (need < 0)
            throw new ArgumentException($"[{outFeatures}, {inFeatures}] = {(long)outFeatures * inFeatures} elements are not whole {GgmlTypes.Name(type)} blocks of {GgmlTypes.BlockSize(type)}", nameof(inFeatures));
        if (blocks.Length != need)
            throw new ArgumentException($"[{outFeatures}, {inFeatures}] in {GgmlTypes.Name(type)} takes {need} bytes, the blocks hold {blocks.Length}", nameof(blocks));
        Type = type;
        Blocks = blocks;
    }

    public GgmlType Type { get; }
    public DeviceBytes Blocks { get; }
    public override string Format => GgmlTypes.Name(Type);
    public override long StoredBytes => Blocks.Length;
}

/// <summary>
/// A low-rank adapter on a weight: y = x·Baseᵀ + Scale·(x·Downᵀ)·Upᵀ with Down (LoRA A) [r, In] and Up (LoRA B) [Out, r],
/// the side path that keeps a quantised base weight quantised (dense bases are merged at load instead). Scale is the
/// user's strength times alpha / r. Several adapters nest.
/// </summary>
public sealed record LoraWeight : Weight
{
    public LoraWeight(Weight @base, Tensor down, Tensor up, float scale) : base(@base.Out, @base.In)
    {
        ArgumentNullException.ThrowIfNull(down);
        ArgumentNullException.ThrowIfNull(up);
        if (down.Rank != 2 || up.Rank != 2 || down.Dim(1) != @base.In || up.Dim(0) != @base.Out || up.Dim(1) != down.Dim(0))
            throw new ArgumentException($"LoRA down {down.ShapeString} and up {up.ShapeString} do not fit a weight [{@base.Out}, {@base.In}]: need [r, {@base.In}] and [{@base.Out}, r]", nameof(down));
        Base = @base;
        Down = down;
        Up = up;
        Scale = scale;
    }

    public Weight Base { get; }
    public Tensor Down { get; }
    public Tensor Up { get; }
    public float Scale { get; }
    public int Rank => Down.Dim(0);
    public override string Format => $"{Base.Format} + LoRA r{Rank}";
    public override long StoredBytes => Base.StoredBytes + (Down.ElementCount + Up.ElementCount) * DTypes.SizeOf(Down.DType);
}

/// <summary>Raw encoded bytes (ggml blocks) placed on one backend by <see cref="IBackend.Upload"/>; only that backend reads them.</summary>
public abstract class DeviceBytes : IDisposable
{
    protected DeviceBytes(long length) => Length = length;

    public long Length { get; }

    /// <summary>Where the bytes live, e.g. "host" or "cuda:0".</summary>
    public abstract string Location { get; }

    public bool IsDisposed { get; private set; }

    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        Release();
        GC.SuppressFinalize(this);
    }

    protected abstract void Release();
}

/// <summary>Bytes in host memory, pinned for their lifetime: an array, or a memory-mapped file's window (not copied).</summary>
public sealed unsafe class HostBytes : DeviceBytes
{
    private MemoryHandle _pin;

    public HostBytes(ReadOnlyMemory<byte> bytes) : base(bytes.Length)
    {
        _pin = bytes.Pin();
        Pointer = (byte*)_pin.Pointer;
    }

    public byte* Pointer { get; }

    public override string Location => "host";

    protected override void Release() => _pin.Dispose();
}

/// <summary>
/// A tensor source that can hand out a tensor's raw ggml blocks instead of a dense tensor (a GGUF file). A source
/// implements it beside <see cref="ITensorSource"/>; <c>WeightSet.TakeWeight</c> asks it first, so a quantised tensor
/// becomes a <see cref="BlockWeight"/> without being expanded.
/// </summary>
public interface IQuantizedTensorSource
{
    /// <summary>
    /// True with the tensor's ggml type and its stored bytes (row-major in its PyTorch-order shape, as ggml's flat
    /// order) when <paramref name="name"/> is stored in a ggml encoding; false for tensors the source holds densely.
    /// The memory stays valid while the source is open; the CPU backend pins it and reads it in place (a MemoryManager
    /// over a memory-mapped file serves, nothing is copied), other backends copy it to the device once.
    /// </summary>
    bool TryGetBlocks(string name, out GgmlType type, out ReadOnlyMemory<byte> blocks);
}

/// <summary>
/// A tensor source that carries low-rank adapters to apply as side paths (on weights it cannot merge, i.e. quantised
/// ones). Adapters are [r, In] down and [Out, r] up tensors with their scale (strength · alpha / r).
/// </summary>
public interface IAdapterSource
{
    /// <summary>The adapters on weight <paramref name="name"/>, in the order given (empty when none).</summary>
    IReadOnlyList<LowRankAdapter> AdaptersOf(string name);
}

/// <summary>One LoRA on one weight: W' = W + Scale·Up·Down.</summary>
public sealed record LowRankAdapter(Tensor Down, Tensor Up, float Scale);

/// <summary>
/// The LoRA side path of <see cref="LoraWeight"/> composed from a backend's own ops, shared by every backend:
/// t = Scale·(x·Downᵀ) [M, r], then y = epilogue(x·Baseᵀ + b + t·Upᵀ). The residual epilogues are linear in the
/// GEMM result (residual + g ⊙ (u + v) = (residual + g ⊙ v) + g ⊙ u), so t·Upᵀ goes in first and the base GEMM keeps its
/// fused epilogue; the activations need the sum first, so they run after it.
/// </summary>
public static class LowRankPath
{
    public static void Gemm(IBackend backend, Tensor x, LoraWeight w, Tensor? bias, Tensor y, GemmEpilogue epilogue, Tensor? residual, Tensor? gate)
    {
        using var t = Project(backend, x, w);
        switch (epilogue)
        {
            case GemmEpilogue.None or GemmEpilogue.GeluTanh or GemmEpilogue.Silu:
                backend.Gemm(t, w.Up, null, y);
                backend.Gemm(x, w.Base, bias, y, GemmEpilogue.AddResidual, y);
                if (epilogue == GemmEpilogue.GeluTanh) backend.GeluTanh(y, y);
                else if (epilogue == GemmEpilogue.Silu) backend.Silu(y, y);
                break;
            case GemmEpilogue.AddResidual or GemmEpilogue.GatedResidual:
                ArgumentNullException.ThrowIfNull(residual);
                backend.Gemm(t, w.Up, null, y, epilogue, residual, gate);
                backend.Gemm(x, w.Base, bias, y, epilogue, y, gate);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(epilogue), epilogue, "unknown GEMM epilogue");
        }
    }

    public static void GemmGatedRows(IBackend backend, Tensor x, LoraWeight w, Tensor? bias, Tensor y, Tensor residual, Tensor gateBase, Tensor gate, ReadOnlySpan<int> rowSets)
    {
        using var t = Project(backend, x, w);
        backend.GemmGatedRows(t, w.Up, null, y, residual, gateBase, gate, rowSets);
        backend.GemmGatedRows(x, w.Base, bias, y, y, gateBase, gate, rowSets);
    }

    /// <summary>Scale·(x·Downᵀ), a new [M, r] tensor.</summary>
    private static Tensor Project(IBackend backend, Tensor x, LoraWeight w)
    {
        if (x.Rank != 2 || x.Dim(1) != w.In)
            throw new ArgumentException($"x {x.ShapeString} does not match the LoRA weight [{w.Out}, {w.In}]: expected [M, {w.In}]", nameof(x));
        var t = backend.Allocate(DType.F32, x.Dim(0), w.Rank);
        try
        {
            backend.Gemm(x, w.Down, null, t);
            backend.ScaleShift(t, w.Scale, 0f, t);
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }
}
