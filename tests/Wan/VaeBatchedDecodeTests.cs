using Sora.Native.Wan;
using Sora.Runtime;
using Xunit;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Wan;

/// <summary>
/// Clips of one size decoded side by side in one pass (<see cref="WanVae.Decode(IReadOnlyList{Tensor})"/>) equal each
/// clip decoded alone, for the Wan2.1 VAE (8×, temporal upsamplers) and the Wan2.2 one (16×, 2×2 pixel patches,
/// residual stages with DupUp3D shortcuts); every allocation is poisoned, so an unwritten element fails.
/// </summary>
public sealed class VaeBatchedDecodeTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static Tensor Latents(IBackend backend, int seed, int z, int t, int h, int w)
    {
        var rng = new Random(seed);
        var data = Enumerable.Range(0, z * t * h * w).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        return ToBackend(backend, data, [z, t, h, w]);
    }

    private void CheckBatchedEqualsAlone(string vaeDir, int clips, int t, int h, int w, IBackend? on = null)
    {
        using var backend = new Sora.Tests.Text.PoisoningBackend(on ?? NewCpuBackend());
        using var vae = WanVae.Load(vaeDir, backend);
        var latents = Enumerable.Range(0, clips).Select(b => Latents(backend, 100 + b, vae.ZDim, t, h, w)).ToArray();
        try
        {
            var alone = latents.Select(l =>
            {
                using var video = vae.Decode(l);
                return Read(backend, video);
            }).ToArray();
            var batched = vae.Decode(latents);
            try
            {
                Assert.Equal(clips, batched.Length);
                for (int b = 0; b < clips; b++)
                {
                    var values = Read(backend, batched[b]);
                    Assert.DoesNotContain(values, float.IsNaN);
                    double error = RelativeError(values, alone[b]);
                    output.WriteLine($"clip {b}: relative error {error:E2} against the clip alone");
                    Assert.True(error < 1e-5, $"clip {b}: relative error {error:E2}");
                }
            }
            finally
            {
                foreach (var v in batched) v.Dispose();
            }
        }
        finally
        {
            foreach (var l in latents) l.Dispose();
        }
    }

    [Fact]
    public void Wan21_clips_decoded_together_equal_each_alone() => CheckBatchedEqualsAlone(FixtureVaeDir, clips: 3, t: 3, h: 4, w: 6);

    [Fact]
    public void Wan22_clips_decoded_together_equal_each_alone() => CheckBatchedEqualsAlone(Fixture22VaeDir, clips: 2, t: 3, h: 2, w: 4);

    [Fact]
    public void Wan21_clips_decoded_together_equal_each_alone_on_the_ilgpu_cpu_accelerator() =>
        CheckBatchedEqualsAlone(FixtureVaeDir, clips: 2, t: 2, h: 2, w: 2, Sora.Kernels.Gpu.IlgpuBackend.CreateCpu());

    [Fact]
    public void Clips_of_different_shapes_are_refused_naming_the_clip()
    {
        using var backend = NewCpuBackend();
        using var vae = WanVae.Load(FixtureVaeDir, backend);
        using var a = Latents(backend, 1, vae.ZDim, 2, 4, 4);
        using var b = Latents(backend, 2, vae.ZDim, 2, 4, 6);
        var e = Assert.Throws<ArgumentException>(() => vae.Decode([a, b]));
        Assert.Contains("clip 1", e.Message);
        Assert.Equal("latents", e.ParamName);
    }
}
