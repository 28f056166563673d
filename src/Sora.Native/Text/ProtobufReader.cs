namespace Sora.Native.Text;

/// <summary>The protobuf wire types this reader understands (groups, deprecated, are rejected).</summary>
internal enum WireType
{
    Varint = 0,
    Fixed64 = 1,
    LengthDelimited = 2,
    Fixed32 = 5,
}

/// <summary>
/// A minimal reader of the protobuf wire format: enough to walk a SentencePiece ModelProto field by field
/// without generated code. Every read is bounds-checked and throws <see cref="InvalidDataException"/> on a
/// truncated or malformed buffer.
/// </summary>
internal ref struct ProtobufReader
{
    private readonly ReadOnlySpan<byte> _data;
    private int _pos;

    public ProtobufReader(ReadOnlySpan<byte> data)
    {
        _data = data;
        _pos = 0;
    }

    public bool AtEnd => _pos >= _data.Length;

    /// <summary>Reads the next field key; returns false at the end of the buffer.</summary>
    public bool Next(out int field, out WireType wireType)
    {
        field = 0;
        wireType = default;
        if (AtEnd) return false;
        ulong key = ReadVarint();
        field = checked((int)(key >> 3));
        int wt = (int)(key & 7);
        if (field == 0) throw new InvalidDataException($"protobuf field number 0 at byte {_pos}");
        if (wt is not (0 or 1 or 2 or 5)) throw new InvalidDataException($"unsupported protobuf wire type {wt} for field {field}");
        wireType = (WireType)wt;
        return true;
    }

    public ulong ReadVarint()
    {
        ulong result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (_pos >= _data.Length) throw new InvalidDataException("truncated protobuf varint");
            byte b = _data[_pos++];
            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return result;
        }
        throw new InvalidDataException("protobuf varint longer than 10 bytes");
    }

    /// <summary>An int32 field: negative values are sign-extended to 64 bits on the wire.</summary>
    public int ReadInt32() => unchecked((int)ReadVarint());

    public bool ReadBool() => ReadVarint() != 0;

    public float ReadFixed32Float()
    {
        var bytes = Take(4);
        return BitConverter.Int32BitsToSingle(System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(bytes));
    }

    public ReadOnlySpan<byte> ReadBytes()
    {
        ulong length = ReadVarint();
        if (length > (ulong)(_data.Length - _pos)) throw new InvalidDataException($"protobuf length {length} runs past the end of the buffer");
        return Take((int)length);
    }

    public string ReadString() => System.Text.Encoding.UTF8.GetString(ReadBytes());

    public void Skip(WireType wireType)
    {
        switch (wireType)
        {
            case WireType.Varint: ReadVarint(); break;
            case WireType.Fixed64: Take(8); break;
            case WireType.LengthDelimited: ReadBytes(); break;
            case WireType.Fixed32: Take(4); break;
        }
    }

    /// <summary>Checks the wire type a field must have, so a corrupt file fails with the field named.</summary>
    public static void Expect(string message, int field, WireType actual, WireType expected)
    {
        if (actual != expected)
            throw new InvalidDataException($"{message} field {field} has wire type {actual}, expected {expected}");
    }

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count > _data.Length - _pos) throw new InvalidDataException("truncated protobuf field");
        var s = _data.Slice(_pos, count);
        _pos += count;
        return s;
    }
}
