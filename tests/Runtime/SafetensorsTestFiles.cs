using System.Buffers.Binary;
using System.Text;
using Sora.Runtime;

namespace Sora.Tests.Runtime;

/// <summary>Helpers that build safetensors bytes by hand (independently of the writer) and temp folders.</summary>
internal static class SafetensorsTestFiles
{
    /// <summary>8-byte length (the real one unless overridden), the header text, then the data bytes.</summary>
    public static byte[] Raw(string header, byte[] data, ulong? lengthField = null)
    {
        byte[] h = Encoding.UTF8.GetBytes(header);
        var file = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, lengthField ?? (ulong)h.Length);
        h.CopyTo(file, 8);
        data.CopyTo(file, 8 + h.Length);
        return file;
    }

    public static byte[] Raw(string header, int dataBytes) => Raw(header, Enumerable.Range(0, dataBytes).Select(i => (byte)(i * 7 + 1)).ToArray());

    /// <summary>A host tensor of <paramref name="shape"/> filled with random bit patterns (NaN payloads included).</summary>
    public static Tensor RandomBits(Random rng, DType dtype, params int[] shape)
    {
        var t = Tensor.ZerosHost(dtype, shape);
        rng.NextBytes(((HostStorage)t.Storage).AsSpan<byte>());
        return t;
    }

    /// <summary>The raw element bytes of a host tensor in row-major order, gathered through its strides.</summary>
    public static unsafe byte[] LogicalBytes(Tensor t)
    {
        int size = DTypes.SizeOf(t.DType);
        var result = new byte[t.ElementCount * size];
        var src = (byte*)((HostStorage)t.Storage).Pointer;
        var index = new int[t.Rank];
        for (long i = 0; i < t.ElementCount; i++)
        {
            long off = t.Offset;
            for (int a = 0; a < t.Rank; a++) off += index[a] * t.Strides[a];
            for (int b = 0; b < size; b++) result[i * size + b] = src[off * size + b];
            for (int a = t.Rank - 1; a >= 0; a--)
            {
                if (++index[a] < t.Shape[a]) break;
                index[a] = 0;
            }
        }
        return result;
    }
}

/// <summary>A fresh folder under the temp directory, deleted on Dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sora-rt-" + Guid.NewGuid().ToString("N"));

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
