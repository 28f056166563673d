namespace Sora.Native.Text;

/// <summary>
/// A trie over UTF-8 byte strings mapping each key to an id, walked one byte at a time. Edges live in one
/// hash map keyed by (node, byte), which stays compact for a 256k-piece vocabulary.
/// </summary>
internal sealed class ByteTrie
{
    private readonly Dictionary<long, int> _edges = new();
    private readonly List<int> _values = new() { -1 }; // node 0 is the root

    public const int Root = 0;

    /// <summary>Adds a key; false if the key was already present (the trie is left unchanged).</summary>
    public bool Add(ReadOnlySpan<byte> key, int value)
    {
        int node = Root;
        foreach (byte b in key)
        {
            long edge = ((long)node << 8) | b;
            if (!_edges.TryGetValue(edge, out int child))
            {
                child = _values.Count;
                _values.Add(-1);
                _edges.Add(edge, child);
            }
            node = child;
        }
        if (_values[node] >= 0) return false;
        _values[node] = value;
        return true;
    }

    /// <summary>The child of <paramref name="node"/> along byte <paramref name="b"/>, or -1.</summary>
    public int Step(int node, byte b) => _edges.TryGetValue(((long)node << 8) | b, out int child) ? child : -1;

    /// <summary>The id stored at <paramref name="node"/>, or -1 when no key ends there.</summary>
    public int ValueAt(int node) => _values[node];

    /// <summary>Length of the longest key that is a prefix of <paramref name="input"/> (0 if none).</summary>
    public int LongestPrefix(ReadOnlySpan<byte> input)
    {
        int node = Root;
        int longest = 0;
        for (int i = 0; i < input.Length; i++)
        {
            node = Step(node, input[i]);
            if (node < 0) break;
            if (_values[node] >= 0) longest = i + 1;
        }
        return longest;
    }
}
