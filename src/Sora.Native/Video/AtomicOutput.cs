namespace Sora.Native.Video;

/// <summary>
/// Writes an output file or folder under a temporary name in the target's own folder and renames it into place
/// only when the write completed, so a cancelled or failed write never leaves a partial output behind.
/// </summary>
public static class AtomicOutput
{
    /// <summary>Runs <paramref name="write"/> on a temporary file next to <paramref name="path"/>, then moves it over <paramref name="path"/>.</summary>
    public static void WriteFileByPath(string path, Action<string> write)
    {
        string full = Path.GetFullPath(path);
        string temp = TempSibling(full);
        try
        {
            write(temp);
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDeleteFile(temp);
            throw;
        }
    }

    /// <summary>Runs <paramref name="write"/> on a stream over a temporary file next to <paramref name="path"/>, then moves it into place.</summary>
    public static void WriteFile(string path, Action<Stream> write)
        => WriteFileByPath(path, temp =>
        {
            using var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            write(stream);
        });

    /// <summary>
    /// Runs <paramref name="write"/> on a new temporary folder next to <paramref name="folder"/>, then renames it to
    /// <paramref name="folder"/>, which must not exist or be an empty folder.
    /// </summary>
    public static void WriteFolder(string folder, Action<string> write)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder));
        string temp = TempSibling(full);
        Directory.CreateDirectory(temp);
        try
        {
            write(temp);
            if (Directory.Exists(full))
            {
                if (Directory.EnumerateFileSystemEntries(full).Any())
                    throw new IOException($"{folder}: folder exists and is not empty");
                Directory.Delete(full);
            }
            Directory.Move(temp, full);
        }
        catch
        {
            TryDeleteFolder(temp);
            throw;
        }
    }

    /// <summary>
    /// Checks, without leaving anything behind, that a file or folder can be created at <paramref name="path"/>:
    /// its parent folder exists and is writable. Throws <see cref="IOException"/> naming the path otherwise.
    /// </summary>
    public static void EnsureWritable(string path, bool isFolder)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        string? parent = Path.GetDirectoryName(full);
        if (parent is null) throw new IOException($"{path}: cannot write to the root of a drive");
        if (!Directory.Exists(parent)) throw new IOException($"{path}: folder {parent} does not exist");
        if (isFolder)
        {
            if (File.Exists(full)) throw new IOException($"{path}: a file of that name exists (a folder of frames is wanted)");
            if (Directory.Exists(full) && Directory.EnumerateFileSystemEntries(full).Any())
                throw new IOException($"{path}: folder exists and is not empty");
        }
        else if (Directory.Exists(full))
        {
            throw new IOException($"{path}: is a folder, not a file");
        }
        string probe = TempSibling(full);
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write)) { }
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new IOException($"{path}: cannot write in {parent}: {e.Message}", e);
        }
        finally
        {
            TryDeleteFile(probe);
        }
    }

    private static string TempSibling(string full)
    {
        string dir = Path.GetDirectoryName(full) ?? ".";
        return Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
    }

    private static void TryDeleteFile(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static void TryDeleteFolder(string path)
    {
        try { if (Directory.Exists(path)) Directory.Delete(path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
