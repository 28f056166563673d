namespace Sora.Runtime.Gguf;

/// <summary>The one exception type a malformed or unsupported GGUF file produces. Names the file and, where known, the tensor.</summary>
public sealed class GgufException : Exception
{
    public GgufException(string path, string? tensor, string problem, Exception? inner = null)
        : base(tensor is null ? $"{path}: {problem}" : $"{path}: tensor '{Shorten(tensor)}': {problem}", inner)
    {
        Path = path;
        Tensor = tensor;
    }

    public string Path { get; }
    public string? Tensor { get; }

    private static string Shorten(string name) => name.Length <= 200 ? name : name[..200] + "...";
}
