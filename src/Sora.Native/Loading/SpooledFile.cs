namespace Sora.Native.Loading;

/// <summary>
/// A stream copied to a temporary file, for the readers that map files (safetensors, GGUF): a checkpoint that
/// arrives as a stream (a download, an archive entry, an embedded resource) becomes a path any loader takes.
/// Dispose it after the model that maps it; the file is deleted then.
/// </summary>
public sealed class SpooledFile : IDisposable
{
    private SpooledFile(string path) => Path = path;

    /// <summary>The temporary file; its extension tells the format (".safetensors" or ".gguf").</summary>
    public string Path { get; }

    /// <summary>Copies <paramref name="stream"/> from its current position to its end into a new temporary file named *<paramref name="extension"/>.</summary>
    public static SpooledFile From(Stream stream, string extension = ".safetensors")
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (extension is not (".safetensors" or ".gguf"))
            throw new ArgumentException($"extension '{extension}' is not .safetensors or .gguf", nameof(extension));
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"sora-{Guid.NewGuid():N}{extension}");
        try
        {
            using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
            stream.CopyTo(file);
        }
        catch
        {
            File.Delete(path);
            throw;
        }
        return new SpooledFile(path);
    }

    public void Dispose()
    {
        try { File.Delete(Path); }
        catch (IOException) { } // still mapped (Windows): the temporary folder's cleanup removes it
        catch (UnauthorizedAccessException) { }
    }
}
