using System.Buffers.Binary;
using System.Text;

namespace Sora.Tests.Runtime;

/// <summary>
/// Builds GGUF bytes by hand, independently of the reader: header, metadata, tensor infos, padding, data. Records
/// where each count, length, dimension, type id and offset field sits, so fuzz tests can make exactly those lie.
/// </summary>
internal sealed class GgufBuilder
{
    private readonly List<(string Key, Action<GgufBuilder> Write)> _kvs = new();
    private readonly List<(string Name, long[] Ne, uint Type, byte[] Data, long? Offset)> _tensors = new();
    private readonly List<byte> _bytes = new();

    public uint Version { get; set; } = 3;
    public int Alignment { get; set; } = 32;

    /// <summary>File positions of the 8-byte count/length/dimension/offset fields, filled by <see cref="Build"/>.</summary>
    public List<int> U64Fields { get; } = new();

    /// <summary>File positions of the 4-byte type-id and n_dims fields.</summary>
    public List<int> U32Fields { get; } = new();

    /// <summary>Where the tensor infos end (before padding) and where the data section begins.</summary>
    public int InfoEnd { get; private set; }
    public int DataStart { get; private set; }

    public GgufBuilder Kv(string key, uint type, Action<GgufBuilder> value)
    {
        _kvs.Add((key, b => { b.Str(key); b.U32(type); value(b); }));
        return this;
    }

    public GgufBuilder KvString(string key, string value) => Kv(key, 8, b => b.Str(value));
    public GgufBuilder KvU32(string key, uint value) => Kv(key, 4, b => b.U32(value, record: false));

    /// <summary>An array of <paramref name="elementType"/> whose elements <paramref name="write"/> appends.</summary>
    public GgufBuilder KvArray(string key, uint elementType, long count, Action<GgufBuilder> write)
        => Kv(key, 9, b => { b.U32(elementType); b.U64((ulong)count); write(b); });

    public GgufBuilder KvInt32Array(string key, params int[] values)
        => KvArray(key, 5, values.Length, b => { foreach (int v in values) b.Raw(BitConverter.GetBytes(v)); });

    /// <summary>A tensor: ne in ggml order, ggml type id, its encoded bytes; the offset is the aligned running sum unless given.</summary>
    public GgufBuilder Tensor(string name, long[] ne, uint type, byte[] data, long? offset = null)
    {
        _tensors.Add((name, ne, type, data, offset));
        return this;
    }

    public byte[] Build()
    {
        _bytes.Clear();
        U64Fields.Clear();
        U32Fields.Clear();
        Raw("GGUF"u8.ToArray());
        U32(Version, record: false);
        U64((ulong)_tensors.Count);
        U64((ulong)_kvs.Count);
        foreach (var (_, write) in _kvs) write(this);
        long running = 0;
        var offsets = new List<long>();
        foreach (var t in _tensors)
        {
            Str(t.Name);
            U32((uint)t.Ne.Length);
            foreach (long d in t.Ne) U64((ulong)d);
            U32(t.Type);
            long offset = t.Offset ?? running;
            offsets.Add(offset);
            U64((ulong)offset);
            running = Align(offset + t.Data.Length);
        }
        InfoEnd = _bytes.Count;
        while (_bytes.Count % Alignment != 0) _bytes.Add(0);
        DataStart = _bytes.Count;
        long end = _tensors.Count == 0 ? 0 : _tensors.Select((t, i) => offsets[i] + t.Data.Length).Max();
        var data = new byte[end];
        for (int i = 0; i < _tensors.Count; i++) _tensors[i].Data.CopyTo(data, offsets[i]);
        _bytes.AddRange(data);
        return _bytes.ToArray();
    }

    private long Align(long n) => (n + Alignment - 1) / Alignment * Alignment;

    public void Raw(byte[] b) => _bytes.AddRange(b);

    public void U32(uint v, bool record = true)
    {
        if (record) U32Fields.Add(_bytes.Count);
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        _bytes.AddRange(b.ToArray());
    }

    public void U64(ulong v)
    {
        U64Fields.Add(_bytes.Count);
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
        _bytes.AddRange(b.ToArray());
    }

    public void Str(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        U64((ulong)b.Length);
        Raw(b);
    }

    /// <summary>A builder with one value of every metadata type (arrays of numbers, strings and bools included) and five tensors.</summary>
    public static GgufBuilder Rich(Random rng)
    {
        var b = new GgufBuilder()
            .KvString("general.architecture", "wan")
            .Kv("u8", 0, x => x.Raw(new byte[] { 200 }))
            .Kv("i8", 1, x => x.Raw(new byte[] { 0x80 }))
            .Kv("u16", 2, x => x.Raw(BitConverter.GetBytes((ushort)65000)))
            .Kv("i16", 3, x => x.Raw(BitConverter.GetBytes((short)-30000)))
            .KvU32("general.quantization_version", 2)
            .Kv("i32", 5, x => x.Raw(BitConverter.GetBytes(-2_000_000_000)))
            .Kv("f32", 6, x => x.Raw(BitConverter.GetBytes(1.5f)))
            .Kv("bool", 7, x => x.Raw(new byte[] { 1 }))
            .Kv("u64", 10, x => x.Raw(BitConverter.GetBytes(ulong.MaxValue)))
            .Kv("i64", 11, x => x.Raw(BitConverter.GetBytes(long.MinValue)))
            .Kv("f64", 12, x => x.Raw(BitConverter.GetBytes(Math.PI)))
            .KvArray("strings", 8, 3, x => { x.Str("a"); x.Str(""); x.Str("ünï"); })
            .KvArray("bools", 7, 2, x => x.Raw(new byte[] { 0, 1 }))
            .KvArray("floats", 6, 2, x => { x.Raw(BitConverter.GetBytes(-0.25f)); x.Raw(BitConverter.GetBytes(3e38f)); })
            .KvInt32Array("comfy.gguf.orig_shape.conv.weight", 8, 3, 1, 2, 2)
            .KvString("empty", "");
        b.Tensor("w.q8", new long[] { 64, 3 }, 8, Bytes(rng, 3 * 2 * 34));
        b.Tensor("w.q4k", new long[] { 256, 2 }, 12, Bytes(rng, 2 * 144));
        b.Tensor("bias", new long[] { 7 }, 0, Bytes(rng, 28));
        b.Tensor("conv.weight", new long[] { 32, 3 }, 8, Bytes(rng, 3 * 34)); // stored [3, 32], logical [8, 3, 1, 2, 2]
        b.Tensor("scalar", Array.Empty<long>(), 1, Bytes(rng, 2));
        return b;
    }

    public static byte[] Bytes(Random rng, int n)
    {
        var b = new byte[n];
        rng.NextBytes(b);
        return b;
    }
}
