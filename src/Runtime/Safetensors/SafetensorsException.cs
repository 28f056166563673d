namespace Sora.Runtime.Safetensors;

/// <summary>The one exception type a malformed or unsupported safetensors file produces. Names the file and, where known, the tensor.</summary>
public sealed class SafetensorsException : Exception
{
    public SafetensorsException(string path, string? tensor, string problem, Exception? inner = null)
        : base(tensor is null ? $"{path}: {problem}" : $"{path}: tensor '{Shorten(tensor)}': {problem}", inner)
    {
        Path = path;
        Tensor = tensor;
    }

    public string Path { get; }
    public string? Tensor { get; }

    // a hostile header can hold megabyte-long names; the message stays readable
    private static string Shorten(string name) => name.Length <= 200 ? name : name[..200] + "...";
}
