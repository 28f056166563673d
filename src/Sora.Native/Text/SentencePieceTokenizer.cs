using System.Text;

namespace Sora.Native.Text;

/// <summary>
/// A SentencePiece Unigram tokenizer that reproduces the sentencepiece library's <c>encode</c>: normalise
/// (precompiled charsmap, whitespace rules, dummy ▁ prefix), Viterbi over the piece lattice, merge each run of
/// unknown pieces into one unk (or split unknowns into byte pieces when the model has byte fallback). No BOS.
/// Loads <c>spiece.model</c> (protobuf) or, when only that exists, a Hugging Face <c>tokenizer.json</c>.
/// </summary>
public sealed class SentencePieceTokenizer
{
    // sentencepiece's kUnkPenalty: an unknown character scores this much below the worst piece.
    private const float UnkPenalty = 10.0f;

    private readonly SentencePieceModel _model;
    private readonly SentencePieceNormalizer _normalizer;
    private readonly ByteTrie _pieces = new();
    private readonly Dictionary<string, int> _byteIds = new(StringComparer.Ordinal);
    private readonly int _unkId = -1;
    private readonly float _minScore = float.MaxValue;
    // sentencepiece starts the maximum at FLT_MIN (the smallest positive normal float), not at -FLT_MAX.
    private readonly float _maxScore = 1.17549435e-38f;

    public SentencePieceTokenizer(SentencePieceModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.ModelType != SentencePieceModel.ModelTypeUnigram)
            throw new InvalidDataException($"model type {model.ModelType} is not supported (only Unigram = 1 is)");
        _model = model;

        var userDefined = new ByteTrie();
        bool anyUserDefined = false;
        for (int id = 0; id < model.Pieces.Count; id++)
        {
            var p = model.Pieces[id];
            switch (p.Type)
            {
                case PieceType.Normal:
                    _minScore = Math.Min(_minScore, p.Score);
                    _maxScore = Math.Max(_maxScore, p.Score);
                    AddPiece(p.Piece, id);
                    break;
                case PieceType.UserDefined:
                    userDefined.Add(Encoding.UTF8.GetBytes(p.Piece), id);
                    anyUserDefined = true;
                    AddPiece(p.Piece, id);
                    break;
                case PieceType.Unused:
                    AddPiece(p.Piece, id); // in the trie, skipped by Viterbi
                    break;
                case PieceType.Unknown:
                    // As in sentencepiece, the unknown piece's position is the unk id.
                    if (_unkId >= 0) throw new InvalidDataException($"unknown piece defined twice (ids {_unkId} and {id})");
                    _unkId = id;
                    break;
                case PieceType.Byte:
                    _byteIds[p.Piece] = id;
                    break;
            }
        }
        if (_unkId < 0) throw new InvalidDataException("the model defines no unknown piece");
        if (model.ByteFallback)
            for (int b = 0; b < 256; b++)
                if (!_byteIds.ContainsKey(BytePiece((byte)b)))
                    throw new InvalidDataException($"byte_fallback is set but byte piece {BytePiece((byte)b)} is missing");
        _normalizer = new SentencePieceNormalizer(model.Normalizer, model.TreatWhitespaceAsSuffix, anyUserDefined ? userDefined : null);
    }

    private void AddPiece(string piece, int id)
    {
        if (!_pieces.Add(Encoding.UTF8.GetBytes(piece), id))
            throw new InvalidDataException($"piece '{piece}' (id {id}) is defined twice");
    }

    public int VocabSize => _model.Pieces.Count;
    public int UnkId => _unkId;
    public int EosId => _model.EosId;
    public int PadId => _model.PadId;
    public int BosId => _model.BosId;
    public SentencePieceModel Model => _model;

    /// <summary>Loads <c>spiece.model</c> from <paramref name="tokenizerDir"/>, else its <c>tokenizer.json</c>.</summary>
    public static SentencePieceTokenizer Load(string tokenizerDir)
    {
        string spiece = Path.Combine(tokenizerDir, "spiece.model");
        if (File.Exists(spiece)) return LoadSentencePieceModel(spiece);
        string json = Path.Combine(tokenizerDir, "tokenizer.json");
        if (File.Exists(json)) return LoadTokenizerJson(json);
        throw new FileNotFoundException($"{tokenizerDir}: neither spiece.model nor tokenizer.json found", spiece);
    }

    /// <summary>Loads a serialized SentencePiece ModelProto file.</summary>
    public static SentencePieceTokenizer LoadSentencePieceModel(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        try
        {
            return new SentencePieceTokenizer(SentencePieceModel.ParseProto(bytes));
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: not a valid SentencePiece model: {e.Message}", e);
        }
    }

    /// <summary>Loads a Hugging Face tokenizer.json holding a Unigram model (see <see cref="HfTokenizerJson"/>).</summary>
    public static SentencePieceTokenizer LoadTokenizerJson(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        try
        {
            return new SentencePieceTokenizer(HfTokenizerJson.Parse(bytes));
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: not a usable Unigram tokenizer.json: {e.Message}", e);
        }
    }

    /// <summary>The sentencepiece ids of <paramref name="text"/> (no BOS, no EOS).</summary>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        // A .NET string always encodes to well-formed UTF-8 (a lone surrogate becomes U+FFFD).
        byte[] normalized = _normalizer.Normalize(Encoding.UTF8.GetBytes(text));
        var ids = new List<int>();
        bool prevUnknown = false;
        foreach (var (start, length, id) in Viterbi(normalized))
        {
            bool unknown = id == _unkId;
            if (unknown && _model.ByteFallback)
            {
                for (int i = 0; i < length; i++) ids.Add(_byteIds[BytePiece(normalized[start + i])]);
            }
            else if (!(unknown && prevUnknown))
            {
                ids.Add(id); // a run of unknown pieces becomes one unk
            }
            prevUnknown = unknown;
        }
        return ids.ToArray();
    }

    /// <summary>
    /// The ids the text encoder gets: <see cref="Encode"/>, truncated to <paramref name="maxLength"/> − 1
    /// pieces, then EOS (<c>&lt;/s&gt;</c>) appended — what T5TokenizerFast gives with truncation.
    /// </summary>
    public int[] EncodeForModel(string text, int maxLength = 512)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 1);
        if (EosId < 0 || EosId >= VocabSize)
            throw new InvalidOperationException($"the model has no usable </s> piece (eos id {EosId}) to end the sequence with");
        int[] pieces = Encode(text);
        int n = Math.Min(pieces.Length, maxLength - 1);
        var ids = new int[n + 1];
        Array.Copy(pieces, ids, n);
        ids[n] = _model.EosId;
        return ids;
    }

    /// <summary>
    /// sentencepiece's optimized Viterbi (unigram_model.cc EncodeOptimized): best path ending at each byte
    /// position, candidates visited in the same order with the same float32 arithmetic so ties resolve alike.
    /// Returns (start, length, id) of each piece of the best segmentation.
    /// </summary>
    private List<(int Start, int Length, int Id)> Viterbi(byte[] text)
    {
        var result = new List<(int, int, int)>();
        int size = text.Length;
        if (size == 0) return result;
        float unkScore = _minScore - UnkPenalty;
        var bestScore = new float[size + 1];
        var bestStart = new int[size + 1];
        var bestId = new int[size + 1];
        Array.Fill(bestStart, -1);

        for (int start = 0; start < size;)
        {
            float scoreHere = bestScore[start];
            int charLength = Math.Min(Utf8.OneCharLength(text[start]), size - start);
            bool hasSingleCharPiece = false;
            int node = ByteTrie.Root;
            for (int end = start + 1; end <= size; end++)
            {
                node = _pieces.Step(node, text[end - 1]);
                if (node < 0) break;
                int id = _pieces.ValueAt(node);
                if (id < 0) continue;
                var type = _model.Pieces[id].Type;
                if (type == PieceType.Unused) continue;
                int length = end - start;
                if (type == PieceType.UserDefined)
                {
                    // User-defined pieces get a bonus so they are always chosen (sentencepiece: float product, then double).
                    double candidate = (double)(length * _maxScore) - 0.1 + scoreHere;
                    if (bestStart[end] == -1 || candidate > bestScore[end]) Update(end, (float)candidate, start, id);
                }
                else
                {
                    float candidate = _model.Pieces[id].Score + scoreHere;
                    if (bestStart[end] == -1 || candidate > bestScore[end]) Update(end, candidate, start, id);
                }
                if (length == charLength) hasSingleCharPiece = true;
            }
            if (!hasSingleCharPiece)
            {
                int end = start + charLength;
                float candidate = unkScore + scoreHere;
                if (bestStart[end] == -1 || candidate > bestScore[end]) Update(end, candidate, start, _unkId);
            }
            start += charLength;
        }

        for (int end = size; end > 0; end = bestStart[end])
            result.Add((bestStart[end], end - bestStart[end], bestId[end]));
        result.Reverse();
        return result;

        void Update(int end, float score, int start, int id)
        {
            bestScore[end] = score;
            bestStart[end] = start;
            bestId[end] = id;
        }
    }

    private static string BytePiece(byte b) => $"<0x{b:X2}>";
}
