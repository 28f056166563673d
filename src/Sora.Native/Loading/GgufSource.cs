using Sora.Runtime;
using Sora.Runtime.Gguf;

namespace Sora.Native.Loading;

/// <summary>
/// A GGUF file (city96's Wan conversions, or what <c>sora convert</c> writes) as a tensor source. F32, F16 and
/// BF16 tensors are host views into the mapped file, in their logical shape (the comfy.gguf.orig_shape metadata
/// restores the 5-D patch embedding). Block-quantised tensors stay in their ggml encoding: <see cref="Block"/>
/// hands them to the quantised-weight path; <see cref="Describe"/> and <see cref="Get"/> refuse them with a
/// <see cref="NotSupportedException"/> naming the tensor and its type, since no dense tensor stands for them.
/// Owns the file.
/// </summary>
public sealed class GgufSource : ITensorSource
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
        return (DenseType(info.Type) ?? throw Quantised(info), info.Shape);
    }

    public Tensor Get(string name)
    {
        var info = Info(name);
        if (DenseType(info.Type) is null) throw Quantised(info);
        try { return _file.GetDense(name); }
        catch (GgufException e) { throw new ModelLoadException(e.Message, e); }
    }

    /// <summary>The tensor left in its ggml encoding (any type), for the quantised-weight path.</summary>
    public GgufTensor Block(string name)
    {
        Info(name);
        return _file.Get(name);
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
        => new($"{_file.Path}: tensor '{info.Name}' is {GgmlTypes.Name(info.Type)}: block-quantised GGUF weights need the quantised-weight path, which this build does not have yet");

    public void Dispose() => _file.Dispose();
}
