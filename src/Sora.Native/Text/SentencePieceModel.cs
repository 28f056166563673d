namespace Sora.Native.Text;

/// <summary>SentencePiece piece types (ModelProto.SentencePiece.Type; absent means Normal).</summary>
public enum PieceType
{
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

public sealed record SentencePiece(string Piece, float Score, PieceType Type);

/// <summary>
/// The normaliser settings of a SentencePiece model. Defaults are the proto defaults. The normalisation rule
/// itself is only the precompiled charsmap: the rule name is informative (sentencepiece compiles named rules
/// into the charsmap at training time).
/// </summary>
public sealed record NormalizerSpec
{
    public string Name { get; init; } = "";
    public byte[] PrecompiledCharsMap { get; init; } = [];
    public bool AddDummyPrefix { get; init; } = true;
    public bool RemoveExtraWhitespaces { get; init; } = true;
    public bool EscapeWhitespaces { get; init; } = true;
}

/// <summary>
/// What the tokenizer needs from a SentencePiece ModelProto (sentencepiece_model.proto): the pieces, the
/// trainer's special ids and flags, and the normaliser spec. Parsed from the protobuf bytes directly.
/// </summary>
public sealed record SentencePieceModel
{
    public const int ModelTypeUnigram = 1;

    public required IReadOnlyList<SentencePiece> Pieces { get; init; }
    public required NormalizerSpec Normalizer { get; init; }
    public int ModelType { get; init; } = ModelTypeUnigram;
    public int UnkId { get; init; }
    public int BosId { get; init; } = 1;
    public int EosId { get; init; } = 2;
    public int PadId { get; init; } = -1;
    public bool ByteFallback { get; init; }
    public bool TreatWhitespaceAsSuffix { get; init; }

    /// <summary>Parses a serialized ModelProto (the bytes of a spiece.model file).</summary>
    public static SentencePieceModel ParseProto(ReadOnlySpan<byte> data)
    {
        var pieces = new List<SentencePiece>();
        var trainer = new TrainerFields();
        var normalizer = new NormalizerSpec();
        var reader = new ProtobufReader(data);
        while (reader.Next(out int field, out var wt))
        {
            switch (field)
            {
                case 1:
                    ProtobufReader.Expect("ModelProto", field, wt, WireType.LengthDelimited);
                    pieces.Add(ParsePiece(reader.ReadBytes(), pieces.Count));
                    break;
                case 2:
                    ProtobufReader.Expect("ModelProto", field, wt, WireType.LengthDelimited);
                    trainer = ParseTrainerSpec(reader.ReadBytes());
                    break;
                case 3:
                    ProtobufReader.Expect("ModelProto", field, wt, WireType.LengthDelimited);
                    normalizer = ParseNormalizerSpec(reader.ReadBytes());
                    break;
                default:
                    reader.Skip(wt); // self_test_data, denormalizer_spec: not used for encoding
                    break;
            }
        }
        return new SentencePieceModel
        {
            Pieces = pieces,
            Normalizer = normalizer,
            ModelType = trainer.ModelType,
            UnkId = trainer.UnkId,
            BosId = trainer.BosId,
            EosId = trainer.EosId,
            PadId = trainer.PadId,
            ByteFallback = trainer.ByteFallback,
            TreatWhitespaceAsSuffix = trainer.TreatWhitespaceAsSuffix,
        };
    }

    private static SentencePiece ParsePiece(ReadOnlySpan<byte> data, int index)
    {
        string? piece = null;
        float score = 0;
        var type = PieceType.Normal;
        var reader = new ProtobufReader(data);
        while (reader.Next(out int field, out var wt))
        {
            switch (field)
            {
                case 1:
                    ProtobufReader.Expect($"piece {index}", field, wt, WireType.LengthDelimited);
                    piece = reader.ReadString();
                    break;
                case 2:
                    ProtobufReader.Expect($"piece {index}", field, wt, WireType.Fixed32);
                    score = reader.ReadFixed32Float();
                    break;
                case 3:
                    ProtobufReader.Expect($"piece {index}", field, wt, WireType.Varint);
                    int t = reader.ReadInt32();
                    if (t is < 1 or > 6) throw new InvalidDataException($"piece {index} has unknown type {t}");
                    type = (PieceType)t;
                    break;
                default:
                    reader.Skip(wt);
                    break;
            }
        }
        if (string.IsNullOrEmpty(piece)) throw new InvalidDataException($"piece {index} is empty");
        return new SentencePiece(piece, score, type);
    }

    private sealed class TrainerFields
    {
        public int ModelType = ModelTypeUnigram;
        public int UnkId;
        public int BosId = 1;
        public int EosId = 2;
        public int PadId = -1;
        public bool ByteFallback;
        public bool TreatWhitespaceAsSuffix;
    }

    private static TrainerFields ParseTrainerSpec(ReadOnlySpan<byte> data)
    {
        var t = new TrainerFields();
        var reader = new ProtobufReader(data);
        while (reader.Next(out int field, out var wt))
        {
            if (field is 3 or 24 or 35 or 40 or 41 or 42 or 43)
                ProtobufReader.Expect("TrainerSpec", field, wt, WireType.Varint);
            switch (field)
            {
                case 3: t.ModelType = reader.ReadInt32(); break;
                case 24: t.TreatWhitespaceAsSuffix = reader.ReadBool(); break;
                case 35: t.ByteFallback = reader.ReadBool(); break;
                case 40: t.UnkId = reader.ReadInt32(); break;
                case 41: t.BosId = reader.ReadInt32(); break;
                case 42: t.EosId = reader.ReadInt32(); break;
                case 43: t.PadId = reader.ReadInt32(); break;
                default: reader.Skip(wt); break;
            }
        }
        return t;
    }

    private static NormalizerSpec ParseNormalizerSpec(ReadOnlySpan<byte> data)
    {
        var spec = new NormalizerSpec();
        var reader = new ProtobufReader(data);
        while (reader.Next(out int field, out var wt))
        {
            if (field is 1 or 2) ProtobufReader.Expect("NormalizerSpec", field, wt, WireType.LengthDelimited);
            if (field is 3 or 4 or 5) ProtobufReader.Expect("NormalizerSpec", field, wt, WireType.Varint);
            switch (field)
            {
                case 1: spec = spec with { Name = reader.ReadString() }; break;
                case 2: spec = spec with { PrecompiledCharsMap = reader.ReadBytes().ToArray() }; break;
                case 3: spec = spec with { AddDummyPrefix = reader.ReadBool() }; break;
                case 4: spec = spec with { RemoveExtraWhitespaces = reader.ReadBool() }; break;
                case 5: spec = spec with { EscapeWhitespaces = reader.ReadBool() }; break;
                default: reader.Skip(wt); break; // normalization_rule_tsv: already compiled into the charsmap
            }
        }
        return spec;
    }
}
