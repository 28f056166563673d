using ILGPU;
using ILGPU.Runtime;
using Sora.Runtime;

namespace Sora.Kernels.Gpu;

public sealed partial class IlgpuBackend
{
    public void Attention(Tensor q, Tensor k, Tensor v, Tensor o, AttentionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        RequireRank(q, nameof(q), 3);
        RequireRank(k, nameof(k), 3);
        int nq = q.Dim(0), h = q.Dim(1), d = q.Dim(2), nk = k.Dim(0);
        var qv = Heads(q, nameof(q), nq, h, d, out long ldq);
        var kv = Heads(k, nameof(k), nk, h, d, out long ldk);
        var vv = Heads(v, nameof(v), nk, h, d, out long ldv);
        var ov = Heads(o, nameof(o), nq, h, d, out long ldo);

        int[] qo = options.QueryOffsets ?? [0, nq];
        int[] ko = options.KeyOffsets ?? [0, nk];
        CheckOffsets(qo, nq, "QueryOffsets", "q");
        CheckOffsets(ko, nk, "KeyOffsets", "k");
        if (qo.Length != ko.Length)
            throw new ArgumentException($"QueryOffsets describe {qo.Length - 1} sequences but KeyOffsets {ko.Length - 1}", nameof(options));
        int count = qo.Length - 1;
        if (options.KeyValidLengths is not null && options.KeyValidLengths.Length != count)
            throw new ArgumentException($"KeyValidLengths has {options.KeyValidLengths.Length} entries for {count} sequences", nameof(options));

        using var temps = new Temps();
        var bias = Dummy;
        int center = options.RelativeBiasCenter, width = 0;
        if (options.RelativeBias is { } rb)
        {
            if (center < 0) throw new ArgumentException($"RelativeBiasCenter {center} must be >= 0", nameof(options));
            width = 2 * center + 1;
            RequireShape(rb, "RelativeBias", h, width);
            bias = Vector(rb, "RelativeBias", h * width, temps);
            for (int b = 0; b < count; b++)
                if (qo[b + 1] - qo[b] > center + 1 || ko[b + 1] - ko[b] > center + 1)
                    throw new ArgumentException($"sequence {b} is longer than the relative bias allows (L = RelativeBiasCenter + 1 = {center + 1})", nameof(options));
        }

        var (bq, bk) = AttentionTiles(d);
        // Tiles never cross a sequence: (first query row, query count, position of that query, first key row, visible keys).
        var tiles = new List<int>();
        for (int b = 0; b < count; b++)
        {
            int len = ko[b + 1] - ko[b];
            int valid = options.KeyValidLengths?[b] ?? len;
            if (valid < 0 || valid > len)
                throw new ArgumentException($"KeyValidLengths[{b}] = {valid} outside [0, {len}] (keys of sequence {b})", nameof(options));
            for (int start = qo[b]; start < qo[b + 1]; start += bq)
                tiles.AddRange([start, Math.Min(bq, qo[b + 1] - start), start - qo[b], ko[b], valid]);
        }
        int tileCount = tiles.Count / AttentionKernel.TileInts;
        if (tileCount == 0 || h == 0 || d == 0) return;
        var tileView = TileList(tiles);
        var shape = new AttentionShape(ldq, ldk, ldv, ldo, d, bq, bk, options.Scale, width, center, options.RelativeBias is null ? 0 : 1);
        var kernel = Kernel("attention", () => Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<int>, ArrayView<float>, AttentionShape>(AttentionKernel.Run));
        var config = new KernelConfig(new Index2D(tileCount, h), new Index2D(Options.AttentionGroupSize, 1));
        kernel(config, qv, kv, vv, ov, tileView, bias, shape);
    }

    private readonly Dictionary<string, IlgpuStorage> _tileLists = new();
    private const int MaxTileLists = 64;

    /// <summary>
    /// The tile list on the device, cached by content: a denoising loop repeats the same sequence layout in
    /// every block and step, and an upload must wait for the copy (see <see cref="Upload{T}"/>).
    /// </summary>
    private ArrayView<int> TileList(List<int> tiles)
    {
        string key = string.Join(",", tiles);
        lock (_tileLists)
        {
            if (!_tileLists.TryGetValue(key, out var storage))
            {
                if (_tileLists.Count >= MaxTileLists)
                {
                    foreach (var old in _tileLists.Values) old.Dispose();
                    _tileLists.Clear();
                }
                var temps = new Temps();
                Upload<int>(tiles.ToArray(), temps);
                storage = temps.Single<IlgpuStorage>();
                _tileLists[key] = storage;
            }
            return storage.View<int>().SubView(0, tiles.Count);
        }
    }

    /// <summary>Query and key tiles, halved until they fit the kernel's static shared array (and the device).</summary>
    private (int QueryTile, int KeyTile) AttentionTiles(int d)
    {
        int bq = Options.AttentionQueryTile, bk = Options.AttentionKeyTile;
        long limit = Math.Min(Accelerator.MaxSharedMemoryPerGroup, AttentionKernel.SharedCapacity * sizeof(float));
        while ((long)AttentionShape.SharedFloats(d, bq, bk) * sizeof(float) > limit && (bq > 1 || bk > 1))
        {
            if (bk >= bq && bk > 1) bk /= 2;
            else bq /= 2;
        }
        if ((long)AttentionShape.SharedFloats(d, bq, bk) * sizeof(float) > limit)
            throw new ArgumentException($"head_dim {d} needs more shared memory than the attention kernel has per group ({limit} bytes)");
        return (bq, bk);
    }

    private static void CheckOffsets(int[] offsets, int total, string name, string tensor)
    {
        if (offsets.Length < 2 || offsets[0] != 0 || offsets[^1] != total)
            throw new ArgumentException($"{name} must start at 0 and end at {total} (rows of {tensor}), got [{string.Join(", ", offsets)}]", "options");
        for (int i = 1; i < offsets.Length; i++)
            if (offsets[i] < offsets[i - 1])
                throw new ArgumentException($"{name} must not decrease, got [{string.Join(", ", offsets)}]", "options");
    }

    /// <summary>A [rows, H, D] F32 tensor whose heads and head_dim are dense; rows may be strided.</summary>
    private ArrayView<float> Heads(Tensor t, string name, int rows, int h, int d, out long rowStride)
    {
        var v = F32(t, name);
        RequireShape(t, name, rows, h, d);
        if ((d > 1 && t.Strides[2] != 1) || (h > 1 && t.Strides[1] != d))
            throw new ArgumentException($"{name} {t} must have dense heads and head_dim, got strides [{string.Join(", ", t.Strides)}]", name);
        rowStride = rows > 1 ? t.Strides[0] : (long)h * d;
        if (rows > 1 && rowStride < (long)h * d)
            throw new ArgumentException($"{name} {t} has row stride {rowStride} smaller than H·D = {h * d}", name);
        return v;
    }

    public void ApplyRope(Tensor x, Tensor cos, Tensor sin)
    {
        RequireRank(x, nameof(x), 3);
        int rows = x.Dim(0), h = x.Dim(1), d = x.Dim(2);
        if (d % 2 != 0) throw new ArgumentException($"x head_dim {d} must be even for rotary pairs", nameof(x));
        var xv = Heads(x, nameof(x), rows, h, d, out long ldx);
        RequireRank(cos, nameof(cos), 2);
        int s = cos.Dim(0);
        RequireShape(cos, nameof(cos), s, d / 2);
        RequireShape(sin, nameof(sin), s, d / 2);
        if (s == 0 || rows % s != 0) throw new ArgumentException($"x has {rows} rows, not a multiple of the {s} rows of cos", nameof(cos));
        using var temps = new Temps();
        var cv = Vector(cos, nameof(cos), s * (d / 2), temps);
        var sv = Vector(sin, nameof(sin), s * (d / 2), temps);
        long pairs = (long)rows * h * (d / 2);
        if (pairs == 0) return;
        var kernel = Kernel("rope", () => Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, long>(ElementwiseKernels.Rope));
        kernel(Elements(pairs, "x"), xv, cv, sv, h, d / 2, s, ldx);
    }
}
