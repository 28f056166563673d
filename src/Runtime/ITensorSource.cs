namespace Sora.Runtime;

/// <summary>
/// Named stored tensors that a model binds to: a safetensors checkpoint today; a GGUF file, an original-layout file
/// seen under diffusers names, or a LoRA-merged view of one of them are further sources behind the same seam, so the
/// model classes never change per file format.
/// </summary>
public interface ITensorSource : IDisposable
{
    /// <summary>The file, index or folder the tensors come from (for error messages).</summary>
    string Source { get; }

    IEnumerable<string> Names { get; }

    bool Contains(string name);

    /// <summary>The stored dtype and the shape (PyTorch order) of <paramref name="name"/>.</summary>
    (DType DType, int[] Shape) Describe(string name);

    /// <summary>The tensor as stored (host memory or a mapped file; the source owns it).</summary>
    Tensor Get(string name);

    /// <summary>The file that holds <paramref name="name"/> (for error messages).</summary>
    string FileOf(string name);
}
