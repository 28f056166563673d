using System.Text.Json;

namespace Sora.Native.Text;

/// <summary>
/// Reads a Hugging Face <c>tokenizer.json</c> holding a Unigram model (what transformers' T5 converter
/// writes from a spiece.model) back into the SentencePiece model it came from, so the same encoder runs:
/// <list type="bullet">
/// <item>model.vocab [piece, score] gives the pieces; model.unk_id the unknown piece; special added tokens
/// become control pieces (never matched inside text, as in sentencepiece); byte_fallback maps through.</item>
/// <item>normalizer: <c>Precompiled</c> gives the charsmap; <c>Replace(" {2,}")</c>, <c>Strip</c> or a
/// <c>WhitespaceSplit</c> pre-tokenizer mean sentencepiece's remove_extra_whitespaces.</item>
/// <item>pre-tokenizer <c>Metaspace</c> (replacement ▁): escape spaces; add_prefix_space or prepend_scheme
/// "always"/"first" is the dummy prefix.</item>
/// </list>
/// Anything else (other normalizers, non-Unigram models) is rejected rather than approximated.
/// </summary>
internal static class HfTokenizerJson
{
    public static SentencePieceModel Parse(ReadOnlySpan<byte> json)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json.ToArray()); }
        catch (JsonException e) { throw new InvalidDataException("invalid JSON: " + e.Message, e); }
        using (doc)
        {
            try
            {
                return Build(doc.RootElement);
            }
            catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or FormatException or IndexOutOfRangeException or ArgumentOutOfRangeException)
            {
                throw new InvalidDataException("malformed tokenizer.json: " + e.Message, e);
            }
        }
    }

    private static SentencePieceModel Build(JsonElement root)
    {
        var model = root.GetProperty("model");
        string type = model.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "";
        if (type != "Unigram") throw new InvalidDataException($"model type '{type}' is not supported (only Unigram is)");
        int unkId = model.TryGetProperty("unk_id", out var u) && u.ValueKind == JsonValueKind.Number ? u.GetInt32() : -1;
        if (unkId < 0) throw new InvalidDataException("the Unigram model has no unk_id");
        bool byteFallback = model.TryGetProperty("byte_fallback", out var bf) && bf.ValueKind == JsonValueKind.True;

        var special = new HashSet<int>();
        if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
            foreach (var a in added.EnumerateArray())
                if (a.TryGetProperty("special", out var s) && s.ValueKind == JsonValueKind.True)
                    special.Add(a.GetProperty("id").GetInt32());

        var pieces = new List<SentencePiece>();
        foreach (var entry in model.GetProperty("vocab").EnumerateArray())
        {
            string piece = entry[0].GetString() ?? throw new InvalidDataException($"vocab entry {pieces.Count} has no piece");
            float score = (float)entry[1].GetDouble();
            int id = pieces.Count;
            var pieceType = id == unkId ? PieceType.Unknown
                : special.Contains(id) ? PieceType.Control
                : byteFallback && IsBytePiece(piece) ? PieceType.Byte
                : PieceType.Normal;
            pieces.Add(new SentencePiece(piece, score, pieceType));
        }
        if (unkId >= pieces.Count) throw new InvalidDataException($"unk_id {unkId} is outside the vocabulary of {pieces.Count}");

        int IdOf(string piece) => pieces.FindIndex(p => p.Piece == piece);
        int eos = IdOf("</s>");
        if (eos < 0) throw new InvalidDataException("the vocabulary has no </s> piece");

        var spec = ReadNormalizer(root);
        return new SentencePieceModel
        {
            Pieces = pieces,
            Normalizer = spec,
            UnkId = unkId,
            EosId = eos,
            BosId = IdOf("<s>"),
            PadId = IdOf("<pad>"),
            ByteFallback = byteFallback,
        };
    }

    private static NormalizerSpec ReadNormalizer(JsonElement root)
    {
        byte[] charsMap = [];
        bool removeExtraWhitespaces = false;
        foreach (var n in Flatten(root, "normalizer", "normalizers"))
        {
            string type = n.GetProperty("type").GetString() ?? "";
            switch (type)
            {
                case "Precompiled":
                    if (n.TryGetProperty("precompiled_charsmap", out var cm) && cm.ValueKind == JsonValueKind.String)
                        charsMap = Convert.FromBase64String(cm.GetString()!);
                    break;
                case "Replace" when IsMultiSpaceRule(n):
                case "Strip":
                    removeExtraWhitespaces = true;
                    break;
                default:
                    throw new InvalidDataException($"normalizer '{type}' is not supported");
            }
        }

        bool metaspace = false, addDummyPrefix = false;
        foreach (var p in Flatten(root, "pre_tokenizer", "pretokenizers"))
        {
            string type = p.GetProperty("type").GetString() ?? "";
            switch (type)
            {
                case "WhitespaceSplit":
                    removeExtraWhitespaces = true;
                    break;
                case "Metaspace":
                    if (p.TryGetProperty("replacement", out var r) && r.GetString() != "\u2581")
                        throw new InvalidDataException($"Metaspace replacement '{r.GetString()}' is not ▁");
                    metaspace = true;
                    addDummyPrefix = (p.TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind == JsonValueKind.True)
                        || (p.TryGetProperty("prepend_scheme", out var ps) && ps.GetString() is "always" or "first");
                    break;
                default:
                    throw new InvalidDataException($"pre-tokenizer '{type}' is not supported");
            }
        }
        if (!metaspace) throw new InvalidDataException("no Metaspace pre-tokenizer: not a SentencePiece-style tokenizer");

        return new NormalizerSpec
        {
            Name = "tokenizer.json",
            PrecompiledCharsMap = charsMap,
            AddDummyPrefix = addDummyPrefix,
            RemoveExtraWhitespaces = removeExtraWhitespaces,
            EscapeWhitespaces = true,
        };
    }

    /// <summary>The component at <paramref name="key"/>, or the members of a Sequence there (null: none).</summary>
    private static IEnumerable<JsonElement> Flatten(JsonElement root, string key, string listKey)
    {
        if (!root.TryGetProperty(key, out var e) || e.ValueKind == JsonValueKind.Null) return [];
        if (e.GetProperty("type").GetString() == "Sequence") return e.GetProperty(listKey).EnumerateArray().ToList();
        return [e];
    }

    private static bool IsMultiSpaceRule(JsonElement replace)
        => replace.TryGetProperty("pattern", out var pattern)
           && pattern.TryGetProperty("Regex", out var regex)
           && regex.GetString() == " {2,}";

    private static bool IsBytePiece(string piece)
        => piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
           && Uri.IsHexDigit(piece[3]) && Uri.IsHexDigit(piece[4]);
}
