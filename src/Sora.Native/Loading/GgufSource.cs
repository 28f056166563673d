using Sora.Runtime;
using Sora.Runtime.Gguf;

namespace Sora.Native.Loading;

/// <summary>
/// A GGUF file (city96's Wan conversions, or what <c>sora convert</c> writes) as a tensor source. F32, F16 and
/// BF16 tensors are host views into the mapped file, in their logical shape (the comfy.gguf.orig_shape metadata
/// restores the 5-D patch embedding). Block-quantised tensors stay in their ggml encoding: <see cref="TryGetBlocks"/>
/// hands their blocks to the quantised-weight binding (WeightSet.TakeWeight); <see cref="Describe"/> gives their
/// shape (and F32, the type they expand to), and <see cref="Get"/> refuses them with a <see cref="NotSupportedException"/>
/// naming the tensor and its type, since no dense tensor stands for them. Owns the file.
/// </summary>
public sealed class GgufSource : ITensorSource, IQuantizedTensorSource
{
    private readonly GgufFile _file;

    public GgufSource(GgufFile file) => _file = file;

    public static GgufSource Open(string path)
    {
        try { return new GgufSource(GgufFile.Open(path)); }
        catch (GgufException e) { throw new ModelLoadException(e.Message, e); }
    }

    public GgufFile File => _file;
    public string Source => _file.Path;
    public IEnumerable<string> Names => _file.Tensors.Select(t => t.Name);
    public bool Contains(string name) => _file.Contains(name);
    public string FileOf(string name) => _file.Path;

    /// <summary>The ggml type a tensor is stored in.</summary>
    public GgmlType TypeOf(string name) => Info(name).Type;

    /// <summary>The logical shape (PyTorch order) of any tensor, quantised or not.</summary>
    public int[] ShapeOf(string name) => Info(name).Shape;

    /// <summary>Whether the tensor is F32, F16 or BF16 (a dense tensor), not a block format.</summary>
    public bool IsDense(string name) => DenseType(TypeOf(name)) is not null;

    public (DType DType, int[] Shape) Describe(string name)
    {
        var info = Info(name);
        return (DenseType(info.Type) ?? DType.F32, info.Shape);
    }

    /// <summary>
    /// A block-quantised tensor's type and encoded bytes (a copy of the file's: the GEMM reads them as they are, so
    /// they take the quantised size in memory); false for F32/F16/BF16 tensors.
    /// </summary>
    public bool TryGetBlocks(string name, out GgmlType type, out ReadOnlyMemory<byte> blocks)
    {
        var info = Info(name);
        if (DenseType(info.Type) is not null)
        {
            (type, blocks) = (default, default);
            return false;
        }
        type = info.Type;
        blocks = _file.GetBytes(name).ToArray();
        return true;
    }

    public Tensor Get(string name)
    {
        var info = Info(name);
        if (DenseType(info.Type) is null) throw Quantised(info);
        try { return _file.GetDense(name); }
        catch (GgufException e) { throw new ModelLoadException(e.Message, e); }
    }

    private GgufTensorInfo Info(string name)
        => _file.Contains(name) ? _file.GetInfo(name) : throw new ModelLoadException($"{_file.Path}: no tensor '{name}'");

    private static DType? DenseType(GgmlType type) => type switch
    {
        GgmlType.F32 => DType.F32,
        GgmlType.F16 => DType.F16,
        GgmlType.BF16 => DType.BF16,
        _ => null,
    };

    private NotSupportedException Quantised(GgufTensorInfo info)
        => new($"{_file.Path}: tensor '{info.Name}' is {GgmlTypes.Name(info.Type)}: a block-quantised tensor can only be a linear or convolution weight (the model reads this one as a plain tensor)");

    public void Dispose() => _file.Dispose();
}
