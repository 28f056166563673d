using ILGPU.Runtime;

namespace Sora.Kernels.Gpu;

/// <summary>
/// Group sizes and tiles of the ILGPU kernels. They are parameters (not constants) so that one kernel source
/// runs on a GPU with large groups and on ILGPU's CPU accelerator, whose default device allows 16 threads per
/// group. <see cref="For"/> picks values that fit the accelerator.
/// </summary>
public sealed record IlgpuKernelOptions
{
    /// <summary>GEMM threads per group along N and M; each thread computes 4×4 outputs.</summary>
    public int GemmThreadsX { get; init; } = 16;
    public int GemmThreadsY { get; init; } = 16;
    /// <summary>K step of the GEMM's shared-memory tiles.</summary>
    public int GemmTileK { get; init; } = 16;
    /// <summary>Threads per row of the row norms (a power of two).</summary>
    public int NormGroupSize { get; init; } = 256;
    public int AttentionGroupSize { get; init; } = 128;
    /// <summary>Queries per attention group and keys per step; shrunk at launch to fit shared memory.</summary>
    public int AttentionQueryTile { get; init; } = 32;
    public int AttentionKeyTile { get; init; } = 32;

    /// <summary>
    /// Defaults for <paramref name="accelerator"/>. ILGPU's CPU accelerator runs every thread of a group as an
    /// OS thread meeting the others at each barrier, so there one-thread groups are fastest (the Wan VAE
    /// fixture decode: 7 s with them, 87 s with 16-thread groups).
    /// </summary>
    public static IlgpuKernelOptions For(Accelerator accelerator) =>
        accelerator.AcceleratorType == AcceleratorType.CPU ? SingleThreadGroups : ForGroupLimit(accelerator.MaxNumThreadsPerGroup);

    /// <summary>Groups of one thread (a 4×4 GEMM tile per group).</summary>
    public static IlgpuKernelOptions SingleThreadGroups { get; } = new()
    {
        GemmThreadsX = 1,
        GemmThreadsY = 1,
        GemmTileK = 16,
        NormGroupSize = 1,
        AttentionGroupSize = 1,
        AttentionQueryTile = 16,
        AttentionKeyTile = 16,
    };

    /// <summary>The largest square GEMM group and power-of-two norm and attention groups within <paramref name="maxThreads"/>.</summary>
    public static IlgpuKernelOptions ForGroupLimit(int maxThreads)
    {
        if (maxThreads >= 256) return new IlgpuKernelOptions();
        int side = 1;
        while ((side * 2) * (side * 2) <= maxThreads) side *= 2;
        int pow2 = 1;
        while (pow2 * 2 <= maxThreads) pow2 *= 2;
        return new IlgpuKernelOptions
        {
            GemmThreadsX = side,
            GemmThreadsY = side,
            GemmTileK = 8,
            NormGroupSize = pow2,
            AttentionGroupSize = pow2,
            AttentionQueryTile = 8,
            AttentionKeyTile = 8,
        };
    }

    internal void Validate(Accelerator accelerator)
    {
        int max = accelerator.MaxNumThreadsPerGroup;
        if (GemmThreadsX <= 0 || GemmThreadsY <= 0 || GemmThreadsX * GemmThreadsY > max)
            throw new ArgumentException($"GEMM group {GemmThreadsX}×{GemmThreadsY} does not fit {accelerator.Name} ({max} threads per group)");
        if (GemmTileK <= 0) throw new ArgumentException($"GemmTileK must be positive, got {GemmTileK}");
        long gemmShared = GemmKernels.SharedNeed(GemmThreadsX, GemmThreadsY, GemmTileK);
        if (gemmShared > GemmKernels.SharedFloats)
            throw new ArgumentException($"GEMM tiles need {gemmShared} floats of shared memory; the kernel has {GemmKernels.SharedFloats}");
        int maxNorm = Math.Min(max, NormKernels.MaxGroupSize);
        if (NormGroupSize <= 0 || NormGroupSize > maxNorm || (NormGroupSize & (NormGroupSize - 1)) != 0)
            throw new ArgumentException($"NormGroupSize {NormGroupSize} must be a power of two ≤ {maxNorm}");
        if (AttentionGroupSize <= 0 || AttentionGroupSize > max)
            throw new ArgumentException($"AttentionGroupSize {AttentionGroupSize} must be in [1, {max}]");
        if (AttentionQueryTile <= 0 || AttentionKeyTile <= 0)
            throw new ArgumentException("attention tiles must be positive");
    }
}
