using Sora.Runtime;
using Tensor = Sora.Runtime.Tensor;

namespace Sora.Kernels.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void Attention(Tensor q, Tensor k, Tensor v, Tensor o, AttentionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        HostArgs.RequireRank(q, nameof(q), 3);
        HostArgs.RequireRank(k, nameof(k), 3);
        int nq = q.Dim(0), h = q.Dim(1), d = q.Dim(2), nk = k.Dim(0);
        float* qp = Heads(q, nameof(q), nq, h, d, out long ldq);
        float* kp = Heads(k, nameof(k), nk, h, d, out long ldk);
        float* vp = Heads(v, nameof(v), nk, h, d, out long ldv);
        float* op = Heads(o, nameof(o), nq, h, d, out long ldo);
        var plan = AttentionPlan.Create(options, nq, nk, h);
        CpuAttention.Run(this, plan, qp, ldq, kp, ldk, vp, ldv, op, ldo, nq, h, d);
    }
}

/// <summary>The checked sequence layout of one attention call: where each sequence's queries and keys are.</summary>
internal sealed class AttentionPlan
{
    public required int[] QueryOffsets { get; init; }
    public required int[] KeyOffsets { get; init; }
    /// <summary>Keys visible to sequence b: the first ValidKeys[b] of its keys.</summary>
    public required int[] ValidKeys { get; init; }
    public required float Scale { get; init; }
    /// <summary>[H, 2L−1] relative bias, or null.</summary>
    public float[]? Bias { get; init; }
    public int BiasCenter { get; init; }
    public int BiasWidth { get; init; }

    public int Count => QueryOffsets.Length - 1;

    public static AttentionPlan Create(AttentionOptions options, int nq, int nk, int heads)
    {
        int[] qo = options.QueryOffsets ?? [0, nq];
        int[] ko = options.KeyOffsets ?? [0, nk];
        CheckOffsets(qo, nq, "QueryOffsets", "q");
        CheckOffsets(ko, nk, "KeyOffsets", "k");
        if (qo.Length != ko.Length)
            throw new ArgumentException($"QueryOffsets describe {qo.Length - 1} sequences but KeyOffsets {ko.Length - 1}", nameof(options));
        int count = qo.Length - 1;
        int[] valid = new int[count];
        for (int b = 0; b < count; b++)
        {
            int len = ko[b + 1] - ko[b];
            int given = options.KeyValidLengths is null ? len : options.KeyValidLengths[b];
            if (given < 0 || given > len)
                throw new ArgumentException($"KeyValidLengths[{b}] = {given} outside [0, {len}] (keys of sequence {b})", nameof(options));
            valid[b] = given;
        }
        if (options.KeyValidLengths is not null && options.KeyValidLengths.Length != count)
            throw new ArgumentException($"KeyValidLengths has {options.KeyValidLengths.Length} entries for {count} sequences", nameof(options));
        float[]? bias = null;
        int width = 0, center = options.RelativeBiasCenter;
        if (options.RelativeBias is { } rb)
        {
            if (center < 0) throw new ArgumentException($"RelativeBiasCenter {center} must be >= 0", nameof(options));
            width = 2 * center + 1;
            HostArgs.Host(rb, "RelativeBias");
            HostArgs.RequireShape(rb, "RelativeBias", heads, width);
            bias = rb.ToFloatArray();
            for (int b = 0; b < count; b++)
                if (qo[b + 1] - qo[b] > center + 1 || ko[b + 1] - ko[b] > center + 1)
                    throw new ArgumentException($"sequence {b} is longer than the relative bias allows (L = RelativeBiasCenter + 1 = {center + 1})", nameof(options));
        }
        return new AttentionPlan { QueryOffsets = qo, KeyOffsets = ko, ValidKeys = valid, Scale = options.Scale, Bias = bias, BiasCenter = center, BiasWidth = width };
    }

    private static void CheckOffsets(int[] offsets, int total, string name, string tensor)
    {
        if (offsets.Length < 2 || offsets[0] != 0 || offsets[^1] != total)
            throw new ArgumentException($"{name} must start at 0 and end at {total} (rows of {tensor}), got [{string.Join(", ", offsets)}]", "options");
        for (int i = 1; i < offsets.Length; i++)
            if (offsets[i] < offsets[i - 1])
                throw new ArgumentException($"{name} must not decrease, got [{string.Join(", ", offsets)}]", "options");
    }
}
