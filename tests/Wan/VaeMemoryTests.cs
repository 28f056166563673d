using Xunit;
using Xunit.Abstractions;
using Sora.Native.Wan;
using Sora.Runtime;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Wan;

/// <summary>
/// The chunked decode holds only one chunk's activations and the per-layer caches at a time: peak backend memory
/// beyond the output tensor must not grow with the number of frames.
/// </summary>
public sealed class VaeMemoryTests(ITestOutputHelper output)
{
    [Fact]
    public void Decode_working_memory_does_not_grow_with_frame_count()
    {
        using var dir = new TempDir();
        WriteRandomVae(dir.Path, baseDim: 8, dimMult: [1, 2, 2, 2], z: 4, numResBlocks: 1, seed: 5);
        AssertFlat(dir.Path, h: 4, w: 4, shortT: 5, longT: 9);
    }

    /// <summary>
    /// The same measurement on a Wan2.1-sized VAE (base 96, [1,2,4,4], 2 res blocks, z 16; ~508 MB of random
    /// weights written to a temporary folder). Opt-in (SORA_VAE_MEMORY_WAN21=1): it takes minutes on 2 cores.
    /// </summary>
    [OptInFact("SORA_VAE_MEMORY_WAN21")]
    public void Decode_working_memory_does_not_grow_with_frame_count_at_wan21_size()
    {
        int size = int.Parse(Environment.GetEnvironmentVariable("SORA_VAE_MEMORY_LATENT") ?? "4");
        using var dir = new TempDir();
        WriteRandomVae(dir.Path, baseDim: 96, dimMult: [1, 2, 4, 4], z: 16, numResBlocks: 2, seed: 7);
        AssertFlat(dir.Path, h: size, w: size, shortT: 5, longT: 9);
    }

    private void AssertFlat(string vaeDir, int h, int w, int shortT, int longT)
    {
        using var backend = NewCpuBackend();
        using var vae = WanVae.Load(vaeDir, backend);
        var (shortPeak, shortOut) = Measure(backend, vae, shortT, h, w);
        var (longPeak, longOut) = Measure(backend, vae, longT, h, w);
        long outputGrowth = longOut - shortOut;
        long workingShort = shortPeak - shortOut, workingLong = longPeak - longOut;
        output.WriteLine($"{backend.Device.Name}: latent {h}x{w}, output {8 * h}x{8 * w}");
        output.WriteLine($"  {4 * (shortT - 1) + 1} frames: peak {shortPeak:N0} B, output {shortOut:N0} B, working {workingShort:N0} B");
        output.WriteLine($"  {4 * (longT - 1) + 1} frames: peak {longPeak:N0} B, output {longOut:N0} B, working {workingLong:N0} B");
        Assert.True(outputGrowth > 0);
        // Peak growth beyond the output's own growth: far less than the output growth (allow 5% for pool rounding).
        Assert.True(workingLong - workingShort <= outputGrowth / 20,
            $"working memory grew from {workingShort:N0} B to {workingLong:N0} B while the output grew by {outputGrowth:N0} B");
    }

    /// <summary>Peak bytes allocated during one decode (above what was live before it) and the output's bytes.</summary>
    private static (long Peak, long Output) Measure(IBackend backend, WanVae vae, int t, int h, int w)
    {
        var rng = new Random(t);
        var latents = new float[vae.ZDim * t * h * w];
        for (int i = 0; i < latents.Length; i++) latents[i] = 2 * rng.NextSingle() - 1;
        using var z = ToBackend(backend, latents, [vae.ZDim, t, h, w]);
        backend.Synchronize();
        long before = backend.Memory.CurrentBytes;
        backend.ResetPeakMemory();
        using var video = vae.Decode(z);
        backend.Synchronize();
        long peak = backend.Memory.PeakBytes - before;
        var frames = Read(backend, video);
        Assert.All(frames, v => Assert.InRange(v, -1f, 1f)); // written everywhere (no NaN) and clamped
        return (peak, video.ElementCount * sizeof(float));
    }
}
