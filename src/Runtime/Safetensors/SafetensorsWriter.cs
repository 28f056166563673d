using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Sora.Runtime.Safetensors;

/// <summary>
/// Writes host tensors to a .safetensors file, each in its own dtype, C-contiguous whatever its strides.
/// The header is space-padded to a multiple of 8 bytes and tensors are laid out widest dtype first, so every
/// tensor starts at a file offset aligned to its element size. The write is atomic: bytes go to a temporary file
/// in the target folder which is renamed over <c>path</c> only when complete; on error or cancellation it is
/// deleted and an existing file at <c>path</c> is left untouched.
/// </summary>
public static unsafe class SafetensorsWriter
{
    private const int ChunkBytes = 1 << 20;

    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        var items = Validate(tensors);
        var order = items.OrderByDescending(t => DTypes.SizeOf(t.Value.DType)).ToList(); // stable: input order within a size
        byte[] header = Header(order, metadata);

        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{path}' has no folder", nameof(path));
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                Span<byte> length = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
                stream.Write(length);
                stream.Write(header);
                var buffer = new byte[ChunkBytes];
                foreach (var (_, tensor) in order) WriteData(stream, tensor, buffer, cancellationToken);
                stream.Flush(flushToDisk: true);
            }
            cancellationToken.ThrowIfCancellationRequested();
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // best effort: the original error matters more
            throw;
        }
    }

    private static List<KeyValuePair<string, Tensor>> Validate(IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        var items = new List<KeyValuePair<string, Tensor>>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, tensor) in tensors)
        {
            if (name is null) throw new ArgumentException("a tensor name is null", nameof(tensors));
            if (name == "__metadata__") throw new ArgumentException("'__metadata__' is reserved and cannot name a tensor", nameof(tensors));
            if (!names.Add(name)) throw new ArgumentException($"tensor name '{name}' appears twice", nameof(tensors));
            if (tensor is null) throw new ArgumentException($"tensor '{name}' is null", nameof(tensors));
            if (tensor.Storage is not HostStorage host) throw new ArgumentException($"tensor '{name}' is on {tensor.Location}, not the host: copy it with backend.ToHost first", nameof(tensors));
            if (host.IsDisposed) throw new ArgumentException($"tensor '{name}' has been disposed", nameof(tensors));
            items.Add(new(name, tensor));
        }
        return items;
    }

    private static byte[] Header(List<KeyValuePair<string, Tensor>> order, IReadOnlyDictionary<string, string>? metadata)
    {
        using var ms = new MemoryStream();
        // relaxed escaping keeps non-ASCII names readable in the header; the output is still valid JSON
        using (var json = new Utf8JsonWriter(ms, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, tensor) in order)
            {
                long bytes = tensor.ElementCount * DTypes.SizeOf(tensor.DType);
                json.WriteStartObject(name);
                json.WriteString("dtype", DTypes.SafetensorsName(tensor.DType));
                json.WriteStartArray("shape");
                foreach (int d in tensor.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        int padded = (int)((ms.Length + 7) & ~7L);
        while (ms.Length < padded) ms.WriteByte((byte)' ');
        return ms.ToArray();
    }

    /// <summary>Writes the tensor's elements in row-major order as raw bytes (no conversion, so NaN payloads survive).</summary>
    private static void WriteData(Stream stream, Tensor t, byte[] buffer, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        if (t.ElementCount == 0) return;
        var host = (HostStorage)t.Storage;
        int size = DTypes.SizeOf(t.DType);
        byte* basePtr = (byte*)host.Pointer;
        if (t.IsContiguous)
        {
            long total = t.ElementCount * size;
            for (long done = 0; done < total; done += ChunkBytes)
            {
                ct.ThrowIfCancellationRequested();
                stream.Write(new ReadOnlySpan<byte>(basePtr + (t.Offset * size) + done, (int)Math.Min(ChunkBytes, total - done)));
            }
            return;
        }
        // gather row by row along the last axis, through a buffer flushed whenever it is full
        int rank = t.Rank, inner = t.Shape[^1];
        long innerStride = t.Strides[^1], rows = t.ElementCount / inner;
        var index = new int[rank - 1];
        int filled = 0;
        for (long r = 0; r < rows; r++)
        {
            long off = t.Offset;
            for (int a = 0; a < rank - 1; a++) off += index[a] * t.Strides[a];
            for (int k = 0; k < inner; k++)
            {
                new ReadOnlySpan<byte>(basePtr + (off + k * innerStride) * size, size).CopyTo(buffer.AsSpan(filled));
                filled += size;
                if (filled == buffer.Length)
                {
                    ct.ThrowIfCancellationRequested();
                    stream.Write(buffer, 0, filled);
                    filled = 0;
                }
            }
            for (int a = rank - 2; a >= 0; a--)
            {
                if (++index[a] < t.Shape[a]) break;
                index[a] = 0;
            }
        }
        stream.Write(buffer, 0, filled);
    }
}
